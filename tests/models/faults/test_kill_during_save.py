"""SIGKILL at every point of a weight save, then `recover` and a plain h5py open: one whole set.

A driver process writes a run file with weights A (step 1), then saves weights B (step 2) and is
killed (SIGKILL, sent to itself from a hook) just before its k-th write or flush inside
``save_weights``: while it writes the staging copy, between its flushes, while it copies the
staged set over ``weights/``. One forked child per k, so the driver starts once. After each kill
the file is recovered and opened as any HDF5 tool opens it; ``weights/`` must hold A with
weights_step 1 or B with weights_step 2, never a mix, and ``RunReader`` must agree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from models.config import ModelConfig, RunConfig
from models.io.recover import recover
from models.io.runfile import RunReader
from models.nn.vae import VAE
from models.training.events import RunStatus

ROOT = Path(__file__).resolve().parents[3]
CONFIG = RunConfig(model=ModelConfig(arch="mlp", data_shape=(16,), latent_dim=2, hidden=(8,)))

DRIVER = r'''
import json, os, signal, sys
import h5py, numpy as np
from models.config import RunConfig
from models.io.runfile import RunWriter

folder, config = sys.argv[1], RunConfig.from_json(sys.argv[2])
a = {k: np.asarray(v) for k, v in np.load(os.path.join(folder, "a.npz")).items()}
b = {k: v + 1.0 for k, v in a.items()}


def attempt(k, path):
    """Save A, then B, killed before the k-th write or flush of the second save."""
    w = RunWriter(path, config, a, {"name": "toy"}, np.arange(4))
    w.save_weights(a, step=1)
    w.flush()
    count = [0]
    set_item, flush = h5py.Dataset.__setitem__, h5py.File.flush

    def hook():
        count[0] += 1
        if count[0] == k:
            os.kill(os.getpid(), signal.SIGKILL)

    def patched_set(self, *args):
        hook()
        return set_item(self, *args)

    def patched_flush(self):
        hook()
        return flush(self)

    h5py.Dataset.__setitem__, h5py.File.flush = patched_set, patched_flush
    w.save_weights(b, step=2)
    h5py.Dataset.__setitem__, h5py.File.flush = set_item, flush
    return count[0]


points = attempt(10**9, os.path.join(folder, "count.h5"))  # the writes and flushes of one save
results = {}
for k in range(1, points + 2):  # points + 1: killed after the save returned
    pid = os.fork()
    if pid == 0:
        attempt(k, os.path.join(folder, f"kill{k:02d}.h5"))
        os.kill(os.getpid(), signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    results[k] = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
print(json.dumps({"points": points, "killed": results}))
'''


def _which(got: dict[str, np.ndarray], sets: dict[int, dict[str, np.ndarray]]) -> int | None:
    for step, weights in sets.items():
        if got.keys() == weights.keys() and all(np.array_equal(got[k], weights[k]) for k in weights):
            return step
    return None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_kill_at_any_point_of_a_weight_save_leaves_one_whole_set_after_recover(tmp_path) -> None:
    a = {k: v.detach().numpy().copy() for k, v in VAE(CONFIG.model).state_dict().items()}
    np.savez(tmp_path / "a.npz", **a)
    sets = {1: a, 2: {k: v + 1.0 for k, v in a.items()}}
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path), CONFIG.to_json()], capture_output=True, text=True,
        timeout=600, env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1"),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    points = report["points"]
    assert points >= 2 * len(a) + 4  # each array twice, the step marks and the flushes
    assert all(report["killed"].values()), report
    seen = set()
    for k in range(1, points + 2):
        path = tmp_path / f"kill{k:02d}.h5"
        with RunReader(path) as r:  # the killed file, read as diagnose reads it
            assert _which(r.weights(), sets) == r.weights_step, f"kill before point {k}: a torn set"
        result = recover(path)
        assert result.changed, result.line
        with h5py.File(path, "r") as f:  # as any HDF5 tool opens it
            got = {name: ds[()] for name, ds in f["weights"].items()}
            step = int(f["weights_step"][()])
            assert int(f["weights_staged"][()]) == 0
            assert f["status"][()].rstrip(b"\0").decode() == RunStatus.INTERRUPTED
        assert _which(got, sets) == step, f"kill before point {k}: weights/ is a mix (step {step})"
        with RunReader(path) as r:
            assert r.weights_step == step and _which(r.weights(), sets) == step
            assert r.status is RunStatus.INTERRUPTED
        seen.add(step)
    assert seen == {1, 2}  # early kills keep A, late ones B
