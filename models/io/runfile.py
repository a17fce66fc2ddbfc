"""Run files: one HDF5 file per training run, written in SWMR mode so it can be read as it grows.

The writer creates every group and dataset up front, then switches the file to SWMR
(single-writer/multiple-reader) mode, in which HDF5 allows no new objects or attributes: rows are
appended to resizable datasets, the status, message and weights are overwritten in place (the
weights through a staging copy, so that a run killed while saving them still holds one whole
set: see :meth:`RunWriter.save_weights`). A reader
(another process, or another handle in this one) opens the file with ``swmr=True`` and calls
:meth:`RunReader.refresh` to see new rows. Because every flush leaves the file consistent, a run
killed with SIGKILL leaves a readable file holding every flushed epoch.

The layout (every group and dataset, dtype, shape and meaning) is documented in docs/runfile.md.
Nothing is pickled: the configuration and data set description are JSON, the weights plain arrays
keyed by their ``state_dict`` names.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import torch

from models.config import RunConfig
from models.errors import LatentExplorerError, RunFileError
from models.nn.vae import VAE
from models.data.hdf5_safety import open_hdf5  # [faults]
from models.io.disk import check_free_space  # [faults]
from models.io.liveness import file_replaced, process_alive, refuse_live_writer  # [faults]
from models.io.temp_files import remove_stale_temps  # [faults]

if TYPE_CHECKING:  # the events are defined in models.training, which imports this module
    from models.training import EpochEvent, StepEvent

FORMAT_NAME = "latent-explorer-run"
FORMAT_VERSION = 1
STATUSES = ("running", "finished", "stopped", "diverged", "error")

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
}
EPOCH_MATRICES = ("val_kl_per_dim", "activity_per_dim")
EPOCH_STRINGS = {"verdict": VERDICT_BYTES}


def _fixed(text: str, size: int) -> np.bytes_:
    """UTF-8 bytes that fit a fixed-length field, cut at a character boundary."""
    raw = text.encode("utf-8")
    if len(raw) > size:
        raw = raw[: size - 3]
        raw = raw.decode("utf-8", errors="ignore").encode("utf-8") + b"..."
    return np.bytes_(raw)


def _text(value: Any) -> str:
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


class RunWriter:
    """Writes one run file. Create it, log steps and epochs, save weights, set the status, close.

    Parameters
    ----------
    path
        The run file to create. It is built beside the target under a temporary name and moved
        into place complete, so a reader never sees a half-made file.
    config, model
        The run's configuration (saved as JSON) and the model (its ``state_dict`` fixes the weight
        datasets; ``model.latent_dim`` the width of the per-dimension matrices).
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
        model: VAE,
        dataset_info: Mapping[str, Any],
        val_indices: np.ndarray | None,
        force: bool = False,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.path = os.fspath(path)
        self.flush_seconds = float(flush_seconds)
        self.latent_dim = int(model.latent_dim)
        self._pending_steps: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        self._start = time.time()
        self._file: h5py.File | None = None
        if os.path.isdir(self.path):
            raise RunFileError(f"{self.path}: is a directory, not a run file")
        if os.path.exists(self.path) and not force:
            raise RunFileError(f"{self.path}: exists already (use --force to replace it)")
        refuse_live_writer(self.path)  # [faults] --force never replaces a live run's file
        remove_stale_temps(self.path)  # [faults] RUN.h5.tmp-PID of killed writers
        weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        check_free_space(self.path, 2 * weights)  # [faults] a full disk: one line, no file
        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(parent):
            raise RunFileError(f"{self.path}: the folder {parent} does not exist")
        tmp = f"{self.path}.tmp-{os.getpid()}"
        try:
            self._create(tmp, config, model, dict(dataset_info), val_indices)
            if force:
                os.replace(tmp, self.path)
            else:
                try:  # atomic "create if absent": fails if someone made the file meanwhile
                    os.link(tmp, self.path)
                except FileExistsError:
                    raise RunFileError(
                        f"{self.path}: exists already (use --force to replace it)"
                    ) from None
                except OSError:  # a file system without hard links
                    if os.path.exists(self.path):
                        raise RunFileError(
                            f"{self.path}: exists already (use --force to replace it)"
                        ) from None
                    os.replace(tmp, self.path)
                else:
                    os.unlink(tmp)
        except (OSError, RuntimeError) as exc:  # [faults] h5py's close after ENOSPC: RuntimeError
            raise RunFileError(f"{self.path}: cannot write the run file: {_reason(exc)}") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._file = h5py.File(self.path, "r+", libver="latest")
        self._file.swmr_mode = True
        self._status = self._file["status"]
        self._message = self._file["message"]

    # ------------------------------------------------------------------ creation
    def _create(
        self,
        tmp: str,
        config: RunConfig,
        model: VAE,
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
            f.create_dataset("val_indices", data=vi)
            f.create_dataset("status", data=_fixed("running", STATUS_BYTES), dtype=f"S{STATUS_BYTES}")
            f.create_dataset("message", data=_fixed("", MESSAGE_BYTES), dtype=f"S{MESSAGE_BYTES}")
            f.create_dataset("created", data=self._start, dtype="f8")
            f.create_dataset("updated", data=self._start, dtype="f8")
            f.create_dataset("weights_step", data=-1, dtype="i8")
            f.create_dataset("staged_weights_step", data=-1, dtype="i8")
            f.create_dataset("weights_staged", data=0, dtype="i1")
            w = f.create_group("weights")
            staged = f.create_group("staged_weights")
            for name, tensor in model.state_dict().items():
                arr = tensor.detach().cpu().numpy()
                w.create_dataset(name, data=np.zeros(arr.shape, dtype=arr.dtype))
                staged.create_dataset(name, data=np.zeros(arr.shape, dtype=arr.dtype))
            steps = f.create_group("steps")
            for name, dtype in STEP_COLUMNS.items():
                steps.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(1024,))
            for name in STEP_MATRICES:
                steps.create_dataset(
                    name, shape=(0, d), maxshape=(None, d), dtype="f8", chunks=(max(1, 8192 // d), d)
                )
            epochs = f.create_group("epochs")
            for name, dtype in EPOCH_COLUMNS.items():
                epochs.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(64,))
            for name in EPOCH_MATRICES:
                epochs.create_dataset(name, shape=(0, d), maxshape=(None, d), dtype="f8", chunks=(64, d))
            for name, size in EPOCH_STRINGS.items():
                epochs.create_dataset(name, shape=(0,), maxshape=(None,), dtype=f"S{size}", chunks=(64,))

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
        ds[n] = _fixed(ev.verdict or "", VERDICT_BYTES)
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

    def save_weights(self, model: VAE, step: int | None = None) -> None:
        """Overwrite the stored weights with ``model``'s (call with the last good weights), from
        optimiser step ``step`` (None: keep the recorded step).

        Nothing is written unless every value is finite. The weights go first to
        ``staged_weights``, which is flushed and then marked whole (``weights_staged`` = 1,
        flushed); then they are copied over ``weights``, flushed, and the mark cleared. Whenever
        the writer dies, one of the two groups holds a whole set, and the mark says which:
        :meth:`RunReader.weights` follows it.
        """
        f = self.file
        state = {name: t.detach().cpu().numpy() for name, t in model.state_dict().items()}
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

    def set_status(self, status: str, message: str = "") -> None:
        """Set the run's status (running, finished, stopped, diverged, error) and message; flushes."""
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        self._status[()] = _fixed(status, STATUS_BYTES)
        self._message[()] = _fixed(message, MESSAGE_BYTES)
        self.flush()

    def flush(self) -> None:
        """Write buffered step rows and make everything written so far visible to readers."""
        if self._file is None:
            return
        if file_replaced(self.path, self._file):  # [faults]
            raise RunFileError(f"{self.path}: the file was replaced or removed while this run wrote it")
        check_free_space(self.path, 0)  # [faults] never write into a full disk (h5py crashes)
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


def _float_or_nan(value: Any) -> float:
    return math.nan if value is None else float(value)


# ====================================================================== reading
class RunReader:
    """Reads a run file, also while it is being written (SWMR). Raises RunFileError on bad files.

    Attributes
    ----------
    config : RunConfig
    status : str            running, finished, stopped, diverged or error (re-read by refresh())
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
            raise RunFileError(f"{self.path}: damaged or truncated run file ({_reason(exc)})") from None

    def _open(self) -> h5py.File:
        # [faults] bounded: SWMR only when marked open for write; no links or external storage
        return open_hdf5(self.path, RunFileError, what="a run file")

    def _check_format(self) -> None:
        f = self._file
        fmt = f.attrs.get("format")
        if fmt is None or _text(fmt) != FORMAT_NAME:
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
            self.config = RunConfig.from_json(_text(f["config"][()]))
        except LatentExplorerError as exc:
            raise RunFileError(f"{self.path}: the stored configuration is invalid: {exc}") from None
        self.dataset_info: dict[str, Any] = json.loads(_text(f["dataset"][()]))
        if not isinstance(self.dataset_info, dict):
            raise RunFileError(
                f"{self.path}: the stored data set description is not a JSON object "
                f"(a {type(self.dataset_info).__name__})"
            )
        self.val_indices = np.asarray(f["val_indices"][()], dtype=np.int64)
        self.created = float(f["created"][()])
        host, pid = f.attrs.get("writer_host"), f.attrs.get("writer_pid")
        self.writer = (_text(host), int(pid)) if host is not None and pid is not None else None

    def writer_alive(self) -> bool | None:
        """Whether the process that writes the file still runs: True or False when it ran on this
        machine, None when that cannot be told (another machine, or an older file). A file whose
        status is still ``running`` while its writer is gone was interrupted (e.g. killed): it
        holds every epoch flushed before."""
        host, pid = self.writer or (None, None)
        return process_alive(host, pid, self.created)  # [faults] one liveness rule (pid reuse, zombies)

    # ------------------------------------------------------------------ live state
    def refresh(self) -> bool:
        """Re-read the growing datasets and the status; True if new step or epoch rows arrived."""
        f = self._file
        try:
            for name in ("status", "message", "updated"):
                ds = f[name]
                if f.swmr_mode:
                    ds.refresh()
            self.status = _text(f["status"][()]).strip("\x00")
            self.message = _text(f["message"][()]).strip("\x00")
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
            raise RunFileError(f"{self.path}: damaged or truncated run file ({_reason(exc)})") from None
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
                    arr = np.array([_text(v) for v in arr], dtype=object)
                out[name] = arr
        except (OSError, KeyError, RuntimeError, ValueError) as exc:
            raise RunFileError(f"{self.path}: damaged or truncated run file ({_reason(exc)})") from None
        return out

    def steps(self, start: int = 0) -> dict[str, np.ndarray]:
        """Per logged step: step, epoch, time, elbo, distortion, rate, beta, lr, samples_per_s
        (1-D) and kl_per_dim [n, d]; means over the steps since the previous row, nats/sample.
        ``start`` skips the rows before it (a reader following a growing file reads the new
        rows only)."""
        return self._columns("steps", start)

    def epochs(self, start: int = 0) -> dict[str, np.ndarray]:
        """Per epoch: epoch, step, time, seconds, train_/val_ elbo, distortion, rate,
        active_units, mutual_info, marginal_kl (1-D), val_kl_per_dim and activity_per_dim
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
            raise RunFileError(f"{self.path}: damaged or truncated run file ({_reason(exc)})") from None

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
            first = str(exc).strip().splitlines()[0]
            raise RunFileError(f"{self.path}: the weights do not fit the stored model: {first}") from None
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


def data_spec(reader: RunReader) -> str:
    """The data spec to load a run's data set again, from any working directory.

    For an HDF5 file, the absolute file and array path recorded at training time (older run
    files stored the spec as typed, possibly relative to the directory training ran in);
    otherwise the stored spec (``mnist``, ``shapes:32``). Uses only what RunReader reads when it
    opens, so it works after the reader is closed too. Pass the run's ``config.train.labels``
    and ``dataset_info["max_samples"]`` to ``load_dataset`` with it.
    """
    info = reader.dataset_info
    spec = str(info.get("spec") or reader.config.train.data)
    file, array = info.get("file"), info.get("array")
    if info.get("source") != "hdf5" or not isinstance(file, str) or not file:
        return spec
    if not os.path.exists(file) and not os.path.isabs(spec):
        from models.data import parse_hdf5_spec

        if os.path.exists(parse_hdf5_spec(spec)[0]):  # moved along with the current directory
            return spec
    return f"{file}:{array}" if isinstance(array, str) and array else file


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text
