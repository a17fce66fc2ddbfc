"""Decode latent points through onnxruntime alone: no torch, no Qt.

This module is what a person who received a ``.onnx`` decoder needs, and what the explorer uses
for every dragged latent point. It imports numpy and onnxruntime only (an import-linter contract
and a test with torch made unimportable keep it so).

``OnnxDecoder(path)`` opens our own exported decoders (and reads their ``latent_explorer.*``
metadata) as well as third-party decoders without metadata whose single input is a float matrix
[N, d]. ``decode(z)`` returns float32 values in [0, 1] ready for display; ``decode_uint8(z)``
returns display-ready uint8 images. ``OnnxEncoder(path)`` runs an exported encoder,
x -> (mu, logvar). ``inspect_model(path)`` describes any ONNX file (signature and metadata).

Every file problem raises :class:`models.errors.ModelFileError` with one line naming the file.
"""


from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from models.errors import ModelFileError
from models.io.onnx_checks import RunTimeout, run_bounded, run_budget
from models.io.onnx_encoder import OnnxEncoder
from models.io.onnx_session import (
    _FLOAT_TYPES,
    FORMAT_VERSION,
    META_PREFIX,
    SMALL_BATCH,
    TensorInfo,
    _as_array,
    _dims,
    _fmt_shape,
    _open_session,
    _read,
    _session,
    _short,
    _signature,
    default_threads,
    inspect_model,
    parse_metadata,
)

__all__ = [  # what the rest of the program imports from here
    "FORMAT_VERSION", "META_PREFIX", "SMALL_BATCH", "OnnxDecoder", "OnnxEncoder", "TensorInfo",
    "_open_session", "default_threads", "image_shape", "inspect_model", "parse_metadata", "to_images",
]

_RANGE_PROBE_N = 256
_RANGE_PROBE_SEED = 0
#: Memory the display-range probe may use (its draws and outputs, float64).
_PROBE_BYTES = 256 * 2**20
#: Output types shown as numbers (anything else, e.g. tensor(string), is refused).
_NUMERIC_TYPES = set(_FLOAT_TYPES) | {
    f"tensor({t})" for t in ("uint8", "int8", "uint16", "int16", "int32", "int64", "uint32", "uint64")
}
#: The widest latent space a decoder may take.
MAX_LATENT_DIM = 65536
#: The most values one decoded sample may have (a 4096 x 4096 image).
MAX_SAMPLE_VALUES = 4096 * 4096
#: The most memory one decode call may produce (float64 upper bound of its output).
MAX_DECODE_BYTES = 2 * 2**30
#: A display range is refused when its ends are beyond this magnitude (float32 outputs could not
#: be told apart inside it anyway) or closer than this width.
_RANGE_LIMIT = 1e30
_RANGE_MIN_WIDTH = 1e-30


def _checked_range(path: str, lo: float, hi: float) -> tuple[float, float]:
    """(lo, hi) if it is a usable display range: finite, hi > lo, not absurdly wide or narrow."""
    ok = (
        math.isfinite(lo) and math.isfinite(hi) and hi - lo >= _RANGE_MIN_WIDTH
        and max(abs(lo), abs(hi)) <= _RANGE_LIMIT
    )
    if not ok:
        raise ModelFileError(
            f"{path}: display range [{lo:.4g}, {hi:.4g}] is not usable (it must be finite, "
            f"within ±{_RANGE_LIMIT:.0e} and wider than {_RANGE_MIN_WIDTH:.0e})"
        )
    return lo, hi


def image_shape(output_shape: Sequence[int]) -> tuple[int, ...]:
    """Display layout of one sample: (H, W) for grey, (H, W, 3) for RGB.

    (1, H, W) and (H, W) -> (H, W); (3, H, W) -> (H, W, 3); (H, W, 1|3) -> (H, W[, 3]);
    a flat (D,) becomes a square (s, s) when D = s*s and a strip (1, D) otherwise; anything else
    becomes (shape[0], prod(rest)).
    """
    return _image_shape(tuple(int(s) for s in output_shape))


