"""What the app calls from a background task: open_model with progress and a stop check; and a
pair we exported, recognised from either file."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from byo_pairs import LinearGaussian

from models.config import ModelConfig
from models.errors import ModelFileError
from models.io.onnx_pair import PairOptions
from models.io.onnx_partner import open_pair
from models.io.pair_diagnosis import DiagnosisStopped, open_model


def test_open_model_encodes_reports_progress_and_stops(tmp_path):
    lg = LinearGaussian()
    enc, dec = lg.write(tmp_path)
    x = lg.sample(50)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.arange(50) % 5)
    seen = []
    m = open_model(str(enc), str(dec), str(tmp_path / "x.npy"), labels=str(tmp_path / "y.npy"),
                   options=PairOptions(likelihood="gaussian", obs_std=lg.sigma), batch_size=16,
                   progress=lambda done, total: seen.append((done, total)))
    assert seen == [(16, 50), (32, 50), (48, 50), (50, 50)]
    assert m.mu.shape == (50, 4) and list(m.labels) == list(np.arange(50) % 5)
    np.testing.assert_allclose(m.log_likelihood(x[:5], k=3), lg.log_px(x[:5]), atol=1e-4)
    assert m.decode(m.mu[:2]).shape == (2, 6)
    assert m.summary()["collapsed_dims"] == [2, 3]
    calls = iter([False, True])
    with pytest.raises(DiagnosisStopped):
        m.diagnose(iw_samples=2, batch_size=16, should_stop=lambda: next(calls))


def test_a_pair_we_exported_is_found_from_either_file(tmp_path):
    from models.io.onnx_export import export_decoder, export_encoder
    from models.nn.vae import VAE

    vae = VAE(ModelConfig(data_shape=(1, 4, 4), latent_dim=3, hidden=(8,))).eval()
    other = VAE(ModelConfig(data_shape=(1, 4, 4), latent_dim=3, hidden=(9,))).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_encoder(vae, tmp_path / "net-encoder.onnx", {"run_file": "a.h5"})
        export_decoder(vae, tmp_path / "b-gen.onnx", {"run_file": "a.h5"})  # not a swapped name
        export_decoder(other, tmp_path / "net-decoder.onnx", {"run_file": "b.h5"})  # a decoy
    pair = open_pair(tmp_path / "net-encoder.onnx", None)
    assert pair.decoder_path.endswith("b-gen.onnx") and pair.ours
    assert pair.likelihood == "bernoulli" and pair.decoder_output == "probabilities"
    assert open_pair(None, tmp_path / "b-gen.onnx").encoder_path.endswith("net-encoder.onnx")
    with pytest.raises(ModelFileError, match="no encoder of the same model found beside it"):
        open_pair(None, tmp_path / "net-decoder.onnx")
