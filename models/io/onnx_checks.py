"""Checks on an ONNX file before onnxruntime sees it, and a time bound on every run.

numpy-free and torch-free: the standard library and onnxruntime's ``RunOptions`` only.

:func:`scan_model` walks the file's protobuf wire format itself (no ``onnx`` package needed) and

- refuses every tensor that keeps its values in another file (``data_location = EXTERNAL`` or an
  ``external_data`` entry): initializers, sparse initializers, tensors in node attributes
  (``Constant``), in subgraphs (``Loop``/``If``/``Scan`` bodies), in functions and training
  graphs. Our exports never use external data, and onnxruntime's own path check has had gaps
  (sparse initializers and hard links were still read in 1.26), so we refuse them whatever the
  installed version;
- decodes the metadata, producer and opsets itself, refusing text that is not UTF-8 with one line
  (onnxruntime's ``custom_metadata_map`` raises UnicodeDecodeError on a 0xff byte);
- refuses a file whose structure is not valid protobuf (lengths past the end, bad varints).

:class:`RunGuard` runs a session with ``RunOptions`` and a shared watchdog thread that sets
``terminate`` on a run past its deadline (a graph that loops 1e15 times), so that every decode
ends in bounded time.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import onnxruntime as ort

from models.errors import ModelFileError

#: The largest ONNX file we read (protobuf itself stops at 2 GiB).
MAX_FILE_BYTES = 2**31 - 1
#: Subgraphs nested deeper than this are refused (a crafted file could nest them endlessly).
MAX_DEPTH = 32
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL

# Field numbers of onnx.proto3 (ModelProto and the messages it contains) that hold messages we
# descend into; every other field is skipped by its wire type.
_MODEL_GRAPH, _MODEL_OPSET, _MODEL_META, _MODEL_TRAINING, _MODEL_FUNCTIONS = 7, 8, 14, 20, 25
_GRAPH_NODE, _GRAPH_INIT, _GRAPH_SPARSE = 1, 5, 15
_NODE_ATTR = 5
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_FUNC_NODE = 7
_TRAIN_GRAPHS = (1, 2)  # TrainingInfoProto.initialization, .algorithm
_SPARSE_TENSORS = (1, 2)  # SparseTensorProto.values, .indices
_TENSOR_NAME, _TENSOR_EXTERNAL, _TENSOR_LOCATION = 8, 13, 14
# Text fields onnxruntime turns into Python str (a bad byte there is a UnicodeDecodeError deep in
# its session constructor, which prints an "EP Error" banner and retries).
_GRAPH_TEXT = (2,)  # name
_GRAPH_VALUE_INFO = (11, 12, 13)  # input, output, value_info: ValueInfoProto.name = 1
_NODE_TEXT = (1, 2, 3, 4, 7)  # input, output, name, op_type, domain


@dataclass
class ModelSummary:
    """What :func:`scan_model` read: metadata (raw string values), producer, opsets."""

    metadata: dict[str, str] = field(default_factory=dict)
    producer: str = ""
    opset: dict[str, int] = field(default_factory=dict)
    graph: bytes = b""  # the serialized GraphProto, as stored


#: Our metadata key holding the file's checksum (a JSON string), written by the export.
CHECKSUM_KEY = "latent_explorer.sha256"


def content_sha256(graph_bytes: bytes, metadata: dict[str, str]) -> str:
    """The checksum recorded under :data:`CHECKSUM_KEY`: SHA-256 (hex) of the serialized
    GraphProto and of every other metadata entry (sorted, as JSON)."""
    entries = sorted((k, v) for k, v in metadata.items() if k != CHECKSUM_KEY)
    digest = hashlib.sha256(graph_bytes)
    digest.update(b"\0" + json.dumps(entries, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


class _Malformed(Exception):
    pass


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Malformed("a number runs past its message")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview, start: int, end: int):
    """Yield (field number, wire type, value) of one message: an int for varints, a (start, end)
    slice for length-delimited fields; fixed-size fields are skipped."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Malformed("a field numbered 0")
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value
        elif wire == 2:
            size, pos = _varint(buf, pos, end)
            if size > end - pos:
                raise _Malformed("a field's length runs past the end of its message")
            yield number, wire, (pos, pos + size)
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > end:
                raise _Malformed("a number runs past its message")
        else:
            raise _Malformed(f"wire type {wire}")


