"""NumPy files and image folders as data sets: the values, the labels, memory mapping, decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from byo_run import cli
from PIL import Image

from models.data import load_dataset
from models.data.arrays import open_arrays
from models.errors import DataError

RNG = np.random.default_rng(0)
X8 = (RNG.random((40, 6, 5)) * 255).astype(np.uint8)
XF = RNG.standard_normal((40, 3, 4, 4))
Y = np.arange(40) % 4


def test_npy_uint8_and_float(tmp_path):
    np.save(tmp_path / "a.npy", X8)
    ds = load_dataset(str(tmp_path / "a.npy"))
    assert ds.sample_shape == (1, 6, 5) and ds.scaling == "uint8/255" and ds.in_memory
    np.testing.assert_array_equal(ds.read([3, 1]), X8[[3, 1]][:, None] / np.float32(255))
    np.save(tmp_path / "f.npy", XF)  # float64 is read as float32, unscaled
    ds = load_dataset(str(tmp_path / "f.npy"), max_samples=12)
    assert len(ds) == 12 and ds.sample_shape == (3, 4, 4)
    np.testing.assert_array_equal(ds.read([11]), XF[[11]].astype(np.float32))


@pytest.mark.parametrize("writer", [np.savez, np.savez_compressed])
def test_npz_members_and_labels(tmp_path, writer):
    writer(tmp_path / "d.npz", y=Y, x=XF)
    ds = load_dataset(str(tmp_path / "d.npz"), labels="y")  # first array not the labels: x
    assert ds.name.endswith("d.npz:x")
    np.testing.assert_array_equal(ds.labels, Y)
    np.testing.assert_array_equal(ds.read(np.arange(40)), XF.astype(np.float32))
    stored = ds.describe()["storage"]
    assert ("memory map" in stored) == (writer is np.savez)
    np.save(tmp_path / "labels.npy", Y[::-1].copy())
    ds = load_dataset(f"{tmp_path / 'd.npz'}:x", labels=str(tmp_path / "labels.npy"))
    np.testing.assert_array_equal(ds.labels, Y[::-1])
    with pytest.raises(DataError, match="one integer label per sample"):
        load_dataset(f"{tmp_path / 'd.npz'}:x", labels="x")


def test_large_arrays_stay_on_disk(tmp_path):
    """Above the memory limit a .npy file and a stored .npz member are read from the mapping,
    row range by row range, with the same values; a compressed member is refused."""
    np.save(tmp_path / "a.npy", XF)
    np.savez(tmp_path / "s.npz", x=XF)
    for spec in (tmp_path / "a.npy", f"{tmp_path / 's.npz'}:x"):
        ds = open_arrays(str(spec), memory_limit=100)
        assert not ds.in_memory
        np.testing.assert_array_equal(ds.read([39, 0, 17, 17]), XF[[39, 0, 17, 17]].astype(np.float32))
        batches = list(ds.iter_batches(batch_size=7, rng=0))
        assert sum(len(b) for b in batches) == 40
    np.savez_compressed(tmp_path / "c.npz", x=XF)
    with pytest.raises(DataError, match="compressed .* save it with np.save or np.savez"):
        open_arrays(str(tmp_path / "c.npz"), memory_limit=100)
    bad = XF.copy()
    bad[25, 0, 0, 0] = np.inf
    np.save(tmp_path / "bad.npy", bad)
    ds = open_arrays(str(tmp_path / "bad.npy"), memory_limit=100)  # checked as rows are read
    with pytest.raises(DataError, match="first in row 25"):
        ds.read(np.arange(40))


def _images(root, classes=("cat", "dog"), n=6, mode="L", size=(5, 7)):
    arrays = {}
    for c in classes:
        (root / c / "deeper").mkdir(parents=True)
        for i in range(n):
            shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
            a = (RNG.random(shape) * 255).astype(np.uint8)
            where = root / c / ("deeper" if i == n - 1 else "") / f"{i}.png"
            Image.fromarray(a, mode).save(where)
            arrays[str(where)] = a
    (root / "stray.png").write_bytes(b"ignored: a file beside the class folders")
    return arrays


def test_image_folder_classes_and_pixels(tmp_path):
    arrays = _images(tmp_path / "grey")
    ds = load_dataset(str(tmp_path / "grey"))
    assert ds.sample_shape == (1, 7, 5) and not ds.in_memory and len(ds) == 12
    assert ds.label_names == ["cat", "dog"] and list(ds.labels) == [0] * 6 + [1] * 6
    files = ds._source.files
    assert files[5].endswith("cat/deeper/5.png")  # ImageFolder order: the walk, sorted
    np.testing.assert_array_equal(ds.read([7])[0, 0], arrays[files[7]] / np.float32(255))
    rgb = _images(tmp_path / "rgb", classes=("a",), n=11, mode="RGB")
    ds = load_dataset(str(tmp_path / "rgb"), max_samples=10)
    assert ds.sample_shape == (3, 7, 5) and len(ds) == 10
    f = ds._source.files[4]
    np.testing.assert_array_equal(ds.read([4])[0], rgb[f].transpose(2, 0, 1) / np.float32(255))


def test_image_decoded_on_demand(tmp_path):
    """Opening reads headers only: a file damaged after its header fails when read, by name."""
    _images(tmp_path / "d")
    ds = load_dataset(str(tmp_path / "d"))
    victim = Path(ds._source.files[3])
    victim.write_bytes(victim.read_bytes()[:-30])
    ds = load_dataset(str(tmp_path / "d"))
    ds.read([0, 1, 2])
    with pytest.raises(DataError, match="3.png: cannot be decoded"):
        ds.read([3])


def test_train_on_a_npy_file(tmp_path, capsys):
    x = (RNG.random((64, 8, 8)) > 0.5).astype(np.uint8)
    np.save(tmp_path / "bits.npy", x)
    np.save(tmp_path / "y.npy", np.arange(64) % 2)
    code, out, err = cli(capsys, "train", "--data", tmp_path / "bits.npy", "--labels",
                         tmp_path / "y.npy", "--epochs", 1, "--latent-dim", 2, "--hidden", 8,
                         "--batch-size", 16, "--out", tmp_path / "r.h5")
    assert code == 0, err
    assert "wrote" in out
