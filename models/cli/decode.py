"""``latent-explorer decode DEC.onnx (--z "0.5,-1,..." | --prior N [--seed S]) --out grid.png [--force]``.

Decodes latent points (or N prior draws) through the torch-free runtime and writes the images as
one PNG grid. The PNG encoder is a few lines of zlib and struct (8-bit grey or RGB, no
interlace), so no imaging library is needed.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import struct
import zlib

import numpy as np

from models.errors import ConfigError
from models.io.atomic import check_target, replace_from, write_temp_beside
from models.latent.geometry import prior_samples, tile
from models.io.onnx_runtime import OnnxDecoder

MAX_IMAGES = 4096
#: The largest magnitude a --z value may have: the decoders' input is float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)
# Half of all latent values are negative, but argparse (3.11 to 3.13 at least) takes an argument
# such as "-1,0,0,0" for an unknown option ("--z: expected one argument"): its negative-number
# pattern knows only "-1" and "-.5". decode has no option that looks like a number, so here any
# argument starting with "-<digit>" or "-.<digit>" is a value.
_NEGATIVE_VALUE = re.compile(r"^-\.?\d")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "decode",
        help="decode latent points or prior samples from an ONNX decoder into a PNG grid",
        description="Decode latent vectors through an ONNX decoder (no torch needed) and write "
        "the images as one PNG grid, row by row.",
    )
    p._negative_number_matcher = _NEGATIVE_VALUE  # --z "-1,0,0,0" (see _NEGATIVE_VALUE)
    p.add_argument("model", metavar="DEC.onnx")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--z",
        action="append",
        metavar="'z1,z2,...'",
        help="a latent vector as comma-separated numbers; repeat it, or separate rows with ';'",
    )
    src.add_argument("--prior", type=int, metavar="N", help="decode N draws from the prior N(0, I)")
    p.add_argument("--seed", type=int, default=0, help="seed of the prior draws (default 0)")
    p.add_argument("--cols", type=int, metavar="K", help="images per row (default: a square grid)")
    p.add_argument("--out", required=True, metavar="grid.png", help="the PNG file to write")
    p.add_argument("--force", action="store_true", help="replace the output file if it exists")
    p.set_defaults(handler=run)
    return p


def _parse_number(field: str, row: str) -> float:
    if not field:
        raise ConfigError(
            f"--z: {row!r} has an empty field (two separators in a row, or one at an end)"
        )
    bad = f"--z: {row!r} is not a comma-separated list of numbers"
    if "_" in field:  # float() reads "1_0" as 10: a typo more likely than a digit separator
        raise ConfigError(f"{bad} ({field!r}: write numbers without '_')")
    try:
        x = float(field)
    except ValueError:
        raise ConfigError(f"{bad} ({field!r} is not a number)") from None
    if not math.isfinite(x):
        raise ConfigError(f"--z: {row!r} has a value that is not finite")
    if abs(x) > FLOAT32_MAX:
        raise ConfigError(
            f"--z: {field!r} is beyond the float32 range of the decoder's input "
            f"(magnitude at most {FLOAT32_MAX:.4g})"
        )
    return x


def parse_z(values: list[str]) -> np.ndarray:
    """``["0.5,-1", "1,2;3,4"]`` -> float32 [3, 2]; ConfigError on a malformed or ragged row.

    Numbers are separated by commas and/or spaces; an empty field ("1,,2", "1,2,"), a ``_`` in
    a number, a non-finite value or one beyond float32's range is refused.
    """
    rows: list[list[float]] = []
    for value in values:
        for row in value.split(";"):
            row = row.strip()
            if not row:
                continue
            fields = re.split(r"\s*,\s*|\s+", row)
            rows.append([_parse_number(field, row) for field in fields])
    if not rows:
        raise ConfigError("--z: no latent vector given")
    if len({len(r) for r in rows}) != 1:
        raise ConfigError(f"--z: the rows have different lengths ({sorted({len(r) for r in rows})})")
    return np.asarray(rows, dtype=np.float32)


# --------------------------------------------------------------------------- PNG
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(image: np.ndarray) -> bytes:
    """A PNG file's bytes for a uint8 image [H, W] (grey) or [H, W, 3] (RGB)."""
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ValueError(f"encode_png takes uint8 [H, W] or [H, W, 3], not {img.dtype} {img.shape}")
    h, w = img.shape[:2]
    color_type = 0 if img.ndim == 2 else 2
    rows = img.reshape(h, -1)
    raw = np.empty((h, rows.shape[1] + 1), dtype=np.uint8)
    raw[:, 0] = 0  # filter type None for every scanline
    raw[:, 1:] = rows
    header = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw.tobytes(), 9))
        + _chunk(b"IEND", b"")
    )


def write_png(path: str | os.PathLike, image: np.ndarray, *, overwrite: bool = True) -> None:
    """Write ``image`` as a PNG, atomically (temporary file in the same directory, then rename).

    ConfigError if the directory is missing, ``path`` is a directory, or it exists and not
    ``overwrite``. A failed write raises OSError naming ``path`` (never the temporary file) and
    leaves an existing file as it was and no temporary file behind.
    """
    path = os.fspath(path)
    check_target(path, overwrite, ConfigError)
    replace_from(write_temp_beside(path, encode_png(image)), path)


def grid_shape(n: int, cols: int | None = None) -> tuple[int, int]:
    """(rows, cols) of a grid for n images: square-ish unless cols is given."""
    cols = cols or math.ceil(math.sqrt(n))
    cols = max(1, min(cols, n))
    return math.ceil(n / cols), cols


def run(args: argparse.Namespace) -> int:
    if not args.out.lower().endswith(".png"):
        raise ConfigError(f"{args.out}: the output file name should end in .png")
    if args.cols is not None and args.cols < 1:
        raise ConfigError(f"--cols must be at least 1, not {args.cols}")
    if args.prior is not None and not 1 <= args.prior <= MAX_IMAGES:
        raise ConfigError(f"--prior must be between 1 and {MAX_IMAGES}, not {args.prior}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be 0 or more, not {args.seed}")
    if os.path.isdir(args.out):
        raise ConfigError(f"{args.out}: is a directory")
    if os.path.exists(args.out) and not args.force:  # before decoding, as export refuses early
        raise ConfigError(f"{args.out}: file exists (use --force to replace it)")
    z_given = parse_z(args.z) if args.z else None
    if z_given is not None and len(z_given) > MAX_IMAGES:
        raise ConfigError(f"--z: at most {MAX_IMAGES} latent vectors, not {len(z_given)}")
    decoder = OnnxDecoder(args.model)
    z = z_given if z_given is not None else prior_samples(args.prior, decoder.latent_dim, args.seed)
    images = decoder.decode_uint8(z)
    rows, cols = grid_shape(len(images), args.cols)
    grid = tile(images, rows, cols, pad=1, fill=0)
    write_png(args.out, grid, overwrite=args.force)
    h, w = grid.shape[:2]
    print(f"wrote {args.out}: {len(images)} images of {'x'.join(map(str, decoder.image_shape))} "
          f"in a {rows} x {cols} grid ({w} x {h} pixels)")
    return 0
