"""Writing a run file (layout: ``models.io.run_layout``; the whole story: ``models.io.runfile``).

``RunWriter`` builds the file beside its target under a temporary name and moves it into place
complete, then appends rows and overwrites the status and weights in place, in SWMR mode. The
weights (both copies), the validation indices and every logged column are stored in chunks with
HDF5's Fletcher-32 checksum: a damaged chunk fails its read (see ``RunReader``).
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from collections.abc import Mapping
from typing import Any

import h5py
import numpy as np

from models.config import RunConfig
from models.errors import RunFileError, file_exists, first_line
from models.io.atomic import check_target
from models.io.disk import check_free_space
from models.io.liveness import file_replaced, refuse_live_writer
from models.io.temp_files import remove_stale_temps
from models.io.run_layout import (
    EPOCH_COLUMNS, EPOCH_MATRICES, EPOCH_STRINGS, FLUSH_SECONDS, FORMAT_NAME, FORMAT_VERSION,
    MESSAGE_BYTES, STATUS_BYTES, STATUSES, STEP_COLUMNS, STEP_MATRICES, VERDICT_BYTES, fixed_bytes,
)
from models.nn.vae import VAE
from models.training.events import EpochEvent, RunStatus, StepEvent


class RunWriter:
    """Writes one run file. Create it, log steps and epochs, save weights, set the status, close.

    Parameters
    ----------
    path
        The run file to create. It is built beside the target under a temporary name and moved
        into place complete, so a reader never sees a half-made file.
    config, model
        The run's configuration (saved as JSON; its latent size is the width of the
        per-dimension matrices) and the model, or its weights keyed by ``state_dict`` names:
        their names, shapes and dtypes fix the weight datasets.
    dataset_info
        The data set's ``describe()`` dictionary, saved as JSON.
    val_indices
        Indices of the validation rows in the data set; ``None`` stores an empty array.
    force
        Replace an existing file. Without it an existing ``path`` raises :class:`RunFileError`.
    flush_seconds
        Step rows are buffered and written at most this often (and at every epoch).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        config: RunConfig,
        model: VAE | Mapping[str, np.ndarray],
        dataset_info: Mapping[str, Any],
        val_indices: np.ndarray | None,
        force: bool = False,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.path = os.fspath(path)
        self.flush_seconds = float(flush_seconds)
        self.latent_dim = int(config.model.latent_dim)
        self._pending_steps: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        self._start = time.time()
        self._file: h5py.File | None = None
        check_run_target(self.path, force)
        remove_stale_temps(self.path)  # RUN.h5.tmp-PID left by killed writers
        weights = _arrays(model)
        check_free_space(self.path, 2 * sum(a.nbytes for a in weights.values()))  # full disk: one line
        tmp = f"{self.path}.tmp-{os.getpid()}"
        try:
            self._create(tmp, config, weights, dict(dataset_info), val_indices)
            # In SWMR mode before it takes its name: a reader that finds the file there (one
            # that waits for it to appear) can always open it, never while it is locked for a
            # plain write.
            self._file = h5py.File(tmp, "r+", libver="latest")
            self._file.swmr_mode = True
            if force:
                os.replace(tmp, self.path)
            else:
                try:  # atomic "create if absent": fails if someone made the file meanwhile
                    os.link(tmp, self.path)
                except FileExistsError:
                    raise file_exists(self.path, RunFileError) from None
                except OSError:  # a file system without hard links
                    if os.path.exists(self.path):
                        raise file_exists(self.path, RunFileError) from None
                    os.replace(tmp, self.path)
                else:
                    os.unlink(tmp)
        except BaseException as exc:
            if self._file is not None:
                self._file.close()
                self._file = None
            if isinstance(exc, OSError | RuntimeError):  # h5py's close after ENOSPC: RuntimeError
                raise RunFileError(f"{self.path}: cannot write the run file: {first_line(exc)}") from None
            raise
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._status = self._file["status"]
        self._message = self._file["message"]

    # ------------------------------------------------------------------ creation
    def _create(
        self,
        tmp: str,
        config: RunConfig,
        weights: Mapping[str, np.ndarray],
        dataset_info: dict[str, Any],
        val_indices: np.ndarray | None,
    ) -> None:
        d = self.latent_dim
        with h5py.File(tmp, "w", libver="latest") as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = FORMAT_VERSION
            # Who writes it: a reader on the same machine can tell a killed writer from a slow one.
            f.attrs["writer_host"] = socket.gethostname()
            f.attrs["writer_pid"] = os.getpid()
            f.create_dataset("config", data=config.to_json(), dtype=h5py.string_dtype())
            f.create_dataset(
                "dataset", data=json.dumps(dataset_info, sort_keys=True), dtype=h5py.string_dtype()
            )
            vi = np.asarray(val_indices if val_indices is not None else [], dtype=np.int64)
            f.create_dataset("val_indices", data=vi, **checksummed(vi.shape))
            f.create_dataset("status", data=fixed_bytes(RunStatus.RUNNING, STATUS_BYTES), dtype=f"S{STATUS_BYTES}")
            f.create_dataset("message", data=fixed_bytes("", MESSAGE_BYTES), dtype=f"S{MESSAGE_BYTES}")
            f.create_dataset("created", data=self._start, dtype="f8")
            f.create_dataset("updated", data=self._start, dtype="f8")
            f.create_dataset("weights_step", data=-1, dtype="i8")
            f.create_dataset("staged_weights_step", data=-1, dtype="i8")
            f.create_dataset("weights_staged", data=0, dtype="i1")
            w = f.create_group("weights")
            staged = f.create_group("staged_weights")
            for name, arr in weights.items():
                for group in (w, staged):
                    group.create_dataset(name, data=np.zeros(arr.shape, dtype=arr.dtype),
                                         **checksummed(arr.shape))
            # The logged tables grow in chunks, each with its Fletcher-32 checksum.
            steps = f.create_group("steps")
            for name, dtype in STEP_COLUMNS.items():
                steps.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(1024,),
                                     fletcher32=True)
            for name in STEP_MATRICES:
                steps.create_dataset(name, shape=(0, d), maxshape=(None, d), dtype="f8",
                                     chunks=(max(1, 8192 // d), d), fletcher32=True)
            epochs = f.create_group("epochs")
            for name, dtype in EPOCH_COLUMNS.items():
                epochs.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(64,),
                                      fletcher32=True)
            for name in EPOCH_MATRICES:
                epochs.create_dataset(name, shape=(0, d), maxshape=(None, d), dtype="f8",
                                      chunks=(64, d), fletcher32=True)
            for name, size in EPOCH_STRINGS.items():
                epochs.create_dataset(name, shape=(0,), maxshape=(None,), dtype=f"S{size}",
                                      chunks=(64,), fletcher32=True)

    # ------------------------------------------------------------------ writing
    @property
    def file(self) -> h5py.File:
        if self._file is None:
            raise RunFileError(f"{self.path}: the run file is closed")
        return self._file

    def log_step(self, ev: StepEvent) -> None:
        """Buffer one step row; rows reach the file at most every ``flush_seconds`` and at epochs."""
        self._pending_steps.append(
            {
                "step": ev.step,
                "epoch": ev.epoch,
                "time": time.time() - self._start,
                "elbo": ev.elbo,
                "distortion": ev.distortion,
                "rate": ev.rate,
                "beta": ev.beta,
                "lr": ev.lr,
                "samples_per_s": ev.samples_per_s,
                "kl_per_dim": np.asarray(ev.kl_per_dim, dtype=np.float64).reshape(self.latent_dim),
            }
        )
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def log_epoch(self, ev: EpochEvent) -> None:
        """Append one epoch row (validation metrics and diagnostics) and flush."""
        self._write_pending_steps()
        g = self.file["epochs"]
        row: dict[str, Any] = {
            "epoch": ev.epoch,
            "step": ev.step,
            "time": time.time() - self._start,
            "seconds": ev.seconds,
            "train_elbo": ev.train_elbo,
            "train_distortion": ev.train_distortion,
            "train_rate": ev.train_rate,
            "val_elbo": ev.val_elbo,
            "val_distortion": ev.val_distortion,
            "val_rate": ev.val_rate,
            "active_units": ev.active_units,
            "mutual_info": _float_or_nan(ev.mutual_info),
            "marginal_kl": _float_or_nan(ev.marginal_kl),
            "mi_ceiling": _float_or_nan(ev.mi_ceiling),
            "mi_saturated": int(ev.mi_saturated),
        }
        n = g["epoch"].shape[0]
        for name in EPOCH_COLUMNS:
            ds = g[name]
            ds.resize((n + 1,))
            ds[n] = row[name]
        for name, value in (("val_kl_per_dim", ev.val_kl_per_dim), ("activity_per_dim", ev.activity_per_dim)):
            ds = g[name]
            ds.resize((n + 1, self.latent_dim))
            ds[n] = np.asarray(value, dtype=np.float64).reshape(self.latent_dim)
        ds = g["verdict"]
        ds.resize((n + 1,))
        ds[n] = fixed_bytes(ev.verdict or "", VERDICT_BYTES)
        self.flush()

    def _write_pending_steps(self) -> None:
        rows = self._pending_steps
        if not rows:
            return
        g = self.file["steps"]
        n = g["step"].shape[0]
        m = len(rows)
        for name in STEP_COLUMNS:
            ds = g[name]
            ds.resize((n + m,))
            ds[n:] = np.array([r[name] for r in rows], dtype=ds.dtype)
        for name in STEP_MATRICES:
            ds = g[name]
            ds.resize((n + m, self.latent_dim))
            ds[n:] = np.stack([r[name] for r in rows])
        self._pending_steps = []

    def save_weights(self, model: VAE | Mapping[str, np.ndarray], step: int | None = None) -> None:
        """Overwrite the stored weights with ``model``'s, or with weights keyed by ``state_dict``
        names (call with the last good weights), from optimiser step ``step`` (None: keep the
        recorded step).

        Nothing is written unless every value is finite. The weights go first to
        ``staged_weights``, which is flushed and then marked whole (``weights_staged`` = 1,
        flushed); then they are copied over ``weights``, flushed, and the mark cleared. Whenever
        the writer dies, one of the two groups holds a whole set, and the mark says which:
        :meth:`RunReader.weights` follows it.
        """
        f = self.file
        state = _arrays(model)
        if set(state) != set(f["weights"].keys()):
            raise RunFileError(f"{self.path}: the model's parameters do not match the run file's")
        for name, arr in state.items():
            if not np.all(np.isfinite(arr)):
                raise RunFileError(f"{self.path}: refusing to save non-finite weights ({name})")
        step = int(f["weights_step"][()]) if step is None else int(step)
        self._write_weights("staged_weights", state)
        f["staged_weights_step"][()] = step
        f.flush()
        f["weights_staged"][()] = 1
        f.flush()
        self._write_weights("weights", state)
        f["weights_step"][()] = step
        f.flush()
        f["weights_staged"][()] = 0  # reaches the file with the next flush; both copies agree

    def _write_weights(self, group: str, state: Mapping[str, np.ndarray]) -> None:
        g = self.file[group]
        for name, arr in state.items():
            g[name][...] = arr

    def set_status(self, status: RunStatus | str, message: str = "") -> None:
        """Set the run's status (running, finished, stopped, diverged, error) and message; flushes."""
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        self._status[()] = fixed_bytes(RunStatus(status), STATUS_BYTES)
        self._message[()] = fixed_bytes(message, MESSAGE_BYTES)
        self.flush()

    def flush(self) -> None:
        """Write buffered step rows and make everything written so far visible to readers."""
        if self._file is None:
            return
        if file_replaced(self.path, self._file):
            raise RunFileError(f"{self.path}: the file was replaced or removed while this run wrote it")
        check_free_space(self.path, 0)  # never write into a full disk (h5py crashes on it)
        self._write_pending_steps()
        self._file["updated"][()] = time.time()
        self._file.flush()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        if self._file is None:
            return
        try:
            self.flush()
        finally:
            self._file.close()
            self._file = None

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def checksummed(shape: tuple[int, ...]) -> dict[str, Any]:
    """``create_dataset`` options that store an array of ``shape`` in chunks, each with HDF5's
    Fletcher-32 checksum, so that damage to it is reported on reading instead of read as values.
    One chunk per array up to about 1 MiB of float32 rows; a scalar or an empty array cannot be
    chunked and is stored plainly."""
    if not shape or 0 in shape:
        return {}
    rows = max(1, min(shape[0], (1 << 18) // max(1, int(np.prod(shape[1:], dtype=np.int64)))))
    return {"chunks": (rows, *shape[1:]), "fletcher32": True}


def _float_or_nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def _arrays(model: VAE | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Weights keyed by ``state_dict`` names, as numpy arrays (a model's are copied off it)."""
    if isinstance(model, Mapping):
        return {name: np.asarray(arr) for name, arr in model.items()}
    return {name: t.detach().cpu().numpy() for name, t in model.state_dict().items()}


def check_run_target(path: str, force: bool) -> None:
    """RunFileError unless a run file may be written at ``path``: not a directory, its folder
    there, no file there unless ``force``, and never a file a live run writes (``--force`` does
    not replace it). Cheap: check before any slow work."""
    check_target(path, force, RunFileError)
    if os.path.exists(path):
        refuse_live_writer(path)
