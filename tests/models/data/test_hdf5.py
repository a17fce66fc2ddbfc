"""HDF5 files as data: shapes and scaling, labels, out-of-core reads, specs, one-line errors."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest

from models.data import (
    MIN_SAMPLES, Dataset, list_arrays, load_dataset, open_hdf5, parse_hdf5_spec, split_indices,
)
from models.data import dataset as data
from models.errors import DataError


def _h5(path, **arrays) -> str:
    with h5py.File(path, "w") as f:
        for name, value in arrays.items():
            f.create_dataset(name.replace("__", "/"), data=value)
    return str(path)


def test_hdf5_shapes_and_scaling(tmp_path) -> None:
    rng = np.random.default_rng(0)
    flat = rng.random((30, 7))
    imgs = rng.integers(0, 256, (20, 5, 6), dtype=np.uint8)
    rgb = rng.random((12, 3, 4, 4)).astype(np.float16)
    path = _h5(tmp_path / "d.h5", flat=flat, grp__imgs=imgs, rgb=rgb, y=np.arange(20) % 3)
    ds = load_dataset(f"{path}:flat")
    assert ds.sample_shape == (7,) and ds.scaling == "none" and len(ds) == 30
    np.testing.assert_array_equal(ds.to_numpy(), flat.astype(np.float32))
    ds = load_dataset(f"{path}:grp/imgs", labels="y")
    assert ds.sample_shape == (1, 5, 6) and ds.scaling == "uint8/255"
    np.testing.assert_allclose(ds.read([3, 0]), imgs[[3, 0], None] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.labels, np.arange(20) % 3)
    assert ds.label_names == ["0", "1", "2"]
    assert ds.name == f"{path}:grp/imgs"
    ds = load_dataset(f"{path}:rgb")
    assert ds.sample_shape == (3, 4, 4) and ds.read([0]).dtype == np.float32
    # No array path: the first numeric array of rank >= 2 in name order.
    assert load_dataset(path).name == f"{path}:flat"
    info = load_dataset(path, max_samples=10).describe()
    assert info["n"] == 10 and info["array"] == "flat" and info["file_shape"] == [30, 7]


def test_hdf5_label_names_attribute(tmp_path) -> None:
    path = tmp_path / "l.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros((10, 2))
        f["y"] = np.arange(10) % 2
        f["y"].attrs["label_names"] = ["cat", "dog"]
    ds = load_dataset(f"{path}:x", labels="y")
    assert ds.label_names == ["cat", "dog"]


def test_hdf5_out_of_core_matches_in_memory(tmp_path) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (503, 4, 4), dtype=np.uint8)
    path = _h5(tmp_path / "big.h5", x=x)
    mem = load_dataset(f"{path}:x")
    disk = load_dataset(f"{path}:x", memory_limit=0)
    assert mem.in_memory and not disk.in_memory
    idx = np.array([500, 3, 3, 0, 250, 251, 7, 502])
    np.testing.assert_array_equal(disk.read(idx), mem.read(idx))
    with pytest.raises(DataError, match="read from disk"):
        disk.to_numpy()
    disk.block_bytes = 40 * 16 * 4  # forty rows a block: many blocks
    train, val = split_indices(disk, 0.1, seed=0)
    for epoch in range(2):
        batches = list(disk.iter_batches(train, 32, np.random.default_rng(epoch)))
        assert all(len(b) == 32 for b in batches[:-1]) and 0 < len(batches[-1]) <= 32
        got = np.concatenate(batches)
        assert len(got) == len(train)
        # Every training row exactly once: match rows by their bytes.
        expect = {r.tobytes() for r in mem.read(train)}
        seen = [r.tobytes() for r in got]
        assert len(set(seen)) == len(seen) == len(expect) and set(seen) == expect
    order_a = np.concatenate(list(disk.iter_batches(train, 32, 5)))
    order_b = np.concatenate(list(disk.iter_batches(train, 32, 5)))
    np.testing.assert_array_equal(order_a, order_b)
    assert not np.array_equal(order_a, mem.read(train))  # shuffled
    # Pickled (as for a worker process): no handle travels, and reading still works.
    clone = pickle.loads(pickle.dumps(disk))
    np.testing.assert_array_equal(clone.read([1, 2]), mem.read([1, 2]))
    disk.close()
    clone.close()


def test_out_of_core_reads_are_bounded_runs(tmp_path, monkeypatch) -> None:
    x = np.random.default_rng(2).random((300, 5)).astype(np.float32)
    path = _h5(tmp_path / "runs.h5", x=x)
    disk = load_dataset(path, memory_limit=0)
    spans: list[tuple[int, int]] = []
    read = disk._source.read

    def spy(start: int, stop: int) -> np.ndarray:
        spans.append((start, stop))
        return read(start, stop)

    monkeypatch.setattr(disk._source, "read", spy)
    monkeypatch.setattr(data, "_SPAN_BYTES", 40 * 5 * 4)  # forty rows at most per read
    monkeypatch.setattr(data, "_GAP_BYTES", 3 * 5 * 4)  # gaps of up to three rows are read over
    idx = np.array([0, 2, 5, 6, 120, 121, 299, 10, 10])
    np.testing.assert_array_equal(disk.read(idx), x[idx])
    assert spans == [(0, 7), (10, 11), (120, 122), (299, 300)]
    spans.clear()
    every_third = np.arange(0, 300, 3)
    np.testing.assert_array_equal(disk.read(every_third), x[every_third])
    assert max(stop - start for start, stop in spans) <= 40
    assert sorted(spans) == spans and sum(stop - start for start, stop in spans) < 300
    disk.close()


def test_out_of_core_reads_from_several_threads(tmp_path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    x = np.random.default_rng(3).random((400, 6))
    disk = load_dataset(_h5(tmp_path / "t.h5", x=x), memory_limit=0)
    chunks = [np.arange(i, 400, 7) for i in range(7)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(disk.read, chunks * 3))
    for idx, got in zip(chunks * 3, results):
        np.testing.assert_array_equal(got, x[idx].astype(np.float32))
    disk.close()


def test_out_of_core_nan_found_while_reading(tmp_path) -> None:
    x = np.zeros((100, 3))
    x[77, 1] = np.inf
    path = _h5(tmp_path / "inf.h5", x=x)
    disk = load_dataset(path, memory_limit=0)
    np.testing.assert_array_equal(disk.read(np.arange(50)), np.zeros((50, 3), np.float32))
    with pytest.raises(
        DataError, match=r"inf\.h5: 'x' has NaN or infinite values \(first in row 77"
    ):
        list(disk.iter_batches(None, 16, 0))
    disk.close()


def test_parse_hdf5_spec() -> None:
    assert parse_hdf5_spec("a.h5") == ("a.h5", None)
    assert parse_hdf5_spec("dir/a.h5:grp/x") == ("dir/a.h5", "grp/x")
    assert parse_hdf5_spec("a.h5:/x") == ("a.h5", "x")
    assert parse_hdf5_spec("C:\\data\\a.h5") == ("C:\\data\\a.h5", None)
    assert parse_hdf5_spec("C:\\data\\a.h5:x") == ("C:\\data\\a.h5", "x")


# ----------------------------------------------------------------- one error per problem
def _truncated(tmp_path) -> str:
    good = _h5(tmp_path / "good.h5", x=np.random.default_rng(0).random((200, 50)))
    raw = (tmp_path / "good.h5").read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(raw[: len(raw) // 2])
    return str(cut)


def _compound(tmp_path) -> str:
    rec = np.zeros(20, dtype=[("a", "f4"), ("b", "i4")])
    return _h5(tmp_path / "rec.h5", x=rec.reshape(10, 2)) + ":x"


def _strings(tmp_path) -> str:
    path = tmp_path / "str.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.array([[b"ab", b"cd"]] * 12))
    return str(path)


def _nan(tmp_path) -> str:
    x = np.ones((40, 5), np.float32)
    x[33, 2] = np.nan
    return _h5(tmp_path / "nan.h5", x=x)


def _random_bytes(tmp_path) -> str:
    p = tmp_path / "noise.h5"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    return str(p)


ERROR_CASES = {
    "missing": (lambda t: str(t / "nope.h5"), None, r"nope\.h5: no such file"),
    "directory": (lambda t: str(t), None, "is a directory"),
    "not_hdf5": (_random_bytes, None, r"noise\.h5: not an HDF5 file"),
    "truncated": (_truncated, None, r"cut\.h5: cannot be opened as HDF5 \(truncated"),
    "no_such_array": (
        lambda t: _h5(t / "a.h5", x=np.zeros((20, 2)), g__y=np.zeros((20, 3))) + ":z",
        None,
        r"a\.h5: no array 'z'; arrays in the file: g/y 20x3 float64, x 20x2 float64",
    ),
    "group": (
        lambda t: _h5(t / "g.h5", g__y=np.zeros((20, 3))) + ":g",
        None,
        r"g\.h5: 'g' is a group, not an array; arrays in the file: g/y 20x3",
    ),
    "no_suitable_array": (
        lambda t: _h5(t / "v.h5", v=np.zeros(20)),
        None,
        r"v\.h5: no numeric array of rank 2 to 4 .* v 20 float64",
    ),
    "empty": (
        lambda t: _h5(t / "e.h5", x=np.zeros((0, 4))) + ":x",
        None,
        r"e\.h5: 'x' is empty \(0x4\)",
    ),
    "compound": (_compound, None, r"rec\.h5: 'x' holds non-numeric values \(compound\)"),
    "strings": (
        lambda t: _strings(t) + ":x",
        None,
        r"str\.h5: 'x' holds non-numeric values \(strings\)",
    ),
    "only_non_numeric": (
        lambda t: _compound(t)[:-2],
        None,
        r"rec\.h5: no numeric array of rank 2 to 4 to use as data; "
        r"arrays in the file: x 10x2 compound",
    ),
    "nan": (_nan, None, r"nan\.h5: 'x' has NaN or infinite values \(first in row 33"),
    "float_overflow": (
        lambda t: _h5(t / "o.h5", x=np.full((12, 2), 1e300)),
        None,
        r"o\.h5: 'x' has NaN or infinite values \(first in row 0",
    ),
    "rank1": (
        lambda t: _h5(t / "r1.h5", x=np.zeros(20)) + ":x",
        None,
        r"r1\.h5: 'x' has rank 1 \(20\); data must be N x D",
    ),
    "rank5": (
        lambda t: _h5(t / "r5.h5", x=np.zeros((10, 1, 2, 2, 2))) + ":x",
        None,
        r"r5\.h5: 'x' has rank 5",
    ),
    "channels_last": (
        lambda t: _h5(t / "cl.h5", x=np.zeros((10, 8, 8, 3), np.uint8)),
        None,
        r"cl\.h5: 'x' is 10x8x8x3; N x C x H x W images need 1 to 4 channels \(channels last",
    ),
    "too_few": (
        lambda t: _h5(t / "few.h5", x=np.zeros((9, 2))),
        None,
        rf"few\.h5: 'x' has 9 samples; at least {MIN_SAMPLES} are needed",
    ),
    "labels_missing": (
        lambda t: _h5(t / "l1.h5", x=np.zeros((20, 2))) + ":x",
        "y",
        r"l1\.h5: no labels array 'y'; arrays in the file: x 20x2",
    ),
    "labels_wrong_length": (
        lambda t: _h5(t / "l2.h5", x=np.zeros((20, 2)), y=np.zeros(19, np.int64)) + ":x",
        "y",
        r"l2\.h5: labels 'y' has shape 19; one label per sample \(20\) is needed",
    ),
    "labels_not_integer": (
        lambda t: _h5(t / "l3.h5", x=np.zeros((20, 2)), y=np.zeros(20)) + ":x",
        "y",
        r"l3\.h5: labels 'y' must hold integers, not float64",
    ),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_hdf5_errors_are_one_line_naming_the_file(tmp_path, case) -> None:
    make, labels, pattern = ERROR_CASES[case]
    spec = make(tmp_path)
    with pytest.raises(DataError, match=pattern) as info:
        load_dataset(spec, labels=labels)
    assert "\n" not in str(info.value)


def test_damaged_data_fails_on_read_in_memory_and_out_of_core(tmp_path) -> None:
    # The header is intact (the file opens) but a compressed chunk is garbage.
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        d = f.create_dataset("x", data=np.ones((64, 64)), chunks=(8, 64), compression="gzip")
        info = d.id.get_chunk_info(3)
    raw = bytearray(path.read_bytes())
    raw[info.byte_offset : info.byte_offset + info.size] = b"\x55" * info.size
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"bad\.h5: reading 'x' failed \(truncated or damaged"):
        load_dataset(str(path))
    disk = load_dataset(str(path), memory_limit=0)
    np.testing.assert_array_equal(disk.read(np.arange(24)), np.ones((24, 64), np.float32))
    with pytest.raises(DataError, match=r"bad\.h5: reading rows 24-31 of 'x' failed"):
        disk.read(np.arange(24, 32))
    disk.close()


def test_open_hdf5_is_load_dataset_for_files(tmp_path) -> None:
    path = _h5(tmp_path / "s.h5", x=np.arange(40, dtype=np.uint8).reshape(20, 2))
    a, b = open_hdf5(f"{path}:x"), load_dataset(f"{path}:x")
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())


def test_a_damaged_hdf5_file_is_one_data_error(tmp_path) -> None:
    """Bytes overwritten inside an HDF5 file's metadata (not a truncation) made h5py raise
    RuntimeError ("Object visitation failed"), KeyError or UnicodeDecodeError from listing the
    file's arrays or reading a dataset's shape: each must be a one-line DataError."""
    good = tmp_path / "good.h5"
    rng = np.random.default_rng(0)
    with h5py.File(good, "w") as f:
        f.create_dataset("x", data=rng.random((200, 16)).astype("f4"), track_times=False)
        f.create_dataset("g/img", data=(rng.random((200, 28, 28)) * 255).astype("u1"),
                         track_times=False)
        f.create_dataset("lab", data=rng.integers(0, 3, 200), track_times=False)
    raw = good.read_bytes()
    bad = tmp_path / "bad.h5"
    damaged = 0
    for offset in range(0, min(len(raw), 4096), 16):
        bad.write_bytes(raw[:offset] + b"\xff" * 32 + raw[offset + 32 :])
        for spec, labels in ((f"{bad}:x", "lab"), (str(bad), None)):
            try:
                ds = load_dataset(spec, labels=labels)
                ds.read(np.arange(len(ds)))
            except DataError as exc:
                assert "\n" not in str(exc)
                damaged += "damaged HDF5 file" in str(exc)
    assert damaged > 0


def test_list_arrays_names_the_numeric_arrays_sorted(tmp_path) -> None:
    path = tmp_path / "mixed.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("z/images", data=np.zeros((5, 4, 4), np.uint8))
        f.create_dataset("a_labels", data=np.arange(5))
        f.create_dataset("names", data=np.array([b"x", b"y"]))
        f.create_dataset("flat", data=np.zeros((5, 3), np.float32))
    got = list_arrays(str(path))
    assert [a.path for a in got] == ["a_labels", "flat", "z/images"]  # no strings
    labels, flat, images = got
    assert images.shape == (5, 4, 4) and images.dtype == "uint8" and images.is_data
    assert labels.is_labels and not labels.is_data and flat.is_data and not flat.is_labels
    assert images.describe() == "z/images  (5 x 4 x 4, uint8)"
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    for bad, words in ((text, "not an HDF5 file"), (tmp_path / "none.h5", "no such file")):
        with pytest.raises(DataError, match=words) as info:
            list_arrays(str(bad))
        assert "\n" not in str(info.value) and str(bad) in str(info.value)
