"""File > Open model…: an ONNX pair trained elsewhere, opened on a data set beside the runs
(issue 13, the app)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "models", "byo"))
from byo_pairs import bernoulli_pair  # noqa: E402

from explorer.state.external import ModelRequest, ModelSession  # noqa: E402


@pytest.fixture
def pair(tmp_path):
    """A Bernoulli pair of 8x8 images (flat 64 values), 3 latent dimensions, logits out."""
    return bernoulli_pair(tmp_path, d_x=64, k=3)


def _open(window, qtbot, request) -> ModelSession:
    with qtbot.waitSignal(window.model_opener.opened, timeout=60_000) as sig:
        assert window.model_opener.open(request)
    for panel in (window.kl_panel, window.rd_panel):
        panel.flush()  # the views redraw at most REFRESH_HZ times a second: draw now
    return sig.args[0]


def test_an_opened_pair_shows_its_engine_figures(window, qtbot, pair, tiny_h5, errors):
    from models.io.onnx_pair import PairOptions
    from models.io.pair_diagnosis import open_model

    enc, dec = pair
    request = ModelRequest(str(enc), str(dec), f"{tiny_h5}:images", labels="labels")
    s = _open(window, qtbot, request)
    assert window.runs.current is s and errors == []
    # the engine's one pass over the same rows
    ref = open_model(str(enc), str(dec), f"{tiny_h5}:images", labels="labels",
                     options=PairOptions()).diagnose(1).to_json_dict()
    # KL bars: the KL per dimension
    np.testing.assert_allclose(window.kl_panel.bar_values, ref["kl_per_dim"])
    # rate-distortion plane: one validation point at (R, D)
    items = window.rd_panel.run_items(s)
    np.testing.assert_allclose(items.points, [[ref["rate"], ref["distortion"]]])
    # diagnosis: I(X;Z) with its ceiling, no IWAE until Diagnose now
    diag = window.diagnosis_panel
    assert diag.values["mutual_info"].text().startswith(f"{ref['mutual_info']:.3f} nats")
    assert f"log N = {ref['mi_ceiling']:.2f}" in diag.values["mutual_info"].text()
    assert "Diagnose now" in diag.values["elbo_gap"].text()
    assert diag.values["likelihood_kind"].text().startswith("discrete")
    assert "elsewhere" in diag.values["epoch"].text()
    # the latent explorer (once on screen): the encoded rows, their labels, decoded by the pair
    panel = window.latent_panel
    assert getattr(panel.space, "decoder", None) is not s.decoder  # nothing laid out unseen
    panel.dock.raise_()
    qtbot.waitUntil(lambda: getattr(panel.space, "decoder", None) is s.decoder, timeout=5000)
    space = panel.space
    assert space.has_encodings
    np.testing.assert_allclose(space.latents, s.model.mu.astype(np.float32), rtol=1e-6)
    assert space.labels is not None and len(space.labels) == 200
    img = s.decoder.decode_uint8(s.model.mu[:2])
    assert img.shape == (2, 8, 8) and img.dtype == np.uint8
    np.testing.assert_allclose(s.decoder.decode(s.model.mu[:2]).reshape(2, -1),
                               s.model.decode(s.model.mu[:2]).reshape(2, -1), atol=1e-6)


def test_diagnose_now_gives_the_iwae_of_the_pair(window, qtbot, pair, tiny_h5, errors):
    enc, dec = pair
    s = _open(window, qtbot, ModelRequest(str(enc), str(dec), f"{tiny_h5}:images"))
    panel = window.diagnosis_panel
    panel.iw_spin.setValue(5)
    panel.n_spin.setValue(50)
    with qtbot.waitSignal(s.diagnosisChanged, timeout=60_000) as sig:
        window.act_diagnose.trigger()
    d = sig.args[0]
    assert d["source"] == "diagnose" and d["iw_samples"] == 5 and d["n_samples"] == 50
    assert panel.values["elbo_gap"].text() == f"{d['elbo_gap']:.3f} nats"
    assert panel.values["bits_per_dim"].text() == f"{d['bits_per_dim']:.4f}"
    qtbot.waitUntil(panel.button.isEnabled, timeout=10_000)
    assert errors == []


def test_a_model_sits_beside_a_run_and_reopens_from_recent_files(
        window, qtbot, pair, tiny_h5, finished_run, errors):
    window.open_path(finished_run)
    enc, dec = pair
    request = ModelRequest(str(enc), str(dec), f"{tiny_h5}:images")
    s = _open(window, qtbot, request)
    assert len(window.runs) == 2
    assert len(window.rd_panel.run_items(s).points) == 1
    link = window.recent_files()[0]
    assert link.endswith(".lemodel") and ModelRequest.from_json(Path(link).read_text()) == request
    window.runs.remove(s)
    with qtbot.waitSignal(window.model_opener.opened, timeout=60_000) as sig:
        assert window.open_path(link)
    assert sig.args[0].request == request and errors == []


@pytest.mark.parametrize("bad", ["latent", "two_inputs", "string", "one_output", "truncated", "data"])
def test_a_bad_pair_or_data_gives_one_dialog(window, qtbot, tmp_path, tiny_h5, errors, bad):
    kw = {"latent": {"dec_k": 4}, "two_inputs": {"dec_inputs": 2}, "string": {"string_output": True},
          "one_output": {"enc_outputs": 1}}.get(bad, {})
    enc, dec = bernoulli_pair(tmp_path, d_x=64, k=3, **kw)
    if bad == "truncated":
        dec.write_bytes(dec.read_bytes()[:40])
    data = str(tmp_path / "missing.npy") if bad == "data" else f"{tiny_h5}:images"
    with qtbot.waitSignal(window.model_opener.failed, timeout=60_000):
        window.model_opener.open(ModelRequest(str(enc), str(dec), data))
    assert len(errors) == 1 and "\n" not in errors[0] and "Traceback" not in errors[0]
    assert not any(isinstance(x, ModelSession) for x in window.runs.sessions())
    qtbot.waitUntil(lambda: not window.model_opener.busy, timeout=10_000)
    assert window.isVisible()


def test_a_bad_link_in_recent_files_gives_one_dialog(window, tmp_path, errors):
    link = tmp_path / "x.lemodel"
    link.write_text("{not json")
    assert window.open_path(str(link)) is False
    assert len(errors) == 1 and "model link" in errors[0]


@pytest.fixture(scope="module")
def exported_pair(finished_run, tmp_path_factory):
    """The finished run's encoder and decoder, written by ``latent-explorer export``."""
    import subprocess

    folder = tmp_path_factory.mktemp("exported")
    enc, dec = folder / "finished-encoder.onnx", folder / "finished-decoder.onnx"
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    subprocess.run([sys.executable, os.path.join(repo, "main.py"), "export", finished_run,
                    "--decoder", str(dec), "--encoder", str(enc)], check=True, timeout=300,
                   env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True)
    return str(enc), str(dec)


