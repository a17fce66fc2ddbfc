"""Reading a run file, also while it is being written (SWMR); see ``models.io.runfile``."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import h5py
import numpy as np
import torch

from models.config import RunConfig
from models.data.preprocessing import run_data_spec
from models.data.hdf5_safety import open_hdf5
from models.io.liveness import process_alive
from models.errors import LatentExplorerError, RunFileError, first_line
from models.io.run_layout import FORMAT_NAME, FORMAT_VERSION, STATUSES, as_text
from models.nn.vae import VAE
from models.training.events import RunStatus


class RunReader:
    """Reads a run file, also while it is being written (SWMR). Raises RunFileError on bad files.

    Attributes
    ----------
    config : RunConfig
    status : RunStatus      running, finished, stopped, diverged or error (re-read by refresh())
    message : str           why a run stopped, diverged or failed ("" otherwise)
    dataset_info : dict     the data set's describe() dictionary
    val_indices : np.ndarray   int64 indices of the validation rows (empty if not recorded)
    weights_step : int      the step the stored weights come from (-1: none saved yet)
    updated : float         Unix time of the writer's last flush
    """

    #: Attempts at reading a whole set of weights while the writer saves a new one.
    WEIGHT_READ_ATTEMPTS = 5

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        if os.path.isdir(self.path):
            raise RunFileError(f"{self.path}: is a directory, not a run file")
        if not os.path.exists(self.path):
            raise RunFileError(f"{self.path}: no such file")
        self._file = self._open()
        try:
            self._check_format()
            self._load_static()
            self._lengths: dict[str, int] = {}
            self.refresh()
        except RunFileError:
            self.close()
            raise
        except (OSError, KeyError, ValueError, TypeError) as exc:
            self.close()
            raise RunFileError(f"{self.path}: damaged or truncated run file ({first_line(exc)})") from None

    def _open(self) -> h5py.File:
        # bounded: SWMR only when the file says it is open for write; no links or external storage
        return open_hdf5(self.path, RunFileError, what="a run file")

    def _check_format(self) -> None:
        f = self._file
        fmt = f.attrs.get("format")
        if fmt is None or as_text(fmt) != FORMAT_NAME:
            raise RunFileError(f"{self.path}: an HDF5 file, but not a Latent Explorer run file")
        version = int(f.attrs.get("format_version", -1))
        if version < 1 or version > FORMAT_VERSION:
            raise RunFileError(
                f"{self.path}: run file format version {version} is not supported "
                f"(this Latent Explorer reads version {FORMAT_VERSION})"
            )
        self.format_version = version

    def _load_static(self) -> None:
        f = self._file
        try:
            self.config = RunConfig.from_json(as_text(f["config"][()]))
        except LatentExplorerError as exc:
            raise RunFileError(f"{self.path}: the stored configuration is invalid: {exc}") from None
        self.dataset_info: dict[str, Any] = json.loads(as_text(f["dataset"][()]))
        if not isinstance(self.dataset_info, dict):
            raise RunFileError(
                f"{self.path}: the stored data set description is not a JSON object "
                f"(a {type(self.dataset_info).__name__})"
            )
        self.val_indices = np.asarray(f["val_indices"][()], dtype=np.int64)
        self.created = float(f["created"][()])
        host, pid = f.attrs.get("writer_host"), f.attrs.get("writer_pid")
        self.writer = (as_text(host), int(pid)) if host is not None and pid is not None else None

    def writer_alive(self) -> bool | None:
        """Whether the process that writes the file still runs: True or False when it ran on this
        machine, None when that cannot be told (another machine, or an older file). A file whose
        status is still ``running`` while its writer is gone was interrupted (e.g. killed): it
        holds every epoch flushed before."""
        host, pid = self.writer or (None, None)
        return process_alive(host, pid, self.created)  # one liveness rule (pid reuse, zombies)

    def effective_status(self) -> RunStatus:
        """The status, except that a run still marked running whose writer is gone (killed, on
        this machine) is ``RunStatus.INTERRUPTED``: it holds every epoch flushed before."""
        if self.status == RunStatus.RUNNING and self.writer_alive() is False:
            return RunStatus.INTERRUPTED
        return self.status

    # ------------------------------------------------------------------ live state
    def refresh(self) -> bool:
        """Re-read the growing datasets and the status; True if new step or epoch rows arrived."""
        f = self._file
        try:
            for name in ("status", "message", "updated"):
                ds = f[name]
                if f.swmr_mode:
                    ds.refresh()
            status = as_text(f["status"][()]).strip("\x00")
            self.message = as_text(f["message"][()]).strip("\x00")
            self.updated = float(f["updated"][()])
            self.weights_step = self._weights_source()[1]
            lengths = {}
            for group in ("steps", "epochs"):
                n = None
                for ds in f[group].values():
                    if f.swmr_mode:
                        ds.refresh()
                    n = ds.shape[0] if n is None else min(n, ds.shape[0])
                lengths[group] = n or 0
        except (OSError, KeyError, RuntimeError, ValueError) as exc:
            raise RunFileError(f"{self.path}: damaged or truncated run file ({first_line(exc)})") from None
        self.status = _status(self.path, status)
        grew = lengths != self._lengths
        self._lengths = lengths
        return grew

    @property
    def n_steps(self) -> int:
        """Logged step rows visible since the last refresh()."""
        return self._lengths["steps"]

    @property
    def n_epochs(self) -> int:
        """Finished epochs visible since the last refresh()."""
        return self._lengths["epochs"]

    def _columns(self, group: str, start: int = 0) -> dict[str, np.ndarray]:
        n = self._lengths[group]
        start = min(max(0, int(start)), n)
        out: dict[str, np.ndarray] = {}
        try:
            for name, ds in self._file[group].items():
                arr = ds[start:n]
                if arr.dtype.kind == "S":
                    arr = np.array([as_text(v) for v in arr], dtype=object)
                out[name] = arr
        except (OSError, KeyError, RuntimeError, ValueError) as exc:
            raise RunFileError(f"{self.path}: damaged or truncated run file ({first_line(exc)})") from None
        return out

    def steps(self, start: int = 0) -> dict[str, np.ndarray]:
        """Per logged step: step, epoch, time, elbo, distortion, rate, beta, lr, samples_per_s
        (1-D) and kl_per_dim [n, d]; means over the steps since the previous row, nats/sample.
        ``start`` skips the rows before it (a reader following a growing file reads the new
        rows only)."""
        return self._columns("steps", start)

    def epochs(self, start: int = 0) -> dict[str, np.ndarray]:
        """Per epoch: epoch, step, time, seconds, train_/val_ elbo, distortion, rate,
        active_units, mutual_info, marginal_kl, mi_ceiling, mi_saturated (1-D; absent
        in files written before they existed), val_kl_per_dim and activity_per_dim
        [n, d], verdict (strings); rows from ``start`` on."""
        return self._columns("epochs", start)

    def _weights_source(self) -> tuple[str, int]:
        """(group, step) of the whole set of weights: ``staged_weights`` while the writer copies
        a new set over ``weights`` (or died doing so), ``weights`` otherwise and in files written
        before the staging copy existed."""
        f = self._file
        names = ["weights_step"]
        if "weights_staged" in f:
            names += ["weights_staged", "staged_weights_step"]
        if f.swmr_mode:
            for name in names:
                f[name].refresh()
        if "weights_staged" in f and int(f["weights_staged"][()]) == 1:
            return "staged_weights", int(f["staged_weights_step"][()])
        return "weights", int(f["weights_step"][()])

    def weights(self) -> dict[str, np.ndarray]:
        """The stored weights, keyed by state_dict names: one whole set, from the step
        :attr:`weights_step` names (read again if the writer began saving new ones meanwhile)."""
        try:
            for _ in range(self.WEIGHT_READ_ATTEMPTS):
                source = self._weights_source()
                out = {name: ds[()] for name, ds in self._file[source[0]].items()}
                if self._weights_source() == source:
                    break
            self.weights_step = source[1]
            return out
        except (OSError, KeyError, RuntimeError, ValueError) as exc:
            raise RunFileError(f"{self.path}: damaged or truncated run file ({first_line(exc)})") from None

    def load_model(self, device: str | torch.device = "cpu") -> VAE:
        """Rebuild the VAE from the stored configuration and weights (in eval mode)."""
        self.refresh()
        if self.weights_step < 0:
            raise RunFileError(f"{self.path}: holds no weights yet (no epoch has finished)")
        model = VAE(self.config.model)
        state = {name: torch.from_numpy(np.array(arr)) for name, arr in self.weights().items()}
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise RunFileError(
                f"{self.path}: the weights do not fit the stored model: {first_line(exc)}"
            ) from None
        return model.to(device).eval()

    def close(self) -> None:
        f = getattr(self, "_file", None)
        if f is not None:
            try:
                f.close()
            finally:
                self._file = None

    def __enter__(self) -> RunReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _status(path: str, text: str) -> RunStatus:
    if text not in STATUSES:
        raise RunFileError(f"{path}: damaged run file (unknown run status {text!r})")
    return RunStatus(text)


def data_spec(reader: RunReader) -> str:
    """The data spec to load a run's data set again, from any working directory: the
    ``models.data.preprocessing.run_data_spec`` of what the reader read when it opened (so it
    works after the reader is closed too). Pass the run's ``config.train.labels`` and
    ``dataset_info["max_samples"]`` to ``load_dataset`` with it."""
    return run_data_spec(reader.dataset_info, reader.config.train.data)
