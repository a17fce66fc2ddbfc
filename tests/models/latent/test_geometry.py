"""The explorer's latent geometry: interpolation, projections, traversal grids, tiling."""

import subprocess
import sys

import numpy as np
import pytest

from models.latent import geometry as lm


def test_lerp_endpoints_and_midpoint():
    a, b = np.array([0.0, 2.0]), np.array([4.0, -2.0])
    z = lm.lerp(a, b, np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(z, [[0, 2], [2, 0], [4, -2]])
    assert z.dtype == np.float32


def test_slerp_endpoints_exact_and_norm_kept_between_equal_norm_vectors():
    rng = np.random.default_rng(1)
    a = rng.standard_normal(16)
    b = rng.standard_normal(16)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    t = np.linspace(0, 1, 9)
    z = lm.slerp(a, b, t)
    np.testing.assert_array_equal(z[0], a.astype(np.float32))
    np.testing.assert_array_equal(z[-1], b.astype(np.float32))
    # On the great circle: every point keeps the common norm (a straight line would dip).
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), np.linalg.norm(a), rtol=1e-5)
    mid_lerp = np.linalg.norm(lm.lerp(a, b, np.array([0.5]))[0])
    assert mid_lerp < np.linalg.norm(a) * 0.99


def test_slerp_quarter_circle_in_2d():
    z = lm.slerp(np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([0.5]))
    np.testing.assert_allclose(z[0], [np.sqrt(0.5), np.sqrt(0.5)], atol=1e-6)


def test_slerp_degenerate_cases_fall_back_to_lerp():
    t = np.linspace(0, 1, 5)
    a = np.array([1.0, 2.0])
    for b in (np.array([2.0, 4.0]), np.array([-1.0, -2.0]), np.zeros(2)):
        np.testing.assert_allclose(lm.slerp(a, b, t), lm.lerp(a, b, t), atol=1e-6)


def test_interpolate_path_through_three_anchors():
    anchors = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]])
    z = lm.interpolate_path(anchors, steps=5, mode="linear")
    assert z.shape == (9, 2)
    for k, row in enumerate(lm.anchor_rows(3, 5)):
        np.testing.assert_array_equal(z[row], anchors[k])
    np.testing.assert_allclose(z[2], [0.5, 0.0])
    np.testing.assert_allclose(z[6], [1.0, 1.0])
    np.testing.assert_array_equal(lm.interpolate_path(anchors[:1], 5), anchors[:1])


def test_interpolate_path_spherical_matches_slerp_per_segment():
    rng = np.random.default_rng(0)
    anchors = rng.standard_normal((3, 6)).astype(np.float32)
    z = lm.interpolate_path(anchors, steps=4, mode="spherical")
    t = np.linspace(0, 1, 4)
    np.testing.assert_allclose(z[:4], lm.slerp(anchors[0], anchors[1], t), atol=1e-6)
    np.testing.assert_allclose(z[3:], lm.slerp(anchors[1], anchors[2], t), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs", [dict(anchors=np.zeros((0, 2)), steps=3), dict(anchors=np.zeros((2, 2)), steps=1)]
)
def test_interpolate_path_rejects_bad_input(kwargs):
    with pytest.raises(ValueError):
        lm.interpolate_path(**kwargs)
    with pytest.raises(ValueError):
        lm.interpolate_path(np.zeros((2, 2)), 3, mode="cubic")


def test_dims_by_kl_orders_most_first_and_checks_size():
    np.testing.assert_array_equal(lm.dims_by_kl(np.array([0.1, 3.0, 0.0, 3.0]), 4), [1, 3, 0, 2])
    np.testing.assert_array_equal(lm.dims_by_kl(None, 3), [0, 1, 2])
    with pytest.raises(ValueError):
        lm.dims_by_kl(np.zeros(3), 4)


def test_pca_finds_the_spread_directions():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 3)) * np.array([5.0, 0.1, 2.0]) + np.array([1.0, 2.0, 3.0])
    mean, comps, ev = lm.pca(x, 2)
    np.testing.assert_allclose(mean, [1, 2, 3], atol=0.3)
    np.testing.assert_allclose(np.abs(comps), [[1, 0, 0], [0, 0, 1]], atol=0.02)
    assert (comps.max(axis=1) > 0).all()  # deterministic sign
    np.testing.assert_allclose(ev, [25, 4], rtol=0.1)
    np.testing.assert_allclose(comps @ comps.T, np.eye(2), atol=1e-10)


