"""Opening ONNX files for the torch-free runtime: checked bytes, sessions, signature, metadata.

``_read`` refuses what is not a regular file and runs :func:`models.io.onnx_checks.scan_model`
on the bytes; ``_session`` builds an onnxruntime CPU session from those same bytes. Every problem
is a :class:`models.errors.ModelFileError` with one line naming the file.
:func:`inspect_model` describes any ONNX file (signature and metadata).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from models.data.files import check_regular_file
from models.errors import ModelFileError
from models.io.onnx_checks import MAX_FILE_BYTES, ModelSummary, scan_model

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


def _read(path: str | os.PathLike) -> tuple[str, bytes, ModelSummary]:
    """The file's name, bytes and checked summary (:func:`scan_model`), or ModelFileError."""
    name = os.fspath(path)
    st = check_regular_file(name, ModelFileError, "an ONNX model file")
    if st.st_size > MAX_FILE_BYTES:
        raise ModelFileError(f"{name}: {st.st_size} bytes, larger than any ONNX model file can be")
    try:
        with open(name, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ModelFileError(f"{name}: cannot read: {exc.strerror or exc}") from None
    return name, data, scan_model(name, data)


def _session(name: str, data: bytes, threads: int | None) -> ort.InferenceSession:
    """An onnxruntime CPU session for the checked bytes ``data`` of file ``name``.

    The session is built from the very bytes :func:`scan_model` checked, so the file cannot be
    swapped in between.
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = default_threads() if threads is None else int(threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only: a receiver's terminal stays quiet
    # Idle worker threads sleep instead of spinning: decoding at 60 Hz while dragging otherwise
    # keeps most of a core busy between calls (measured: 1.2 s vs 0.14 s of CPU per 2 s of
    # dragging, MLP decoder), taken from a training run on the same machine. Latency is unchanged.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own pybind types (InvalidProtobuf, Fail, ...)
        raise ModelFileError(f"{name}: not a usable ONNX model ({_short(exc)})") from None


def _open_session(path: str | os.PathLike, threads: int | None) -> tuple[str, ort.InferenceSession]:
    """An onnxruntime CPU session for ``path`` after :func:`scan_model`, or ModelFileError."""
    name, data, _ = _read(path)
    return name, _session(name, data, threads)


def _signature(name: str, session: ort.InferenceSession) -> tuple[list[Any], list[Any]]:
    """The session's inputs and outputs; a name that is not UTF-8 is damage, not a traceback."""
    try:
        inputs, outputs = session.get_inputs(), session.get_outputs()
        for arg in (*inputs, *outputs):
            arg.name, arg.type, arg.shape  # noqa: B018 - each converts C++ strings to str
    except UnicodeDecodeError:
        raise ModelFileError(f"{name}: an input or output name is not UTF-8 text; the file is damaged") from None
    return inputs, outputs


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
    name, data, summary = _read(path)
    session = _session(name, data, threads=1)
    inputs, outputs = _signature(name, session)
    return {
        "path": name,
        "inputs": [vars(i) | {"shape": list(i.shape)} for i in _infos(inputs)],
        "outputs": [vars(o) | {"shape": list(o.shape)} for o in _infos(outputs)],
        "metadata": parse_metadata(summary.metadata),
        "producer": summary.producer,
        "opset": summary.opset or None,
    }
