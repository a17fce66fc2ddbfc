"""Data sets: MNIST facts, the generated shapes, HDF5 files (in memory and out of core), errors."""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import pickle
import struct

import h5py
import numpy as np
import pytest

from models.data import dataset as data
from models.data import shapes
from models.data import (
    MIN_SAMPLES,
    Dataset,
    load_dataset,
    make_shapes,
    open_hdf5,
    parse_hdf5_spec,
    read_idx,
    split_indices,
)
from models.errors import ConfigError, DataError


# =========================================================================== MNIST
@pytest.fixture(scope="module")
def mnist() -> Dataset:
    return load_dataset("mnist")


def test_mnist_files_match_published_md5() -> None:
    expected = {
        "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
    }
    folder = importlib.resources.files("resources").joinpath("mnist")
    for name, md5 in expected.items():
        raw = gzip.decompress(folder.joinpath(name).read_bytes())
        assert hashlib.md5(raw).hexdigest() == md5, name


def test_mnist_facts(mnist: Dataset) -> None:
    assert len(mnist) == 70_000
    assert mnist.sample_shape == (1, 28, 28)
    assert mnist.scaling == "uint8/255"
    assert mnist.in_memory
    assert mnist.label_names == [str(d) for d in range(10)]
    assert mnist.labels is not None and mnist.labels.dtype == np.int64
    assert mnist.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    np.testing.assert_array_equal(mnist.val_indices, np.arange(60_000, 70_000))
    counts = np.bincount(mnist.labels[mnist.val_indices], minlength=10)
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(mnist.labels).sum() == 70_000


def test_mnist_rows_are_the_idx_bytes_scaled(mnist: Dataset) -> None:
    folder = importlib.resources.files("resources").joinpath("mnist")
    raw = gzip.decompress(folder.joinpath("t10k-images-idx3-ubyte.gz").read_bytes())
    last = np.frombuffer(raw[-784:], dtype=np.uint8).reshape(1, 1, 28, 28)
    x = mnist.read(np.array([69_999]))
    assert x.dtype == np.float32 and x.shape == (1, 1, 28, 28)
    np.testing.assert_array_equal(x, last.astype(np.float32) / np.float32(255))
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5


def test_mnist_max_samples_keeps_both_parts(mnist: Dataset) -> None:
    small = load_dataset("mnist", max_samples=700)
    assert len(small) == 700
    np.testing.assert_array_equal(small.val_indices, np.arange(600, 700))
    np.testing.assert_array_equal(small.read(np.arange(600)), mnist.read(np.arange(600)))
    np.testing.assert_array_equal(small.read([600]), mnist.read([60_000]))
    train, val = split_indices(small, 0.5, seed=3)
    assert len(train) == 600 and len(val) == 100


def test_builtin_rejects_a_labels_path() -> None:
    with pytest.raises(DataError, match="labels"):
        load_dataset("mnist", labels="y")


