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
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from models.errors import ModelFileError

#: Prefix of our keys in the ONNX ``metadata_props`` (values are JSON-encoded strings).
META_PREFIX = "latent_explorer."
#: The metadata format this module writes (``onnx_export``) and reads.
FORMAT_VERSION = 1

_FLOAT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
}
# Number of prior draws used to estimate a fixed display range for decoders whose outputs are
# not already in [0, 1] (Gaussian data stored unscaled, or an unknown third-party decoder).
_RANGE_PROBE_N = 256
_RANGE_PROBE_SEED = 0


# --------------------------------------------------------------------------- helpers
def parse_metadata(props: dict[str, str]) -> dict[str, Any]:
    """Decode ONNX ``metadata_props``: our ``latent_explorer.*`` keys lose the prefix and their
    JSON values are decoded; any other key is kept as it is, with its raw string value."""
    out: dict[str, Any] = {}
    for key, raw in props.items():
        if key.startswith(META_PREFIX):
            try:
                out[key[len(META_PREFIX):]] = json.loads(raw)
            except ValueError:
                out[key[len(META_PREFIX):]] = raw
        else:
            out[key] = raw
    return out


def _short(exc: BaseException) -> str:
    """The gist of an onnxruntime error: its first line without the ``[ONNXRuntimeError]`` prefix."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "] :" in text:
        text = text.rsplit("] :", 1)[-1]
    parts = [p.strip() for p in text.split(" : ") if p.strip()]
    text = parts[-1] if parts else text
    text = re.sub(r"^Load model from .* failed:\s*", "", text).strip().rstrip(".")
    return (text[:1].lower() + text[1:])[:200]


def _open_session(path: str | os.PathLike, threads: int | None) -> tuple[str, ort.InferenceSession]:
    """An onnxruntime CPU session for ``path``, or ModelFileError with one line."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise ModelFileError(f"{name}: no such file")
    if os.path.isdir(name):
        raise ModelFileError(f"{name}: is a directory, not an ONNX model file")
    if os.path.getsize(name) == 0:
        raise ModelFileError(f"{name}: empty file, not an ONNX model")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = default_threads() if threads is None else int(threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only: a receiver's terminal stays quiet
    # Idle worker threads sleep instead of spinning: decoding at 60 Hz while dragging otherwise
    # keeps most of a core busy between calls (measured: 1.2 s vs 0.14 s of CPU per 2 s of
    # dragging, MLP decoder), taken from a training run on the same machine. Latency is unchanged.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(name, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own pybind types (InvalidProtobuf, Fail, ...)
        raise ModelFileError(f"{name}: not a usable ONNX model ({_short(exc)})") from None
    return name, session


def default_threads() -> int:
    """Intra-op threads for batches larger than :data:`SMALL_BATCH`: at most 4 (a pool as wide as
    the machine competes with the GUI and any training run for little gain on small decoders)."""
    return max(1, min(4, os.cpu_count() or 1))


#: Batches up to this size run on a single-threaded session: for a dragged point, waking pool
#: threads costs more than they save (measured: MLP batch 1, median 0.055 ms on one thread vs
#: 0.076 ms on two).
SMALL_BATCH = 8


def _dims(shape: Sequence[Any]) -> list[int | str | None]:
    return [d if isinstance(d, int) and d >= 0 else (d if isinstance(d, str) else None) for d in shape]


def _fmt_shape(shape: Sequence[Any]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in _dims(shape)) + "]"


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


def _as_array(path: str, values: Any, dtype: Any, what: str) -> np.ndarray:
    """``values`` as an array of ``dtype``, or ModelFileError (``"{path}: {what}; got ..."``) for
    strings, ragged rows or objects. A value beyond the dtype's range becomes inf quietly (no
    numpy overflow warning on the terminal); callers that need finite values check."""
    try:
        src = np.asarray(values)
        with np.errstate(over="ignore", invalid="ignore"):
            return src.astype(dtype, copy=False)
    except (ValueError, TypeError) as exc:
        ragged = "inhomogeneous" in str(exc)
        got = "rows of different lengths" if ragged else "values that are not numbers"
        raise ModelFileError(f"{path}: {what}; got {got}") from None


# --------------------------------------------------------------------------- inspection
@dataclass(frozen=True)
class TensorInfo:
    name: str
    type: str  # onnxruntime's spelling, e.g. "tensor(float)"
    shape: tuple[int | str | None, ...]  # ints, symbolic names (e.g. "batch") or None

    def describe(self) -> str:
        return f"{self.name}: {self.type.removeprefix('tensor(').removesuffix(')')} {_fmt_shape(self.shape)}"


def _infos(args: Sequence[Any]) -> list[TensorInfo]:
    return [TensorInfo(a.name, a.type, tuple(_dims(a.shape or []))) for a in args]


def inspect_model(path: str | os.PathLike) -> dict[str, Any]:
    """Describe any ONNX model file: its inputs, outputs, metadata (parsed) and producer.

    Returns a JSON-able dict with keys ``path, inputs, outputs, metadata, producer, opset``
    (``inputs``/``outputs``: lists of ``{name, type, shape}``; ``opset`` is None when the
    ``onnx`` package is not installed).
    """
    name, session = _open_session(path, threads=1)
    meta = session.get_modelmeta()
    producer = " ".join(p for p in (meta.producer_name, meta.version and str(meta.version)) if p)
    opset = None
    try:  # the opset is not exposed by onnxruntime; read it with onnx when available
        import onnx

        model = onnx.load(name, load_external_data=False)
        opset = {imp.domain or "ai.onnx": int(imp.version) for imp in model.opset_import}
        producer = f"{model.producer_name} {model.producer_version}".strip()
    except Exception:  # not installed, or an unusual file that onnxruntime reads anyway
        pass
    return {
        "path": name,
        "inputs": [vars(i) | {"shape": list(i.shape)} for i in _infos(session.get_inputs())],
        "outputs": [vars(o) | {"shape": list(o.shape)} for o in _infos(session.get_outputs())],
        "metadata": parse_metadata(dict(meta.custom_metadata_map)),
        "producer": producer,
        "opset": opset,
    }


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
        self.path, self._session = _open_session(path, threads=1)
        self.threads = default_threads() if threads is None else max(1, int(threads))
        self._pool = self._session  # replaced by a multi-threaded session once the file checks out
        self.metadata = parse_metadata(dict(self._session.get_modelmeta().custom_metadata_map))
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
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
        if d < 1:
            raise ModelFileError(f"{self.path}: input '{inp.name}' has latent size {d}")
        self.latent_dim: int = int(d)
        self._in_name = inp.name
        self._in_dtype = _FLOAT_TYPES[inp.type]
        self._out_names = [outputs[0].name]
        self._fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None

        out_shape = _dims(outputs[0].shape or [])
        if len(out_shape) >= 2 and all(isinstance(s, int) for s in out_shape[1:]):
            self.output_shape: tuple[int, ...] = tuple(int(s) for s in out_shape[1:])
        else:
            probe = self._run(np.zeros((1, self.latent_dim), dtype=self._in_dtype))
            if probe.ndim < 2 or probe.shape[0] != 1:
                raise ModelFileError(
                    f"{self.path}: output '{outputs[0].name}' has shape {list(probe.shape)} "
                    "for one latent vector; expected [1, ...]"
                )
            self.output_shape = tuple(int(s) for s in probe.shape[1:])
        meta_shape = self.metadata.get("data_shape")
        if isinstance(meta_shape, list) and tuple(meta_shape) != self.output_shape:
            raise ModelFileError(
                f"{self.path}: metadata says data_shape {meta_shape} but the graph outputs "
                f"{list(self.output_shape)}"
            )
        self.image_shape = image_shape(self.output_shape)
        # A second session with a thread pool for large batches (strips, grids); same file.
        if self.threads > 1:
            self._pool = _open_session(self.path, self.threads)[1]
        self.display_range = self._find_display_range()
        lo, hi = self.display_range
        self._identity_range = lo == 0.0 and hi == 1.0
        self._scale = np.float32(1.0 / (hi - lo))
        self._offset = np.float32(lo)

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
            out = session.run(self._out_names, {self._in_name: z})[0]
        except Exception as exc:
            raise ModelFileError(f"{self.path}: onnxruntime failed to decode ({_short(exc)})") from None
        return out

    def _find_display_range(self) -> tuple[float, float]:
        meta_range = self.metadata.get("display_range")
        if (
            isinstance(meta_range, list)
            and len(meta_range) == 2
            and all(isinstance(v, (int, float)) for v in meta_range)
            and meta_range[1] > meta_range[0]
        ):
            return float(meta_range[0]), float(meta_range[1])
        if self.metadata.get("likelihood") == "bernoulli" or self.metadata.get("scaling") == "uint8/255":
            return 0.0, 1.0
        # Unknown range: decode prior draws once and look at the values.
        rng = np.random.default_rng(_RANGE_PROBE_SEED)
        z = rng.standard_normal((_RANGE_PROBE_N, self.latent_dim)).astype(self._in_dtype)
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
        """Decode and map display_range to [0, top] in place (top 255: plus 0.5, for rounding
        by truncation). NaN outputs (a broken third-party model) become 0, inf is clipped."""
        arr, single = self._prepare(z)
        out = self._run(arr)
        if out.dtype != np.float32:
            out = out.astype(np.float32)
        elif not out.flags.writeable:
            out = out.copy()
        if not self._identity_range:
            np.subtract(out, self._offset, out=out)
            np.multiply(out, self._scale * np.float32(top), out=out)
        elif top != 1.0:
            np.multiply(out, np.float32(top), out=out)
        if top != 1.0:
            np.add(out, np.float32(0.5), out=out)
        np.fmax(out, np.float32(0.0), out=out)  # fmax/fmin, unlike clip, turn NaN into a bound
        np.fmin(out, np.float32(top), out=out)
        return out, single

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


# --------------------------------------------------------------------------- encoder
class OnnxEncoder:
    """An exported encoder x [N, *data_shape] -> (mu, logvar), each [N, latent_dim].

    ``encode`` returns the posterior's parameters, never a sample. The input shape is read from
    the graph (or our ``data_shape`` metadata); flat rows [N, prod(data_shape)] are reshaped.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None) -> None:
        self.path, self._session = _open_session(path, threads)
        self.metadata = parse_metadata(dict(self._session.get_modelmeta().custom_metadata_map))
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or inputs[0].type not in _FLOAT_TYPES:
            sig = ", ".join(i.describe() for i in _infos(inputs))
            raise ModelFileError(f"{self.path}: an encoder takes one float input; this has ({sig})")
        if len(outputs) != 2:
            raise ModelFileError(
                f"{self.path}: an encoder has two outputs (mu, logvar); this has {len(outputs)}"
            )
        shape = _dims(inputs[0].shape or [])
        meta_shape = self.metadata.get("data_shape")
        if len(shape) >= 2 and all(isinstance(s, int) for s in shape[1:]):
            self.data_shape: tuple[int, ...] = tuple(int(s) for s in shape[1:])
        elif isinstance(meta_shape, list):
            self.data_shape = tuple(int(s) for s in meta_shape)
        else:
            raise ModelFileError(f"{self.path}: the encoder's input shape is not fixed in the graph")
        out_shape = _dims(outputs[0].shape or [])
        meta_d = self.metadata.get("latent_dim")
        if len(out_shape) == 2 and isinstance(out_shape[1], int):
            self.latent_dim = int(out_shape[1])
        elif isinstance(meta_d, int):
            self.latent_dim = meta_d
        else:
            raise ModelFileError(f"{self.path}: the encoder's latent size is not fixed in the graph")
        self._in_name = inputs[0].name
        self._in_dtype = _FLOAT_TYPES[inputs[0].type]
        self._out_names = [o.name for o in outputs]

    def encode(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """(mu, logvar) of q(z|x), each float32 [N, latent_dim]; x [N, *data_shape] or flat."""
        arr = _as_array(self.path, x, self._in_dtype,
                        f"the encoder takes samples of shape {list(self.data_shape)} as numbers")
        size = int(np.prod(self.data_shape))
        if arr.ndim == 0 or arr.size % size or (arr.ndim > 1 and int(np.prod(arr.shape[1:])) != size):
            raise ModelFileError(
                f"{self.path}: the encoder takes samples of shape {list(self.data_shape)}; "
                f"got {list(arr.shape)}"
            )
        arr = np.ascontiguousarray(arr.reshape(-1, *self.data_shape))
        try:
            mu, logvar = self._session.run(self._out_names, {self._in_name: arr})
        except Exception as exc:
            raise ModelFileError(f"{self.path}: onnxruntime failed to encode ({_short(exc)})") from None
        return mu.astype(np.float32, copy=False), logvar.astype(np.float32, copy=False)
