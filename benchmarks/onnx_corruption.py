"""Seeded corruption of an exported decoder: every damaged copy is opened, inspected and decoded.

From one small decoder (``--decoder FILE``, or one exported here from a random MLP VAE with
latent size 2, which needs torch), it writes ``--cases`` damaged copies, a third each of:

* ``metadata``: 1 to 3 bytes flipped inside the ``latent_explorer.*`` metadata entries;
* ``data``: 1 to 8 bytes flipped anywhere in the file (graph structure, names, weights);
* ``truncate``: the file cut at a random length.

Each copy goes through ``inspect_model``, ``OnnxDecoder`` and ``decode_uint8`` of 4 prior draws,
in this process, torch-free. An outcome is one of

* ``damage reported``: a ModelFileError of one line naming the file;
* ``no effect``: the copy opens and decodes to the same images as the original;
* ``changed output``: it opens and decodes without error to other images (an ONNX file has no
  checksum: a flipped weight byte is a different, valid model);
* ``traceback``: any other exception (a bug), with its type and first line.

A run that does not end (a hang) is caught by the caller's timeout; every onnxruntime run is
bounded by ``models.io.onnx_checks`` (``--min-run-seconds``, default 2). Prints one line per
case that is not "damage reported" or "no effect", then the counts; the last line is JSON.

Usage: ``python benchmarks/onnx_corruption.py [--cases 120] [--seed 0] [--decoder FILE]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.errors import ModelFileError  # noqa: E402
try:  # absent before the checks existed: the benchmark then measures the unchecked runtime
    from models.io import onnx_checks  # noqa: E402
except ImportError:
    onnx_checks = None
from models.io.onnx_runtime import META_PREFIX, OnnxDecoder, inspect_model  # noqa: E402

KINDS = ("metadata", "data", "truncate")


def _export(folder: Path) -> Path:
    import torch

    from models.config import ModelConfig
    from models.io.onnx_export import export_decoder
    from models.nn.vae import VAE

    torch.manual_seed(0)
    path = folder / "dec.onnx"
    export_decoder(VAE(ModelConfig(latent_dim=2, hidden=(16,))), path,
                   {"dataset": "mnist", "scaling": "uint8/255", "elbo": -100.0})
    return path


def corrupt(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    if kind == "truncate":
        return bytes(buf[: int(rng.integers(0, len(buf)))])
    if kind == "metadata":
        starts = [i for i in range(len(buf)) if buf.startswith(META_PREFIX.encode(), i)]
        spans = [(s, min(len(buf), s + 96)) for s in starts]
        picks = [int(rng.integers(*spans[int(rng.integers(len(spans)))])) for _ in range(rng.integers(1, 4))]
    else:
        picks = [int(rng.integers(len(buf))) for _ in range(rng.integers(1, 9))]
    for i in picks:
        buf[i] ^= int(rng.integers(1, 256))
    return bytes(buf)


def outcome(path: Path, reference: np.ndarray, z: np.ndarray) -> str:
    try:
        inspect_model(path)
        images = OnnxDecoder(path).decode_uint8(z)
    except ModelFileError as exc:
        text = str(exc)
        if "\n" in text or not text.startswith(str(path)):
            return f"traceback: ModelFileError not one line naming the file: {text[:120]!r}"
        return "damage reported"
    except Exception as exc:  # noqa: BLE001 - this is what the benchmark counts
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        return f"traceback: {type(exc).__name__}: {first}"
    return "no effect" if np.array_equal(images, reference) else "changed output"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--decoder", type=Path)
    ap.add_argument("--min-run-seconds", type=float, default=2.0)
    args = ap.parse_args()
    if onnx_checks is not None:
        onnx_checks.MIN_RUN_SECONDS = args.min_run_seconds
    rng = np.random.default_rng(args.seed)
    z = rng.standard_normal((4, 2)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = args.decoder or _export(folder)
        data = source.read_bytes()
        decoder = OnnxDecoder(source)
        z = rng.standard_normal((4, decoder.latent_dim)).astype(np.float32)
        reference = decoder.decode_uint8(z)
        counts: Counter[str] = Counter()
        by_kind: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
        for case in range(args.cases):
            kind = KINDS[case % len(KINDS)]
            path = folder / f"case{case:03d}.onnx"
            path.write_bytes(corrupt(data, kind, rng))
            result = outcome(path, reference, z)
            label = result.split(":")[0]
            counts[label] += 1
            by_kind[kind][label] += 1
            if label not in ("damage reported", "no effect"):
                print(f"case {case} ({kind}): {result}")
            path.unlink()
    for kind in KINDS:
        print(f"{kind:>9}: " + ", ".join(f"{k} {v}" for k, v in sorted(by_kind[kind].items())))
    summary = {"cases": args.cases, "seed": args.seed, **{k.replace(" ", "_"): v for k, v in counts.items()},
               "by_kind": {k: dict(v) for k, v in by_kind.items()}}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