@functools.lru_cache(maxsize=64)
def _image_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    if len(shape) == 1:
        s = math.isqrt(shape[0])
        return (s, s) if s * s == shape[0] else (1, shape[0])
    if len(shape) == 2:
        return shape
    if len(shape) == 3:
        if shape[0] == 1:
            return shape[1:]
        if shape[0] == 3:
            return (shape[1], shape[2], 3)
        if shape[2] == 1:
            return shape[:2]
        if shape[2] == 3:
            return shape
    return (shape[0], int(np.prod(shape[1:])))


def to_images(x: np.ndarray, output_shape: Sequence[int]) -> np.ndarray:
    """[N, *output_shape] -> [N, *image_shape(output_shape)] (a view or a copy, same dtype)."""
    shape = tuple(output_shape)
    if len(shape) == 3 and shape[0] == 3:
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    return x.reshape(x.shape[0], *_image_shape(shape))  # cached: this runs for every frame



def to_display(out: np.ndarray, display_range: tuple[float, float], top: float = 1.0) -> np.ndarray:
    """A float32 array mapped from ``display_range`` (the values shown as black and white) to
    [0, top], in place: values beyond it are clipped, NaN (a broken third-party model) becomes 0.
    With ``top`` 255, 0.5 is added too, so that truncation to uint8 rounds (:func:`grey_levels`)."""
    lo, hi = display_range
    if (lo, hi) != (0.0, 1.0):
        np.subtract(out, np.float32(lo), out=out)
        np.multiply(out, np.float32(top / (hi - lo)), out=out)
    elif top != 1.0:
        np.multiply(out, np.float32(top), out=out)
    if top != 1.0:
        np.add(out, np.float32(0.5), out=out)
    np.fmax(out, np.float32(0.0), out=out)  # fmax/fmin, unlike clip, turn NaN into a bound
    np.fmin(out, np.float32(top), out=out)
    return out


def grey_levels(x: Any, display_range: tuple[float, float], output_shape: Sequence[int]) -> np.ndarray:
    """Rows [N, *output_shape] of model-space values as uint8 images ([N, H, W] grey or
    [N, H, W, 3]): ``display_range`` shown as 0 and 255, rounded, laid out by :func:`to_images`."""
    out = np.array(x, dtype=np.float32).reshape(-1, *output_shape)  # a copy: mapped in place
    return to_images(to_display(out, display_range, 255.0).astype(np.uint8), output_shape)