class _Scan:
    def __init__(self, path: str, data: bytes) -> None:
        self.path = path
        self.buf = memoryview(data)
        self.graphs: list[bytes] = []

    def text(self, span: tuple[int, int], what: str) -> str:
        raw = bytes(self.buf[span[0] : span[1]])
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = raw[exc.start]
            raise ModelFileError(
                f"{self.path}: {what} is not UTF-8 text (byte 0x{bad:02x} at {exc.start}); "
                "the file is damaged"
            ) from None

    def model(self) -> ModelSummary:
        out = ModelSummary()
        names = {2: "", 3: ""}
        for number, wire, value in _fields(self.buf, 0, len(self.buf)):
            if wire != 2:
                continue
            if number in names:
                names[number] = self.text(value, "the producer name")
            elif number == _MODEL_GRAPH:
                self.graphs.append(bytes(self.buf[value[0] : value[1]]))
                self.graph(value, 0)
            elif number == _MODEL_OPSET:
                domain, version = "", 0
                for n, w, v in _fields(self.buf, *value):
                    if n == 1 and w == 2:
                        domain = self.text(v, "an opset domain")
                    elif n == 2 and w == 0:
                        version = v
                out.opset[domain or "ai.onnx"] = version
            elif number == _MODEL_META:
                key = val = ""
                for n, w, v in _fields(self.buf, *value):
                    if n == 1 and w == 2:
                        key = self.text(v, "a metadata key")
                    elif n == 2 and w == 2:
                        val = self.text(v, f"the metadata value of {key or '(a key)'!r}")
                out.metadata[key] = val
            elif number == _MODEL_TRAINING:
                for n, w, v in _fields(self.buf, *value):
                    if n in _TRAIN_GRAPHS and w == 2:
                        self.graph(v, 1)
            elif number == _MODEL_FUNCTIONS:
                for n, w, v in _fields(self.buf, *value):
                    if n == _FUNC_NODE and w == 2:
                        self.node(v, 1)
        out.producer = " ".join(p for p in names.values() if p)
        out.graph = b"".join(self.graphs)
        return out

    def graph(self, span: tuple[int, int], depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ModelFileError(f"{self.path}: subgraphs nested more than {MAX_DEPTH} deep")
        for number, wire, value in _fields(self.buf, *span):
            if wire != 2:
                continue
            if number in _GRAPH_TEXT:
                self.text(value, "the graph's name")
            elif number in _GRAPH_VALUE_INFO:
                for n, w, v in _fields(self.buf, *value):
                    if n == 1 and w == 2:
                        self.text(v, "an input or output name")
            elif number == _GRAPH_NODE:
                self.node(value, depth)
            elif number == _GRAPH_INIT:
                self.tensor(value, "initializer")
            elif number == _GRAPH_SPARSE:
                self.sparse(value, "sparse initializer")

    def node(self, span: tuple[int, int], depth: int) -> None:
        for number, wire, value in _fields(self.buf, *span):
            if wire == 2 and number in _NODE_TEXT:
                self.text(value, "a node's name, type or tensor name")
            if number != _NODE_ATTR or wire != 2:
                continue
            for n, w, v in _fields(self.buf, *value):
                if w != 2:
                    continue
                if n == 1:
                    self.text(v, "an attribute name")
                elif n in (_ATTR_T, _ATTR_TENSORS):
                    self.tensor(v, "tensor in a node attribute")
                elif n in (_ATTR_G, _ATTR_GRAPHS):
                    self.graph(v, depth + 1)
                elif n in (_ATTR_SPARSE, _ATTR_SPARSES):
                    self.sparse(v, "sparse tensor in a node attribute")

    def sparse(self, span: tuple[int, int], what: str) -> None:
        for number, wire, value in _fields(self.buf, *span):
            if number in _SPARSE_TENSORS and wire == 2:
                self.tensor(value, what)

    def tensor(self, span: tuple[int, int], what: str) -> None:
        name, external = "", False
        for number, wire, value in _fields(self.buf, *span):
            if number == _TENSOR_NAME and wire == 2:
                name = self.text(value, "a tensor name")
            elif number == _TENSOR_EXTERNAL and wire == 2:
                external = True
            elif number == _TENSOR_LOCATION and wire == 0 and value == _EXTERNAL:
                external = True
        if external:
            raise ModelFileError(
                f"{self.path}: {what} {name[:80]!r} keeps its values in another file (external "
                "data); refused, as a model file must not make us read other files"
            )


def scan_model(path: str, data: bytes) -> ModelSummary:
    """Check an ONNX file's bytes (see the module docstring); ModelFileError with one line."""
    if len(data) > MAX_FILE_BYTES:
        raise ModelFileError(f"{path}: {len(data)} bytes, larger than any ONNX model file can be")
    try:
        summary = _Scan(path, data).model()
    except _Malformed as exc:
        raise ModelFileError(f"{path}: not a usable ONNX model (damaged protobuf: {exc})") from None
    except RecursionError:
        raise ModelFileError(f"{path}: not a usable ONNX model (nested too deeply)") from None
    recorded = summary.metadata.get(CHECKSUM_KEY)
    if recorded is not None:
        try:
            recorded = json.loads(recorded)
        except ValueError:
            pass
        if recorded != content_sha256(summary.graph, summary.metadata):
            raise ModelFileError(
                f"{path}: the model does not match the checksum recorded in its metadata; "
                "the file is damaged"
            )
    return summary


# --------------------------------------------------------------------------- bounded runs
#: Every run may take this long, whatever its size.
MIN_RUN_SECONDS = 10.0
#: Plus this much per sample and per byte of the model file: about 1000 times what a CPU needs to
#: run a decoder whose work is proportional to its weights (a convolution reuses each weight a few
#: hundred times, still well inside).
SECONDS_PER_SAMPLE_BYTE = 1e-6
_POLL_SECONDS = 0.2


class RunTimeout(Exception):
    """A run went past its deadline and was stopped; ``seconds`` is the bound it had."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"stopped after {seconds:.0f} s")
        self.seconds = seconds


class _Watchdog:
    """One daemon thread, started at first use, that sets ``terminate`` on late runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[int, tuple[float, ort.RunOptions]] = {}
        self._late: set[int] = set()
        self._thread: threading.Thread | None = None

    def start(self, opts: ort.RunOptions, seconds: float) -> None:
        with self._lock:
            self._runs[id(opts)] = (time.monotonic() + seconds, opts)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="onnx-watchdog", daemon=True)
                self._thread.start()

    def finish(self, opts: ort.RunOptions) -> bool:
        """Forget the run; True if the watchdog stopped it."""
        with self._lock:
            self._runs.pop(id(opts), None)
            late = id(opts) in self._late
            self._late.discard(id(opts))
            return late

    def _loop(self) -> None:
        while True:
            time.sleep(_POLL_SECONDS)
            now = time.monotonic()
            with self._lock:
                for key, (deadline, opts) in self._runs.items():
                    if now > deadline and key not in self._late:
                        opts.terminate = True
                        self._late.add(key)


_WATCHDOG = _Watchdog()


def run_bounded(session: ort.InferenceSession, outputs: list[str], feeds: dict[str, Any],
                seconds: float) -> list[Any]:
    """``session.run`` stopped after ``seconds`` (RunTimeout); other errors pass through."""
    opts = ort.RunOptions()
    opts.log_severity_level = 4  # our one line says what went wrong; onnxruntime's log stays quiet
    _WATCHDOG.start(opts, seconds)
    try:
        out = session.run(outputs, feeds, opts)
    except Exception:
        if _WATCHDOG.finish(opts):
            raise RunTimeout(seconds) from None
        raise
    _WATCHDOG.finish(opts)
    return out


def run_budget(n_samples: int, model_bytes: int) -> float:
    """Seconds a run of ``n_samples`` through a model file of ``model_bytes`` may take."""
    return MIN_RUN_SECONDS + SECONDS_PER_SAMPLE_BYTE * max(1, n_samples) * max(1, model_bytes)