def test_pca_of_one_dimension_pads_a_zero_component():
    _, comps, ev = lm.pca(np.arange(10.0)[:, None], 2)
    np.testing.assert_allclose(comps, [[1.0], [0.0]])
    assert ev[1] == 0


def test_dim_pair_projection_round_trip_keeps_other_dims():
    p = lm.DimPairProjection(5, 3, 1)
    base = np.arange(5, dtype=np.float32)
    z = p.unproject((7.0, -2.0), base)
    np.testing.assert_array_equal(z, [0, -2, 2, 7, 4])
    np.testing.assert_allclose(p.project(z), [7, -2])
    np.testing.assert_allclose(p.project(np.stack([z, base])), [[7, -2], [3, 1]])
    assert p.axis_labels() == ("z3", "z1")
    with pytest.raises(ValueError):
        lm.DimPairProjection(5, 2, 2)
    with pytest.raises(ValueError):
        lm.DimPairProjection(5, 0, 5)


def test_one_dimensional_latent_projection():
    p = lm.DimPairProjection(1, 0, None)
    np.testing.assert_allclose(p.project(np.array([[2.0]])), [[2.0, 0.0]])
    np.testing.assert_allclose(p.unproject((4.0, 9.0), np.zeros(1)), [4.0])


def test_pca_projection_unproject_lands_on_the_map_point_and_moves_only_in_plane():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((500, 6)) * np.linspace(3, 0.5, 6)
    p = lm.PCAProjection.fit(z)
    base = rng.standard_normal(6).astype(np.float32)
    moved = p.unproject((1.5, -0.5), base)
    np.testing.assert_allclose(p.project(moved), [1.5, -0.5], atol=1e-5)
    # The change lies in the principal plane: its part orthogonal to the plane is zero.
    d = moved.astype(np.float64) - base
    orth = d - (d @ p.components.T) @ p.components
    np.testing.assert_allclose(orth, 0, atol=1e-5)
    assert p.axis_labels()[0].startswith("PC1")


def test_traversal_grid_rows_vary_one_dim_each():
    base = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    values = lm.prior_values(4, 3.0)
    np.testing.assert_allclose(values, [-3, -1, 1, 3])
    z = lm.traversal_latents(base, [2, 0], values)
    assert z.shape == (8, 3)
    np.testing.assert_allclose(z[:4, 2], values)
    np.testing.assert_allclose(z[:4, :2], np.tile(base[:2], (4, 1)))
    np.testing.assert_allclose(z[4:, 0], values)
    np.testing.assert_allclose(z[4:, 1:], np.tile(base[1:], (4, 1)))
    with pytest.raises(ValueError):
        lm.prior_values(1)


def test_tile_places_images_row_major_with_padding():
    imgs = np.stack([np.full((2, 3), k + 1, dtype=np.uint8) for k in range(5)])
    out = lm.tile(imgs, rows=2, cols=3, pad=1, fill=0)
    assert out.shape == (5, 11)
    assert out[0, 0] == 1 and out[0, 4] == 2 and out[0, 8] == 3
    assert out[3, 0] == 4 and out[3, 4] == 5 and out[3, 8] == 0
    assert out[2, 0] == 0 and out[0, 3] == 0  # the padding
    with pytest.raises(ValueError):
        lm.tile(imgs, 2, 2)


def test_prior_samples_are_reproducible_standard_normal():
    a = lm.prior_samples(5000, 4, seed=3)
    np.testing.assert_array_equal(a, lm.prior_samples(5000, 4, seed=3))
    assert abs(a.mean()) < 0.05 and abs(a.std() - 1) < 0.05


def test_imports_no_torch_and_no_qt():
    code = (
        "import sys, models.latent.geometry, models.latent.stats, models.latent.discrete\n"
        "bad = [m for m in ('torch', 'PySide6', 'pyqtgraph') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(_root()))


def _root():
    from pathlib import Path

    return Path(__file__).resolve().parents[3]
