"""LatentSpace, the explorer's model: points, projections, anchors, signals (real ONNX decoder)."""

from __future__ import annotations

import numpy as np
import pytest
from latent_helpers import export_vae_decoder

from explorer.latent.model import LatentSpace
from models.latent import geometry as lm
from models.io.onnx_runtime import OnnxDecoder


@pytest.fixture(scope="module")
def decoder(tmp_path_factory):
    path = tmp_path_factory.mktemp("dec") / "vae.onnx"
    kl = [0.5, 3.0, 0.0, 1.5, 0.01]
    return OnnxDecoder(export_vae_decoder(path, latent_dim=5, metadata={
        "kl_per_dim": kl, "collapsed_dims": [2, 4]}))


def encodings(n=400, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((n, 5)).astype(np.float32) * np.array([1, 0.05, 2, 0.5, 1.5], np.float32)
    logvar = np.log(np.tile(np.array([0.5, 1.0, 0.01, 0.2, 0.9], np.float32), (n, 1)))
    labels = rng.integers(0, 4, n)
    return means, logvar, labels


def test_decoder_only_space_shows_the_prior_and_uses_metadata_kl(decoder):
    space = LatentSpace(decoder, n_prior=1000)
    assert not space.has_encodings and space.latents.shape == (1000, 5)
    assert space.points.shape == (1000, 2) and space.points.dtype == np.float32
    # Metadata KL orders the dims; the map shows the two with the most KL.
    assert list(space.dims_by_kl()) == [1, 3, 0, 4, 2]
    assert (space.projection.x_dim, space.projection.y_dim) == (1, 3)
    assert space.collapsed_dims == [2, 4]
    np.testing.assert_array_equal(space.points, space.latents[:, [1, 3]])
    # Two anchors, one standard deviation either side of the origin along the map's x axis.
    assert space.n_anchors == 2
    np.testing.assert_allclose(space.anchor_position(0), (-1, 0))
    np.testing.assert_allclose(space.anchor_position(1), (1, 0))


def test_encodings_replace_the_prior_and_set_kl_collapse_and_anchors(qtbot, decoder):
    space = LatentSpace(decoder, n_prior=100)
    means, logvar, labels = encodings()
    with qtbot.waitSignals([space.pointsChanged, space.anchorsChanged, space.projectionChanged]):
        space.set_encodings(means, logvar, labels=labels, label_names=["a", "b", "c", "d"],
                            samples=means * 10)
    assert space.has_encodings and len(space.points) == 400
    np.testing.assert_allclose(space.kl_per_dim, lm.kl_per_dim(means, logvar))
    # The encodings' KL wins over the metadata's: z2 has the most here.
    assert space.dims_by_kl()[0] == 2
    assert space.collapsed_dims == [1]  # activity of z1: 0.0025 <= 0.01: collapsed
    # Anchors sit on two encoded points of different labels.
    np.testing.assert_array_equal(space.anchor(0), means[0])
    second = int(np.flatnonzero(labels != labels[0])[0])
    np.testing.assert_array_equal(space.anchor(1), means[second])
    np.testing.assert_array_equal(space.sample(3), means[3] * 10)

    space.clear_encodings()
    assert not space.has_encodings and space.sample(3) is None
    assert space.kl_per_dim is not None and space.collapsed_dims == [2, 4]  # metadata again


def test_bad_encodings_are_refused(decoder):
    space = LatentSpace(decoder, n_prior=10)
    with pytest.raises(ValueError):
        space.set_encodings(np.zeros((10, 4)))
    with pytest.raises(ValueError):
        space.set_encodings(np.zeros((10, 5)), labels=np.zeros(9))
    with pytest.raises(ValueError):
        space.set_encodings(np.zeros((10, 5)), logvar=np.zeros((10, 4)))


def test_projection_switches_keep_anchor_latents(qtbot, decoder):
    space = LatentSpace(decoder, n_prior=500)
    space.set_anchor_latent(0, np.array([1, 2, 3, 4, 5], np.float32))
    z = space.anchor(0)
    with qtbot.waitSignal(space.projectionChanged):
        space.set_projection_dims(4, 0)
    assert space.anchor_position(0) == (5.0, 1.0)
    np.testing.assert_array_equal(space.points, space.latents[:, [4, 0]])
    space.set_projection_pca()
    assert space.projection_kind == "pca"
    np.testing.assert_array_equal(space.anchor(0), z)
    np.testing.assert_allclose(space.points, space.projection.project(space.latents), rtol=1e-5)
    # Moving on a PCA map changes only the principal plane's part.
    space.move_anchor(0, (0.5, -0.5))
    np.testing.assert_allclose(space.anchor_position(0), (0.5, -0.5), atol=1e-5)
    with pytest.raises(ValueError):
        space.set_projection_dims(1, 1)


def test_anchor_editing_and_signals(qtbot, decoder):
    space = LatentSpace(decoder, n_prior=50)
    space.set_projection_dims(0, 1)
    with qtbot.waitSignals([space.anchorsChanged, space.currentAnchorChanged]):
        i = space.add_anchor(xy=(0.25, -0.5))
    assert i == 2 and space.current_anchor == 2
    z = space.anchor(2)
    np.testing.assert_array_equal(z[[0, 1]], [0.25, -0.5])
    np.testing.assert_array_equal(z[2:], space.anchor(1)[2:])  # hidden dims of the previous current
    with qtbot.waitSignal(space.anchorMoved) as blocker:
        space.set_anchor_dim(2, 4, 1.5)
    assert blocker.args == [2] and space.anchor(2)[4] == 1.5
    with qtbot.assertNotEmitted(space.anchorMoved):
        space.set_anchor_dim(2, 4, 1.5)  # no change, no signal
    space.move_anchor(2, (2.0, 3.0))
    np.testing.assert_array_equal(space.anchor(2)[[0, 1, 4]], [2.0, 3.0, 1.5])
    space.set_current_anchor(1)
    assert space.remove_anchor(0)
    assert space.current_anchor == 0  # anchor 1 moved down to index 0 and stays current
    assert space.remove_anchor(1) and space.n_anchors == 1
    assert not space.remove_anchor(0)
    with pytest.raises(IndexError):
        space.set_current_anchor(3)
    with pytest.raises(ValueError):
        space.add_anchor(z=np.array([np.nan] * 5))


def test_interpolation_and_traversal_settings(qtbot, decoder):
    space = LatentSpace(decoder, n_prior=50)
    with qtbot.waitSignal(space.interpolationChanged):
        space.set_mode("spherical")
    space.set_steps(4)
    np.testing.assert_allclose(space.path_latents(), lm.interpolate_path(space.anchors, 4, "spherical"))
    assert space.anchor_rows() == [0, 3]
    with pytest.raises(ValueError):
        space.set_steps(1)
    with pytest.raises(ValueError):
        space.set_mode("cubic")
    with qtbot.waitSignal(space.traversalChanged):
        space.set_traversal(columns=5, limit=2.0)
    np.testing.assert_allclose(space.traversal_values(), [-2, -1, 0, 1, 2])
    z = space.traversal_latents()
    assert z.shape == (5 * 5, 5)
    np.testing.assert_allclose(z[:5, 1], [-2, -1, 0, 1, 2])  # first row: z1, the most KL
    with pytest.raises(ValueError):
        space.set_traversal(columns=1)
