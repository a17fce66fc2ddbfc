"""The generated shapes: factors, labels, pixels, determinism, sizes and rotation."""

from __future__ import annotations

import numpy as np
import pytest

from models.data import load_dataset, make_shapes, shapes
from models.errors import DataError


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
