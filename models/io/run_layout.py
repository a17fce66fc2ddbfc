"""The run file's layout, shared by its reader and writer: the format's name and version, the
per-step and per-epoch columns, and the fixed-size text fields (see ``models.io.runfile``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.training.events import RunStatus

FORMAT_NAME = "latent-explorer-run"
FORMAT_VERSION = 1
#: The statuses a run file may hold (RunStatus values): a writer stores running, finished,
#: stopped, diverged or error; ``recover`` stores interrupted (a reader also concludes it for a
#: running file whose writer is gone).
STATUSES = tuple(s.value for s in RunStatus)

STATUS_BYTES = 16
MESSAGE_BYTES = 1024
VERDICT_BYTES = 2048
FLUSH_SECONDS = 2.0

# Per-step columns (one row per logged step): name -> dtype. kl_per_dim is [n, latent_dim].
STEP_COLUMNS: dict[str, str] = {
    "step": "i8",
    "epoch": "i4",
    "time": "f8",
    "elbo": "f8",
    "distortion": "f8",
    "rate": "f8",
    "beta": "f8",
    "lr": "f8",
    "samples_per_s": "f8",
}
STEP_MATRICES = ("kl_per_dim",)

# Per-epoch columns (one row per finished epoch). The matrices are [n, latent_dim].
EPOCH_COLUMNS: dict[str, str] = {
    "epoch": "i4",
    "step": "i8",
    "time": "f8",
    "seconds": "f8",
    "train_elbo": "f8",
    "train_distortion": "f8",
    "train_rate": "f8",
    "val_elbo": "f8",
    "val_distortion": "f8",
    "val_rate": "f8",
    "active_units": "i4",
    "mutual_info": "f8",
    "marginal_kl": "f8",
    "mi_ceiling": "f8",
    "mi_saturated": "i1",
}
EPOCH_MATRICES = ("val_kl_per_dim", "activity_per_dim")
EPOCH_STRINGS = {"verdict": VERDICT_BYTES}


def fixed_bytes(text: str, size: int) -> np.bytes_:
    """UTF-8 bytes that fit a fixed-length field, cut at a character boundary."""
    raw = text.encode("utf-8")
    if len(raw) > size:
        raw = raw[: size - 3]
        raw = raw.decode("utf-8", errors="ignore").encode("utf-8") + b"..."
    return np.bytes_(raw)


def as_text(value: Any) -> str:
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)
