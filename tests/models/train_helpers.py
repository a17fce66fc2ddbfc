"""Tiny data and configurations for the trainer, run-file and train-command tests."""

from __future__ import annotations

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from models.config import ModelConfig, ObjectiveConfig, RunConfig, TrainConfig

@pytest.fixture(autouse=False)
def one_thread():
    """Tiny models train faster on one thread, and a busy machine's cores then do not stall the
    threads of a parallel region; the thread count is restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = 8


def write_tiny_h5(
    path: str, n: int = 96, seed: int = 0, lo: float = 0.0, hi: float = 1.0, size: int = SIZE
) -> str:
    """An HDF5 file of n float32 size x size images in [lo, hi]: a bright 3x3 patch on a dim,
    noisy background, placed at random. Returns the data spec ``"FILE.h5:x"``."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, size, size)).astype(np.float32) * 0.2
    for i in range(n):
        r, c = rng.integers(0, size - 2, size=2)
        x[i, r : r + 3, c : c + 3] = 0.9
    x = lo + (hi - lo) * x
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=x)
    return f"{path}:x"


def tiny_config(spec: str, **train: object) -> RunConfig:
    """An MLP with 3 latent dimensions on the tiny images; ``train`` overrides TrainConfig."""
    objective = train.pop("objective", ObjectiveConfig())
    model = train.pop("model", None) or ModelConfig(
        arch="mlp", data_shape=(1, SIZE, SIZE), latent_dim=3, hidden=(32,)
    )
    settings = dict(data=spec, epochs=2, batch_size=16, lr=3e-3, seed=0, log_every=2, val_fraction=0.25)
    settings.update(train)
    return RunConfig(model=model, objective=objective, train=TrainConfig(**settings))


def cli(*args: str, **kwargs: object) -> subprocess.Popen:
    """Start ``python main.py ARGS`` in the repository root, with text pipes."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "main.py"), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,
    )


class LineReader:
    """Collects a process's stdout lines on a thread, so a test can wait for one."""

    def __init__(self, proc: subprocess.Popen) -> None:
        import queue
        import threading

        self.proc = proc
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, prefix: str, count: int = 1, timeout: float = 120.0) -> list[str]:
        """Block until ``count`` lines starting with ``prefix`` have appeared in all."""
        import queue
        import time

        deadline = time.monotonic() + timeout
        while sum(line.startswith(prefix) for line in self.lines) < count:
            left = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(left, 0.01))
            except queue.Empty:
                self.proc.kill()
                raise AssertionError(f"no {count} lines {prefix!r} in time; got {self.lines}") from None
            if line is None:
                raise AssertionError(
                    f"exited {self.proc.wait()}: {self.lines} {self.proc.stderr.read()}"
                )
            self.lines.append(line)
        return self.lines

    def rest(self, timeout: float = 120.0) -> list[str]:
        """Every line until the process closes its stdout."""
        self._thread.join(timeout)
        while not self._queue.empty():
            line = self._queue.get()
            if line is not None:
                self.lines.append(line)
        return self.lines
