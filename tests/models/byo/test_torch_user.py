"""A pair written the way a plain PyTorch user writes it (the docs' example, run as it stands)
opens and diagnoses in the CLI with no options."""

from __future__ import annotations

import os
import re
import warnings

import numpy as np
from byo_run import ROOT, cli, json_of

from models.diagnostics import JSON_KEYS


def _docs_example() -> str:
    text = (ROOT / "docs" / "bring-your-own.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)[0]


def test_docs_example_exports_a_pair_that_diagnoses(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():  # torch's exporter warns about its own internals
        warnings.simplefilter("ignore")
        exec(compile(_docs_example(), "bring-your-own.md", "exec"), {"__name__": "docs_example"})
    assert {p.name for p in tmp_path.iterdir()} >= {"encoder.onnx", "decoder.onnx"}
    bits = (np.random.default_rng(0).random((60, 1, 28, 28)) > 0.7).astype(np.float32)
    np.save(tmp_path / "bits.npy", bits)
    code, out, err = cli(capsys, "diagnose", "--encoder", "encoder.onnx", "--decoder",
                         "decoder.onnx", "--data", "bits.npy", "--iw-samples", 3, "--json")
    assert code == 0, err
    got = json_of(out)
    assert tuple(got) == tuple(JSON_KEYS) and got["n_samples"] == 60
    assert len(got["kl_per_dim"]) == 8 and np.isfinite(got["iwae"])
    # an untrained decoder's log-likelihood per pixel is about log(1/2)
    assert -1.2 * 784 < got["iwae"] < -0.3 * 784
    code, out, err = cli(capsys, "diagnose", "--encoder", "encoder.onnx", "--decoder",
                         "decoder.onnx", "--data", "mnist", "--max-samples", 50, "--iw-samples", 2)
    assert code == 0, err
    assert "likelihood bernoulli (logits)" in out and os.path.exists("decoder.onnx")
