"""Reading a run file, also while it is being written (SWMR); see ``models.io.runfile``."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import h5py
import numpy as np
import torch

from models.config import ModelConfig, RunConfig
from models.data.preprocessing import run_data_spec
from models.data.hdf5_safety import open_hdf5
from models.io.liveness import process_alive
from models.errors import ConfigError, LatentExplorerError, RunFileError, first_line
from models.io.run_layout import FORMAT_NAME, FORMAT_VERSION, STATUSES, as_text
from models.nn.vae import VAE
from models.training.events import RunStatus

#: The most parameters a model read from a run file may have (8 GiB of float32 weights).
MAX_PARAMETERS = 2**31


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
        except (OSError, KeyError, ValueError, TypeError, AttributeError, OverflowError) as exc:
            self.close()
            raise damaged(self.path, exc) from None

    def _open(self) -> h5py.File:
        # bounded: SWMR only when the file says it is open for write; no links or external storage
        return open_hdf5(self.path, RunFileError, what="a run file")

    def _check_format(self) -> None:
        f = self._file
        fmt = f.attrs.get("format")
        if fmt is None or as_text(fmt) != FORMAT_NAME:
            raise RunFileError(f"{self.path}: an HDF5 file, but not a Latent Explorer run file")
        version = f.attrs.get("format_version", -1)
        whole = isinstance(version, int | np.integer) and not isinstance(version, bool | np.bool_)
        if not whole or not 1 <= version <= FORMAT_VERSION:
            raise RunFileError(
                f"{self.path}: run file format version {as_text(version)[:40]} is not supported "
                f"(this Latent Explorer reads version {FORMAT_VERSION})"
            )
        self.format_version = int(version)

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
        try:
            vi = f["val_indices"][()]
        except OSError as exc:
            raise damaged(self.path, exc, "/val_indices") from None
        if np.ndim(vi) != 1 or np.asarray(vi).dtype.kind not in "iu" or (len(vi) and vi.min() < 0):
            raise RunFileError(f"{self.path}: damaged run file (the validation indices are not "
                               "a list of row numbers from 0 on)")
        self.val_indices = np.asarray(vi, dtype=np.int64)
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
            raise damaged(self.path, exc) from None
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
        where = f"/{group}"
        try:
            for name, ds in self._file[group].items():
                where = f"/{group}/{name}"
                arr = ds[start:n]
                if arr.dtype.kind == "S":
                    arr = np.array([as_text(v) for v in arr], dtype=object)
                out[name] = arr
        except (OSError, KeyError, RuntimeError, ValueError, AttributeError, TypeError) as exc:
            raise damaged(self.path, exc, where) from None
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
        :attr:`weights_step` names (read again if the writer began saving new ones meanwhile).
        Their names and shapes are checked against the stored configuration's model before any
        is read (:func:`check_stored_weights`), and each array against its checksum."""
        where = "/weights"
        try:
            for _ in range(self.WEIGHT_READ_ATTEMPTS):
                source = self._weights_source()
                group = self._file[source[0]]
                check_stored_weights(self.path, self.config.model, group)
                out = {}
                for name, ds in group.items():
                    where = ds.name
                    out[name] = ds[()]
                if self._weights_source() == source:
                    break
            self.weights_step = source[1]
            return out
        except RunFileError:
            raise
        except (OSError, KeyError, RuntimeError, ValueError, AttributeError, TypeError) as exc:
            raise damaged(self.path, exc, where) from None

    def load_model(self, device: str | torch.device = "cpu") -> VAE:
        """Rebuild the VAE from the stored configuration and weights (in eval mode)."""
        self.refresh()
        if self.weights_step < 0:
            raise RunFileError(f"{self.path}: holds no weights yet (no epoch has finished)")
        weights = self.weights()  # checked against the configuration before anything is allocated
        model = VAE(self.config.model)
        state = {name: torch.from_numpy(np.array(arr)) for name, arr in weights.items()}
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


def damaged(path: str, exc: BaseException, where: str | None = None) -> RunFileError:
    """The one line for a read that failed: a chunk that fails its Fletcher-32 checksum (HDF5
    says "filter returned failure": the checksum is the only filter a run file uses) is damage;
    anything else is damage or a truncation."""
    text = first_line(exc)
    if "filter returned failure" in text or "checksum" in text.lower():
        return RunFileError(f"{path}: damaged run file (checksum mismatch in {where or 'a dataset'})")
    return RunFileError(f"{path}: damaged or truncated run file ({text})")


def expected_weights(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The ``state_dict`` shapes of the VAE ``config`` describes, computed without allocating
    (the model is built on torch's ``meta`` device). ConfigError if it cannot be built or would
    hold over :data:`MAX_PARAMETERS` parameters, or more than this machine's memory holds."""
    try:
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in VAE(config).state_dict().items()}
    except (RuntimeError, ValueError, OverflowError, TypeError) as exc:
        raise ConfigError(f"the stored model cannot be built ({first_line(exc)})") from None
    count = sum(math.prod(s) for s in shapes.values())
    memory = _physical_memory()
    if count > MAX_PARAMETERS or (memory and 3 * 4 * count > memory):
        raise ConfigError(
            f"the stored model would have {count:,} parameters, over the {MAX_PARAMETERS:,} "
            "this program loads" + (f" or what this machine's {memory / 2**30:.0f} GiB hold"
                                    if memory else "")
        )
    return shapes


def check_stored_weights(path: str, config: ModelConfig, group: h5py.Group) -> None:
    """RunFileError unless ``group`` holds exactly the float arrays, named and shaped as the
    configuration's model needs (read from the datasets' headers; no value is read)."""
    try:
        expected = expected_weights(config)
    except ConfigError as exc:
        raise RunFileError(f"{path}: {exc}") from None
    stored = dict(group.items())
    if set(stored) != set(expected):
        missing, extra = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
        raise RunFileError(f"{path}: the stored weights do not match the stored model "
                           f"(missing {missing[:3]}, unexpected {extra[:3]})")
    for name, shape in expected.items():
        ds = stored[name]
        if not isinstance(ds, h5py.Dataset) or ds.dtype.kind != "f" or ds.shape != shape:
            got = f"{ds.shape} {ds.dtype}" if isinstance(ds, h5py.Dataset) else "a group"
            raise RunFileError(f"{path}: the stored weight {name} is {got}; the stored model "
                               f"needs float {shape}")


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


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