# --------------------------------------------------------------------------- decoder
class OnnxDecoder:
    """An ONNX decoder z [N, d] -> x [N, *output_shape], run by onnxruntime on the CPU.

    Parameters
    ----------
    path
        An ``.onnx`` file whose single input is a float matrix [N, d] (d fixed in the graph, or
        given by our ``latent_explorer.latent_dim`` metadata). Its first output is the decoded
        sample; its shape is read from the graph, or found by a probe run when the graph leaves
        it open.
    threads
        onnxruntime intra-op threads for batches larger than :data:`SMALL_BATCH` (smaller ones
        always run on one thread); default :func:`default_threads`.

    Attributes
    ----------
    latent_dim : int
    output_shape : tuple[int, ...]
        One sample's shape, e.g. (1, 28, 28).
    image_shape : tuple[int, ...]
        One sample in display layout: (H, W) or (H, W, 3).
    metadata : dict
        Parsed metadata (see :func:`parse_metadata`); empty for a third-party file without any.
    display_range : tuple[float, float]
        The output values mapped to 0 and 1 by :meth:`decode`: (0, 1) for probabilities and for
        data scaled to [0, 1]; otherwise a fixed range estimated once, when the file is opened,
        from the 0.5th and 99.5th percentiles of the decoded means of 256 prior draws
        z ~ N(0, I) (seed 0), or taken from a ``display_range`` metadata entry.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None) -> None:
        self.path, data, summary = _read(path)
        self._session = _session(self.path, data, threads=1)
        self._model_bytes = len(data)
        self.threads = default_threads() if threads is None else max(1, int(threads))
        self._pool = self._session  # replaced by a multi-threaded session once the file checks out
        self.metadata = parse_metadata(summary.metadata)
        inputs, outputs = _signature(self.path, self._session)
        if len(inputs) != 1:
            raise ModelFileError(
                f"{self.path}: has {len(inputs)} inputs; a decoder takes one latent matrix [N, d]"
            )
        inp = inputs[0]
        shape = _dims(inp.shape or [])
        if inp.type not in _FLOAT_TYPES or len(shape) != 2:
            raise ModelFileError(
                f"{self.path}: input '{inp.name}' is {inp.type} {_fmt_shape(shape)}, "
                "not a float matrix [N, d] of latent vectors"
            )
        if not outputs:
            raise ModelFileError(f"{self.path}: the model has no outputs")
        if outputs[0].type not in _NUMERIC_TYPES:
            raise ModelFileError(
                f"{self.path}: output '{outputs[0].name}' is {outputs[0].type}, not numbers"
            )
        meta_d = self.metadata.get("latent_dim")
        if isinstance(shape[1], int):
            d = shape[1]
            if isinstance(meta_d, int) and meta_d != d:
                raise ModelFileError(
                    f"{self.path}: metadata says latent_dim {meta_d} but the graph's input has {d}"
                )
        elif isinstance(meta_d, int) and meta_d > 0:
            d = meta_d
        else:
            raise ModelFileError(
                f"{self.path}: input '{inp.name}' has no fixed latent size {_fmt_shape(shape)} "
                "and the file has no latent_dim metadata"
            )
        if not 1 <= d <= MAX_LATENT_DIM:
            raise ModelFileError(
                f"{self.path}: input '{inp.name}' has latent size {d}; "
                f"a decoder takes 1 to {MAX_LATENT_DIM} latent dimensions"
            )
        self.latent_dim: int = int(d)
        self._in_name = inp.name
        self._in_dtype = _FLOAT_TYPES[inp.type]
        self._out_names = [outputs[0].name]
        self._fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        if self._fixed_batch is not None and self._fixed_batch > MAX_LATENT_DIM:
            raise ModelFileError(f"{self.path}: input '{inp.name}' has a fixed batch of {shape[0]}")
        self.output_shape: tuple[int, ...] | None = None  # known after the graph or a probe

        out_shape = _dims(outputs[0].shape or [])
        if len(out_shape) >= 2 and all(isinstance(s, int) for s in out_shape[1:]):
            self.output_shape = tuple(int(s) for s in out_shape[1:])
        else:
            probe = self._run(np.zeros((1, self.latent_dim), dtype=self._in_dtype))
            if probe.ndim < 2 or probe.shape[0] != 1:
                raise ModelFileError(
                    f"{self.path}: output '{outputs[0].name}' has shape {list(probe.shape)} "
                    "for one latent vector; expected [1, ...]"
                )
            self.output_shape = tuple(int(s) for s in probe.shape[1:])
        self._sample_values = math.prod(self.output_shape)
        if not 1 <= self._sample_values <= MAX_SAMPLE_VALUES:
            raise ModelFileError(
                f"{self.path}: one decoded sample has shape {list(self.output_shape)} "
                f"({self._sample_values} values); at most {MAX_SAMPLE_VALUES} are shown"
            )
        meta_shape = self.metadata.get("data_shape")
        if isinstance(meta_shape, list) and tuple(meta_shape) != self.output_shape:
            raise ModelFileError(
                f"{self.path}: metadata says data_shape {meta_shape} but the graph outputs "
                f"{list(self.output_shape)}"
            )
        self.image_shape = image_shape(self.output_shape)
        # A second session with a thread pool for large batches (strips, grids); same file.
        if self.threads > 1:
            self._pool = _session(self.path, data, self.threads)
        del data
        self.display_range = _checked_range(self.path, *self._find_display_range())
        lo, hi = self.display_range

    # ------------------------------------------------------------------ internals
    def _run(self, z: np.ndarray) -> np.ndarray:
        b = self._fixed_batch
        if b is not None and z.shape[0] != b:  # a graph with a fixed batch size: run in chunks
            n = z.shape[0]
            padded = np.zeros((-(-n // b) * b, z.shape[1]), dtype=z.dtype)
            padded[:n] = z
            return np.concatenate([self._run(padded[i : i + b]) for i in range(0, len(padded), b)])[:n]
        session = self._session if z.shape[0] <= SMALL_BATCH else self._pool
        try:
            out = run_bounded(session, self._out_names, {self._in_name: z},
                              run_budget(z.shape[0], self._model_bytes))[0]
        except RunTimeout as exc:
            raise ModelFileError(
                f"{self.path}: decoding {z.shape[0]} latent vectors was stopped after "
                f"{exc.seconds:.0f} s, far longer than a model of this size needs (a loop that "
                "does not end?)"
            ) from None
        except Exception as exc:
            raise ModelFileError(f"{self.path}: onnxruntime failed to decode ({_short(exc)})") from None
        return self._checked_output(out, z.shape[0])

    def _checked_output(self, out: Any, n: int) -> np.ndarray:
        """``out`` if it is a numeric array of n samples of :attr:`output_shape`, else one line."""
        if not isinstance(out, np.ndarray) or out.dtype.kind not in "fiu":
            kind = out.dtype if isinstance(out, np.ndarray) else type(out).__name__
            raise ModelFileError(f"{self.path}: the decoder's output is {kind}, not numbers")
        if out.ndim < 1 or out.shape[0] != n:
            raise ModelFileError(
                f"{self.path}: the decoder returned {out.shape[0] if out.ndim else 'no'} samples "
                f"for {n} latent vectors (output shape {list(out.shape)})"
            )
        if self.output_shape is not None and out.shape[1:] != self.output_shape:
            raise ModelFileError(
                f"{self.path}: the decoder returned samples of shape {list(out.shape[1:])}; "
                f"its graph declares {list(self.output_shape)}"
            )
        return out

    def _find_display_range(self) -> tuple[float, float]:
        meta_range = self.metadata.get("display_range")
        if meta_range is not None:
            if not (
                isinstance(meta_range, list)
                and len(meta_range) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in meta_range)
            ):
                raise ModelFileError(
                    f"{self.path}: metadata display_range is {str(meta_range)[:60]}, not two numbers"
                )
            lo, hi = (float(v) if abs(v) < 1e300 else math.inf for v in meta_range)
            return lo, hi
        if self.metadata.get("likelihood") == "bernoulli" or self.metadata.get("scaling") == "uint8/255":
            return 0.0, 1.0
        # Unknown range: decode prior draws once and look at the values.
        rng = np.random.default_rng(_RANGE_PROBE_SEED)
        per_draw = 8 * (self.latent_dim + self._sample_values)  # float64 draws and outputs
        n = max(1, min(_RANGE_PROBE_N, _PROBE_BYTES // per_draw))
        z = rng.standard_normal((n, self.latent_dim)).astype(self._in_dtype)
        x = np.asarray(self._run(z), dtype=np.float64)
        x = x[np.isfinite(x)]
        if x.size == 0:
            return 0.0, 1.0
        lo, hi = float(np.percentile(x, 0.5)), float(np.percentile(x, 99.5))
        if lo >= -1e-3 and hi <= 1.0 + 1e-3:
            return 0.0, 1.0  # already in [0, 1]: probabilities or data scaled to [0, 1]
        if not hi > lo:
            return lo - 0.5, lo + 0.5
        return lo, hi

    def _prepare(self, z: Any) -> tuple[np.ndarray, bool]:
        """z as a C-contiguous [N, d] array of the input dtype; flag whether it was one vector."""
        if (
            type(z) is np.ndarray
            and z.dtype == self._in_dtype
            and z.ndim == 2
            and z.flags.c_contiguous
        ):
            arr, single = z, False
        else:
            # Values beyond the input type's range become inf, refused just below.
            what = f"latent vectors must be an [N, {self.latent_dim}] array of numbers"
            arr = _as_array(self.path, z, self._in_dtype, what)
            single = arr.ndim == 1
            arr = np.ascontiguousarray(arr.reshape(1, -1) if single else arr)
        if arr.ndim != 2 or arr.shape[1] != self.latent_dim:
            got = f"size {arr.shape[1]}" if arr.ndim == 2 else f"an array of shape {list(arr.shape)}"
            raise ModelFileError(
                f"{self.path}: the decoder takes latent vectors of size {self.latent_dim}; got {got}"
            )
        if arr.shape[0] == 0:
            raise ModelFileError(f"{self.path}: no latent vectors to decode")
        need = arr.shape[0] * (self._sample_values or 1) * 8
        if need > MAX_DECODE_BYTES:
            raise ModelFileError(
                f"{self.path}: decoding {arr.shape[0]} latent vectors at once would need "
                f"{need / 2**30:.1f} GiB; decode at most "
                f"{max(1, MAX_DECODE_BYTES // (8 * (self._sample_values or 1)))} at a time"
            )
        # Exact and cheaper than isfinite().all(): a float64 sum of float32 values cannot
        # overflow, and any NaN or inf makes it non-finite.
        finite = (
            np.isfinite(arr).all() if arr.dtype == np.float64 else math.isfinite(arr.sum(dtype=np.float64))
        )
        if not finite:
            with np.errstate(all="ignore"):
                was_finite = np.isfinite(np.asarray(z, dtype=np.float64)).all()
            if was_finite:  # finite numbers that do not fit the decoder's input type
                limit = float(np.finfo(self._in_dtype).max)
                raise ModelFileError(
                    f"{self.path}: latent values beyond the {np.dtype(self._in_dtype).name} input's "
                    f"range (magnitude at most {limit:.4g})"
                )
            raise ModelFileError(f"{self.path}: latent vectors must be finite (got NaN or inf)")
        return arr, single

    # ------------------------------------------------------------------ public
    def decode_raw(self, z: Any) -> np.ndarray:
        """The model's own output for z: [N, *output_shape] (the mean of p(x|z) for our files),
        not clipped or rescaled. A single vector [d] gives one sample [*output_shape]."""
        arr, single = self._prepare(z)
        out = self._run(arr)
        return out[0] if single else out

    def _display(self, z: Any, top: float) -> tuple[np.ndarray, bool]:
        """Decode and map display_range to [0, top] (:func:`to_display`)."""
        arr, single = self._prepare(z)
        out = self._run(arr)
        if out.dtype != np.float32:
            out = out.astype(np.float32)
        elif not out.flags.writeable:
            out = out.copy()
        return to_display(out, self.display_range, top), single

    def decode(self, z: Any) -> np.ndarray:
        """Display-ready float32 values in [0, 1]: [N, *output_shape] for z [N, d], or one
        sample [*output_shape] for z [d]. Values are mapped linearly from
        :attr:`display_range` to [0, 1] and clipped."""
        out, single = self._display(z, 1.0)
        return out[0] if single else out

    def decode_uint8(self, z: Any) -> np.ndarray:
        """Display-ready uint8 images, ``round(255 * decode(z))``: [N, *image_shape] for z [N, d]
        (grey [N, H, W] or RGB [N, H, W, 3]), or one image [*image_shape] for z [d]."""
        out, single = self._display(z, 255.0)
        img = to_images(out.astype(np.uint8), self.output_shape)
        return img[0] if single else img

    def __repr__(self) -> str:
        return (
            f"OnnxDecoder({self.path!r}, latent_dim={self.latent_dim}, "
            f"output_shape={self.output_shape})"
        )