@pytest.mark.parametrize("given", ["encoder", "decoder"])
def test_a_pair_we_exported_opens_from_either_file(window, qtbot, exported_pair, tiny_h5, given,
                                                    errors):
    enc, dec = exported_pair
    request = ModelRequest(enc if given == "encoder" else None, dec if given == "decoder" else None,
                           f"{tiny_h5}:images")
    s = _open(window, qtbot, request)
    assert {s.model.pair.encoder_path, s.model.pair.decoder_path} == {enc, dec}
    assert s.model.pair.ours and s.latent_dim == 3 and errors == []


def test_the_dialog_makes_the_request(qtbot, tmp_path, tiny_h5):
    from explorer.open_model_dialog import OpenModelDialog

    d = OpenModelDialog()
    qtbot.addWidget(d)
    ok = d.buttons.button(d.buttons.StandardButton.Open)
    assert not ok.isEnabled()
    d.decoder.setText(str(tmp_path / "dec.onnx"))
    d.data.setEditText(f"{tiny_h5}:images")
    assert ok.isEnabled()
    d.likelihood.setCurrentIndex(d.likelihood.findData("gaussian"))
    d.obs_std.setValue(0.1)
    d.rows.setValue(0)
    r = d.request()
    assert r == ModelRequest(None, str(tmp_path / "dec.onnx"), f"{tiny_h5}:images",
                             likelihood="gaussian", obs_std=0.1, max_samples=None)
    d2 = OpenModelDialog(previous=r)
    qtbot.addWidget(d2)
    assert d2.request() == r
    d.data.setEditText("shapes:32")
    assert d.request().data == "shapes:32"