def _idx(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + payload


def test_read_idx_parses_and_validates() -> None:
    good = _idx(0x803, (2, 3, 4), bytes(range(24)))
    arr = read_idx(good, 0x803, "x.idx")
    assert arr.shape == (2, 3, 4) and arr.dtype == np.uint8 and arr[1, 2, 3] == 23
    with pytest.raises(DataError, match=r"x\.idx: IDX magic number is 0x00000801"):
        read_idx(_idx(0x801, (24,), bytes(24)), 0x803, "x.idx")
    with pytest.raises(DataError, match="payload is 23 bytes but dimensions"):
        read_idx(good[:-1], 0x803, "x.idx")
    with pytest.raises(DataError, match="payload is 25 bytes"):
        read_idx(good + b"\0", 0x803, "x.idx")
    with pytest.raises(DataError, match="header cut short"):
        read_idx(good[:9], 0x803, "x.idx")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(b"\0\0", 0x803, "x.idx")
    with pytest.raises(DataError, match="hold no data"):
        read_idx(_idx(0x803, (0, 3, 4), b""), 0x803, "x.idx")


# =========================================================================== shapes
def test_shapes_factors_labels_and_pixels() -> None:
    ds = make_shapes(n=400, size=64, seed=0)
    assert len(ds) == 400 and ds.sample_shape == (1, 64, 64) and ds.scaling == "uint8/255"
    assert ds.label_names == ["square", "ellipse", "heart", "triangle"]
    assert set(ds.factors) == {"shape", "scale", "rotation", "x", "y"}
    np.testing.assert_array_equal(ds.labels, ds.factors["shape"])
    assert set(np.unique(ds.labels)) == {0, 1, 2, 3}
    assert ds.factors["scale"].min() >= 0.5 and ds.factors["scale"].max() <= 1.0
    assert ds.factors["rotation"].min() >= 0 and ds.factors["rotation"].max() < 2 * np.pi
    x = ds.to_numpy()
    assert set(np.unique(x)) == {0.0, 1.0}
    on = x.reshape(400, -1).sum(1)
    assert on.min() > 0  # every image shows its shape
    # Every shape lies wholly inside: no pixel on the border.
    assert x[:, 0, [0, -1], :].sum() == 0 and x[:, 0, :, [0, -1]].sum() == 0
    # Area grows with scale squared; position follows the x and y factors.
    big, small = ds.factors["scale"] > 0.9, ds.factors["scale"] < 0.6
    assert on[big].mean() > 2.5 * on[small].mean()
    rows, cols = np.arange(64) + 0.5, np.arange(64) + 0.5
    img = x[:, 0]
    cx = (img.sum(1) * cols).sum(1) / on
    cy = (img.sum(2) * rows).sum(1) / on
    assert np.corrcoef(cx, ds.factors["x"])[0, 1] > 0.95
    assert np.corrcoef(cy, ds.factors["y"])[0, 1] > 0.95


def test_shapes_are_deterministic_and_prefix_stable() -> None:
    a, b = make_shapes(n=300, seed=7), make_shapes(n=300, seed=7)
    assert a.to_numpy().tobytes() == b.to_numpy().tobytes()
    for k in a.factors:
        assert a.factors[k].tobytes() == b.factors[k].tobytes()
    first = make_shapes(n=120, seed=7)
    np.testing.assert_array_equal(first.to_numpy(), a.to_numpy()[:120])
    other = make_shapes(n=300, seed=8)
    assert other.to_numpy().tobytes() != a.to_numpy().tobytes()


def test_shapes_spec_sizes_and_rotation() -> None:
    ds = load_dataset("shapes:32", max_samples=50)
    assert ds.name == "shapes:32" and ds.sample_shape == (1, 32, 32) and len(ds) == 50
    assert ds.val_indices is None
    with pytest.raises(DataError, match="shapes:32 or shapes:64"):
        load_dataset("shapes:48")
    # A triangle (3-fold symmetric) looks the same turned by 120 degrees, not by 60.
    base = dict(scale=np.ones(3, np.float32), x=np.full(3, 0.5, np.float32),
                y=np.full(3, 0.5, np.float32))
    out = np.zeros((3, 64, 64), np.uint8)
    rot = np.array([0.3, 0.3 + 2 * np.pi / 3, 0.3 + np.pi / 3], np.float32)
    shapes._render_shapes(out, np.full(3, 3), rotation=rot, **base)
    same = np.mean(out[0] != out[1])
    different = np.mean(out[0] != out[2])
    assert same < 0.01 and different > 5 * same


# =========================================================================== split
def test_split_random_is_deterministic_and_complete() -> None:
    ds = Dataset(np.zeros((50, 3), np.float32), name="toy")
    train, val = split_indices(ds, 0.2, seed=1)
    assert len(val) == 10 and len(train) == 40
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(50))
    again = split_indices(ds, 0.2, seed=1)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], val)
    other = split_indices(ds, 0.2, seed=2)
    assert not np.array_equal(other[1], val)
    tiny_train, tiny_val = split_indices(ds, 0.001, seed=0)
    assert len(tiny_val) == 1 and len(tiny_train) == 49
    big_train, big_val = split_indices(ds, 0.999, seed=0)
    assert len(big_train) == 1 and len(big_val) == 49
    with pytest.raises(ConfigError, match="val_fraction"):
        split_indices(ds, 1.0, seed=0)


def test_split_uses_predefined_validation() -> None:
    ds = Dataset(np.zeros((20, 2), np.float32), name="toy", val_indices=np.arange(15, 20))
    train, val = split_indices(ds, 0.5, seed=9)
    np.testing.assert_array_equal(val, np.arange(15, 20))
    np.testing.assert_array_equal(train, np.arange(15))


# =========================================================================== HDF5
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


def test_in_memory_iter_batches_covers_every_row_once() -> None:
    x = np.arange(47 * 2, dtype=np.float32).reshape(47, 2)
    ds = Dataset(x, name="toy")
    got = np.concatenate(list(ds.iter_batches(np.arange(47), 10, np.random.default_rng(0))))
    assert sorted(got[:, 0].tolist()) == x[:, 0].tolist()
    assert not np.array_equal(got, x)


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


def test_max_samples_too_small_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="max_samples must be at least"):
        load_dataset("shapes", max_samples=3)


def test_empty_spec_is_a_data_error() -> None:
    with pytest.raises(DataError, match="no data set given"):
        load_dataset("  ")


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
