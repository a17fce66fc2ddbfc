"""Seeded corruption of an exported decoder (benchmarks/onnx_corruption.py): 120 damaged copies,
zero tracebacks, zero hangs (a generous subprocess timeout), every outcome "damage reported" or
"no effect"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from models.config import ModelConfig
from models.io.onnx_export import export_decoder
from models.nn.vae import VAE

ROOT = Path(__file__).resolve().parents[3]


def test_120_corrupted_decoders_report_damage_or_have_no_effect(tmp_path) -> None:
    torch.manual_seed(0)
    decoder = tmp_path / "dec.onnx"
    export_decoder(VAE(ModelConfig(latent_dim=2, hidden=(16,))), decoder,
                   {"dataset": "mnist", "scaling": "uint8/255", "elbo": -100.0})
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "onnx_corruption.py"), "--cases", "120",
         "--seed", "0", "--decoder", str(decoder), "--min-run-seconds", "2"],
        env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    print(proc.stdout)  # the counts, shown with pytest -s
    assert counts["cases"] == 120
    assert counts.get("traceback", 0) == 0 and counts.get("changed_output", 0) == 0, proc.stdout
    assert counts.get("damage_reported", 0) + counts.get("no_effect", 0) == 120
    assert counts.get("damage_reported", 0) >= 100  # the checksum makes almost every flip visible
    assert "EP Error" not in proc.stdout + proc.stderr  # onnxruntime's fallback banner never shows
