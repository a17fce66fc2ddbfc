"""Crafted ONNX files: each gives one ModelFileError line (CLI: exit 2), never a traceback, a hang,
an allocation of the size a file declares, or a read of another file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from models.cli.main import main
from models.errors import ModelFileError
from models.io import onnx_checks
from models.io.onnx_checks import scan_model
from models.io.onnx_runtime import META_PREFIX, OnnxDecoder, OnnxEncoder, inspect_model

W = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)


def _model(nodes, inputs, outputs, inits=(), meta=None, sparse=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits), sparse_initializer=list(sparse))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in (meta or {}).items():
        model.metadata_props.add(key=k, value=v)
    return model


def _decoder(meta=None, out_shape=("N", 4)) -> onnx.ModelProto:
    return _model(
        [helper.make_node("MatMul", ["z", "W"], ["h"]), helper.make_node("Sigmoid", ["h"], ["y"])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        [numpy_helper.from_array(W, "W")],
        meta,
    )


def _write(path: Path, model: onnx.ModelProto | bytes) -> Path:
    path.write_bytes(model if isinstance(model, bytes) else model.SerializeToString())
    return path


def _refused(path: Path, match: str, openers=(OnnxDecoder, inspect_model)) -> None:
    for opener in openers:
        with pytest.raises(ModelFileError, match=match) as info:
            opener(path)
        text = str(info.value)
        assert text.startswith(str(path)) and "\n" not in text and len(text) < 400


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- text
def test_a_0xff_byte_in_a_metadata_value_is_one_line(tmp_path, capsys) -> None:
    raw = _decoder({META_PREFIX + "dataset": '"mnist"'}).SerializeToString()
    raw = raw.replace(b'"mnist"', b'"mn\xffst"')
    path = _write(tmp_path / "meta.onnx", raw)
    _refused(path, r"metadata value of 'latent_explorer.dataset' is not UTF-8", (OnnxDecoder, OnnxEncoder, inspect_model))
    for argv in (["inspect", str(path)], ["decode", str(path), "--prior", "2", "--out", str(tmp_path / "g.png")]):
        code, _, err = _cli(argv, capsys)
        assert code == 2 and err.count("\n") == 1 and "not UTF-8" in err
    assert not (tmp_path / "g.png").exists()


def test_an_input_name_that_is_not_utf8_is_one_line(tmp_path) -> None:
    raw = _decoder().SerializeToString().replace(b"\n\x01z", b"\n\x01\xff")  # graph input "z"
    path = _write(tmp_path / "name.onnx", raw)
    with pytest.raises(ModelFileError) as info:
        OnnxDecoder(path)
    assert "\n" not in str(info.value)


def test_scan_reads_metadata_producer_and_opset_itself(tmp_path) -> None:
    model = _decoder({"k": "v"})
    model.producer_name, model.producer_version = "tool", "1.0"
    summary = scan_model("x.onnx", model.SerializeToString())
    assert summary.metadata == {"k": "v"} and summary.producer == "tool 1.0"
    assert summary.opset == {"ai.onnx": 17}


# --------------------------------------------------------------------------- sizes and types
def test_a_billion_wide_input_is_refused_before_any_allocation(tmp_path) -> None:
    model = _model(
        [helper.make_node("ReduceMean", ["z"], ["y"], axes=[1], keepdims=1)],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 10**9])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
    )
    model.opset_import[0].version = 13
    _refused(_write(tmp_path / "wide.onnx", model), "latent size 1000000000", (OnnxDecoder,))


def test_a_huge_output_is_refused_and_the_range_probe_is_bounded(tmp_path) -> None:
    shape = np.array([1, 5000, 5000], np.int64)  # 25 M values per sample: over the display limit
    model = _model(
        [helper.make_node("Expand", ["z", "s"], ["y"])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5000, 5000])],
        [numpy_helper.from_array(shape, "s")],
    )
    _refused(_write(tmp_path / "big.onnx", model), "25000000 values", (OnnxDecoder,))


def test_a_string_output_is_refused(tmp_path) -> None:
    model = _model(
        [helper.make_node("Cast", ["z"], ["y"], to=TensorProto.STRING)],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.STRING, ["N", 3])],
    )
    _refused(_write(tmp_path / "str.onnx", model), r"tensor\(string\), not numbers", (OnnxDecoder,))


def test_an_output_batch_that_differs_from_the_input_batch_is_refused(tmp_path, capsys) -> None:
    model = _model(  # the mean over the batch: always one sample, whatever N is
        [helper.make_node("ReduceMean", ["z"], ["m"], axes=[0], keepdims=1),
         helper.make_node("MatMul", ["m", "W"], ["h"]), helper.make_node("Sigmoid", ["h"], ["y"])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(W, "W")],
    )
    model.opset_import[0].version = 13
    _refused(_write(tmp_path / "probed.onnx", model), "returned 1 samples for 256", (OnnxDecoder,))
    model.metadata_props.add(key=META_PREFIX + "display_range", value="[0, 1]")  # no probe run
    path = _write(tmp_path / "batch.onnx", model)
    d = OnnxDecoder(path)
    with pytest.raises(ModelFileError, match="returned 1 samples for 4 latent vectors"):
        d.decode_uint8(np.zeros((4, 3), np.float32))
    code, out, err = _cli(["decode", str(path), "--prior", "4", "--out", str(tmp_path / "g.png")], capsys)
    assert code == 2 and "wrote" not in out and err.count("\n") == 1
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("value", ["[-1e308, 1e308]", "[0, Infinity]", "[NaN, 1]", "[1, 1]",
                                   "[2, 1]", '"wide"', "[0, 1e400]", "[0, 1" + "0" * 400 + "]"])
def test_absurd_display_ranges_are_refused(tmp_path, capsys, value) -> None:
    path = _write(tmp_path / "range.onnx", _decoder({META_PREFIX + "display_range": value}))
    _refused(path, "display.range", (OnnxDecoder,))
    code, _, err = _cli(["decode", str(path), "--prior", "2", "--out", str(tmp_path / "g.png")], capsys)
    assert code == 2 and err.count("\n") == 1 and not (tmp_path / "g.png").exists()


# --------------------------------------------------------------------------- time
def _endless_loop() -> onnx.ModelProto:
    body = helper.make_graph(
        [helper.make_node("Identity", ["c"], ["c_out"]), helper.make_node("Identity", ["x"], ["x_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x_out", TensorProto.FLOAT, None)],
    )
    return _model(
        [helper.make_node("Loop", ["M", "cond", "z"], ["h"], body=body),
         helper.make_node("MatMul", ["h", "W"], ["y"])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(np.array(10**15, np.int64), "M"),
         numpy_helper.from_array(np.array(True), "cond"), numpy_helper.from_array(W, "W")],
        {META_PREFIX + "display_range": "[0, 1]"},  # no probe: the first decode is the endless one
    )


def test_a_graph_that_loops_1e15_times_is_stopped_with_one_line(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(onnx_checks, "MIN_RUN_SECONDS", 1.0)
    path = _write(tmp_path / "loop.onnx", _endless_loop())
    d = OnnxDecoder(path)
    with pytest.raises(ModelFileError, match="stopped after 1 s"):
        d.decode(np.zeros((2, 3), np.float32))
    code, _, err = _cli(["decode", str(path), "--prior", "2", "--out", str(tmp_path / "g.png")], capsys)
    assert code == 2 and err.count("\n") == 1 and "stopped after" in err
    # the decoder still works for the next call's budget (the terminate flag is per run)
    with pytest.raises(ModelFileError, match="stopped"):
        d.decode(np.zeros((1, 3), np.float32))


# --------------------------------------------------------------------------- other files
def _external(tensor: onnx.TensorProto, location: str) -> onnx.TensorProto:
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    tensor.external_data.add(key="length", value="48")
    return tensor


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(12, dtype=np.float32).tobytes())
    return secret


def test_an_external_initializer_is_refused_even_inside_the_model_folder(tmp_path) -> None:
    _secret(tmp_path)
    model = _decoder()
    _external(model.graph.initializer[0], "secret.bin")
    _refused(_write(tmp_path / "ext.onnx", model), "initializer 'W' keeps its values in another file",
             (OnnxDecoder, OnnxEncoder, inspect_model))


def test_external_tensors_in_sparse_initializers_attributes_and_subgraphs_are_refused(tmp_path) -> None:
    secret = str(_secret(tmp_path))
    values = _external(numpy_helper.from_array(W.ravel(), "v"), secret)
    indices = numpy_helper.from_array(np.arange(12, dtype=np.int64), "i")
    sparse = helper.make_sparse_tensor(values, indices, [3, 4])
    sparse_model = _decoder()
    del sparse_model.graph.initializer[:]
    sparse_model.graph.sparse_initializer.append(sparse)
    sparse_model.graph.sparse_initializer[0].values.name = "W"
    constant = _decoder()
    del constant.graph.initializer[:]
    constant.graph.node.insert(0, helper.make_node("Constant", [], ["W"], sparse_value=sparse))
    body_value = _external(numpy_helper.from_array(W, "Wb"), secret)
    loop = _endless_loop()
    loop.graph.node[0].attribute[0].g.node.insert(0, helper.make_node("Constant", [], ["k"], value=body_value))
    for name, model, what in (("sparse", sparse_model, "sparse initializer"),
                              ("constant", constant, "sparse tensor in a node attribute"),
                              ("loop", loop, "tensor in a node attribute")):
        _refused(_write(tmp_path / f"{name}.onnx", model), f"{what} .* another file", (OnnxDecoder,))


def test_a_fifo_is_refused_without_blocking(tmp_path) -> None:
    fifo = tmp_path / "pipe.onnx"
    import os

    os.mkfifo(fifo)
    _refused(fifo, "not a regular file", (OnnxDecoder, OnnxEncoder, inspect_model))


def test_deeply_nested_or_malformed_protobuf_is_one_line(tmp_path) -> None:
    good = _decoder().SerializeToString()
    for name, data in (("len", b"\x3a\xff\xff\xff\x0f" + good), ("varint", b"\x08" + b"\xff" * 12),
                       ("group", b"\x0b\x0c")):
        _refused(_write(tmp_path / f"{name}.onnx", data), "not a usable ONNX model", (OnnxDecoder, inspect_model))
