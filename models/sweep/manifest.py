"""The sweep's folder: its manifest ``sweep.json``, its lock, and each run's summary.

``sweep.json`` (format ``latent-explorer-sweep``, version 1) holds the sweep's description (the
base configuration and the varied settings, see :class:`~models.sweep.spec.SweepSpec`) and one
record per run: its name, file (relative to the folder), settings, status (a
:class:`RunStatus` value), message and summary (the last epoch's validation R, D, ELBO and active
units, read from the run file). It is rewritten whole, atomically (a temporary file renamed over
it), at every change of a run's status, so a reader never sees half of it and a driver killed at
any moment leaves the last consistent state. The run files stay the record of each run; the
manifest says which of them the sweep considers done.

Only one driver works in a folder at a time: :func:`lock_folder` takes an exclusive ``flock`` on
``.sweep.lock``, released when the driver exits, however it exits.
"""

from __future__ import annotations

import enum
import json
import math
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from models.errors import ConfigError, LatentExplorerError, RunFileError
from models.io.atomic import replace_from, write_temp_beside
from models.sweep.spec import SweepSpec

FORMAT_NAME = "latent-explorer-sweep"
FORMAT_VERSION = 1
MANIFEST = "sweep.json"
LOCK = ".sweep.lock"


class RunStatus(enum.StrEnum):
    """Where a run of a sweep stands. The first five are the run file's own statuses."""

    PENDING = "pending"  # not started yet
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"  # asked to stop (Ctrl-C, the app's Stop)
    DIVERGED = "diverged"
    ERROR = "error"
    INTERRUPTED = "interrupted"  # its process or worker died; the run file holds what it flushed

    @property
    def done(self) -> bool:
        """Whether a new invocation of the sweep keeps this run (finished, or diverged: the same
        seed would diverge again) rather than training it again from the start."""
        return self in (RunStatus.FINISHED, RunStatus.DIVERGED)


@dataclass
class RunSummary:
    """A run's last validation point, in nats per sample (NaN before its first epoch)."""

    rate: float = math.nan
    distortion: float = math.nan
    elbo: float = math.nan
    active_units: int = -1
    epochs: int = 0
    step: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> RunSummary:
        d = dict(d or {})
        floats = {k: math.nan if d.get(k) is None else float(d[k]) for k in ("rate", "distortion", "elbo")}
        return cls(**floats, active_units=int(d.get("active_units", -1)),
                   epochs=int(d.get("epochs", 0)), step=int(d.get("step", 0)))


def summarize(run_path: str) -> RunSummary:
    """The summary of a run file (its last epoch row), or an empty summary if it has none."""
    from models.io.runfile import RunReader

    with RunReader(run_path) as reader:
        if reader.n_epochs == 0:
            return RunSummary(step=max(0, reader.weights_step))
        ep = reader.epochs(reader.n_epochs - 1)
        return RunSummary(
            rate=float(ep["val_rate"][-1]),
            distortion=float(ep["val_distortion"][-1]),
            elbo=float(ep["val_elbo"][-1]),
            active_units=int(ep["active_units"][-1]),
            epochs=int(ep["epoch"][-1]),
            step=int(ep["step"][-1]),
        )


@dataclass
class RunRecord:
    """One run in the manifest."""

    name: str
    file: str
    settings: dict[str, Any]
    status: RunStatus = RunStatus.PENDING
    message: str = ""
    summary: RunSummary = field(default_factory=RunSummary)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "file": self.file, "settings": self.settings,
                "status": self.status.value, "message": self.message, "summary": self.summary.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunRecord:
        return cls(name=str(d["name"]), file=str(d["file"]), settings=dict(d["settings"]),
                   status=RunStatus(d["status"]), message=str(d.get("message", "")),
                   summary=RunSummary.from_dict(d.get("summary")))


class Manifest:
    """A sweep's ``sweep.json``: its spec and a :class:`RunRecord` per run, saved atomically."""

    def __init__(self, folder: str, spec: SweepSpec, runs: list[RunRecord], created: float | None = None):
        self.folder = folder
        self.spec = spec
        self.runs = runs
        self.created = time.time() if created is None else created

    @property
    def path(self) -> str:
        return os.path.join(self.folder, MANIFEST)

    def run_path(self, record: RunRecord) -> str:
        return os.path.join(self.folder, record.file)

    def record(self, name: str) -> RunRecord:
        return next(r for r in self.runs if r.name == name)

    @classmethod
    def for_spec(cls, folder: str, spec: SweepSpec) -> Manifest:
        """The folder's manifest if it holds this sweep; a new one if it holds none. A manifest
        of another sweep raises ConfigError (a sweep's folder holds one sweep)."""
        path = os.path.join(folder, MANIFEST)
        if not os.path.exists(path):
            runs = [RunRecord(r.name, r.file, r.settings) for r in spec.runs]
            return cls(folder, spec, runs)
        found = cls.load(folder)
        if found.spec != spec:
            raise ConfigError(
                f"{folder}: holds another sweep ({found.spec.describe()}, or other training "
                "options); give it another --out"
            )
        return found

    @classmethod
    def load(cls, folder: str) -> Manifest:
        path = os.path.join(folder, MANIFEST)
        try:
            with open(path, encoding="utf-8") as fh:
                d = json.load(fh)
        except json.JSONDecodeError as exc:
            raise RunFileError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT_NAME:
            raise RunFileError(f"{path}: not a Latent Explorer sweep manifest")
        if d.get("format_version") != FORMAT_VERSION:
            raise RunFileError(f"{path}: sweep format version {d.get('format_version')} is not supported")
        try:
            spec = SweepSpec.from_dict(d["sweep"])
            runs = [RunRecord.from_dict(r) for r in d["runs"]]
        except LatentExplorerError as exc:
            raise RunFileError(f"{path}: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise RunFileError(f"{path}: damaged sweep manifest ({type(exc).__name__}: {exc})") from None
        return cls(folder, spec, runs, created=float(d.get("created", time.time())))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "created": self.created,
            "updated": time.time(),
            "sweep": self.spec.to_dict(),
            "runs": [r.to_dict() for r in self.runs],
        }

    def save(self) -> None:
        """Write ``sweep.json`` whole: a temporary file beside it, renamed over it."""
        data = (json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n").encode("utf-8")
        replace_from(write_temp_beside(self.path, data, fsync=True), self.path)


def prepare_folder(folder: str) -> str:
    """The sweep folder, created if missing; RunFileError if it names a file or cannot be made."""
    folder = os.fspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise RunFileError(f"{folder}: is a file, not a folder for the sweep's runs")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise RunFileError(f"{folder}: cannot create the sweep folder ({exc.strerror or exc})") from None
    return folder


@contextmanager
def lock_folder(folder: str) -> Iterator[None]:
    """Hold the folder's lock for the block; RunFileError at once if another driver holds it."""
    import fcntl

    fd = os.open(os.path.join(folder, LOCK), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFileError(f"{folder}: another sweep is running in this folder") from None
        yield
    finally:
        os.close(fd)
