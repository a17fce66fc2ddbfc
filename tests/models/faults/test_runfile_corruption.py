"""Seeded corruption of a finished run file (benchmarks/runfile_corruption.py): zero tracebacks
and zero hangs (a generous subprocess timeout) reading 60 damaged copies as diagnose does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_60_corrupted_run_files_never_give_a_traceback_or_hang(tmp_path) -> None:
    run = tmp_path / "run.h5"
    subprocess.run([sys.executable, str(ROOT / "main.py"), "train", "--data", "shapes:32", "--max-samples",
                    "500", "--hidden", "8", "--latent-dim", "2", "--epochs", "1", "--out", str(run)],
                   check=True, capture_output=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "runfile_corruption.py"), "--cases", "60", "--run", str(run)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    print(proc.stdout)
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert counts.get("traceback", 0) == 0, proc.stdout
    assert counts.get("damage_reported", 0) >= 30
