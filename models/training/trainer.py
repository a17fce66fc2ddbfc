"""The trainer: minibatch epochs on the true ELBO's terms, with events, pause/stop and a run file.

Plain Python, no Qt: ``Trainer.run()`` blocks, so the GUI calls it from a worker thread and
adapts the events to signals. Each step trains on ``objectives.training_loss`` (KL warm-up and
free bits), but every number reported is the true bound's: ELBO = -(D + R) per sample, in nats.

Events, in order: a ``StepEvent`` every ``log_every`` steps and at each epoch's end (means over
the steps since the previous one), an
``EpochEvent`` per epoch (validation ELBO, D, R, KL per dimension and the latent diagnostics of
the validation encodings), and one ``FinishedEvent``. Callbacks run on the training thread; one
that raises ends the run with status "error" and its exception is re-raised from ``run()``.

Speed: in-memory data go to the device once (as uint8 when stored as bytes) and are indexed by a
``torch.randperm`` per epoch, with no per-sample loader. Metrics stay on the device between log
steps (one host sync per ``log_every`` steps), Adam is the fused kernel, and a non-finite loss
is caught on the device: it sets Adam's ``found_inf`` flag, so that step and every later one are
skipped until the next sync notices. A non-finite gradient (under a finite loss) makes the update
non-finite, so the next step's loss shows it; the weights are checked at each sync for the last
step's. Dynamic binarisation of bytes on the CPU draws its bits with numpy (``bernoulli_bytes``).
A diverged run is never saved over its last epoch-end checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from models.config import RunConfig
from models.training.events import Callback, EpochEvent, Event, FinishedEvent, StepEvent
from models.data import Dataset, load_dataset, split_indices
from models.errors import ConfigError, DataError, LatentExplorerError, RunFileError
from models.nn.objectives import elbo_terms, kl_weight, training_loss
from models.io.runfile import RunWriter
from models.nn.vae import VAE

log = logging.getLogger(__name__)

#: The validation set is binarised once with this seed (whatever the run's seed), so runs with
#: different seeds are scored on the same binary images. byo: its torch-free home is
#: models.data.evaluation (the ONNX diagnosis binarises by the same rule).
from models.data.evaluation import VAL_BINARIZE_SEED  # noqa: E402
#: The z draws of the validation distortion use this seed at every evaluation.
VAL_NOISE_SEED = 0
#: At most this many validation rows are held in memory and scored each epoch.
MAX_VAL_SAMPLES = 10_000
EVAL_BATCH = 1000
_READ_CHUNK = 8192  # rows converted at a time when moving a data set to the device
_BINARIZE_STREAM = 1  # with the run's seed, seeds the bits of dynamic binarisation on the CPU


def bernoulli_bytes(k: np.ndarray, bits: np.random.BitGenerator) -> np.ndarray:
    """Dynamic binarisation of uint8 pixels: a bool array x with P(x = 1) = k/255 * (1 - 2**-24).

    Each pixel gets a 24-bit uniform u = (b1, b2, b3), three random bytes, and x = [u < k * 65793],
    where k * 65793 = k * (2**24 - 1) / 255 is the byte triple (k, k, k); so u < (k, k, k) is
    compared lexicographically, byte by byte. The probability is k/255 to 24 bits, the resolution
    of float32 ``torch.rand``: exactly 0 for k = 0, and 1 - 2**-24 for k = 255.
    """
    n = k.size
    raw = bits.random_raw(-(-3 * n // 8)).view(np.uint8)[: 3 * n]
    b1, b2, b3 = raw.reshape(3, *k.shape)
    x = b3 < k
    x &= b2 == k
    x |= b2 < k
    x &= b1 == k
    x |= b1 < k
    return x


# =========================================================================== data preparation
def prepare_run(config: RunConfig) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """Load the data a configuration names and split it: ``(train Dataset, train_idx, val_x)``.

    The split is ``data.split_indices(dataset, val_fraction, seed)`` (MNIST: its test images);
    ``max_train_samples`` keeps the first rows of the training side; at most
    ``MAX_VAL_SAMPLES`` validation rows (a seeded subset) are read into ``val_x`` (float32).
    """
    dataset, train_idx, _val_idx, val_x = _prepare(config)
    return dataset, train_idx, val_x


def _prepare(config: RunConfig) -> tuple[Dataset, np.ndarray, np.ndarray, np.ndarray]:
    tc = config.train
    dataset = load_dataset(tc.data, tc.labels)
    train_idx, val_idx = split_indices(dataset, tc.val_fraction, tc.seed)
    if tc.max_train_samples is not None:
        if tc.max_train_samples < 1:
            raise ConfigError(f"max_train_samples must be at least 1, not {tc.max_train_samples}")
        train_idx = train_idx[: tc.max_train_samples]
    if len(val_idx) > MAX_VAL_SAMPLES:
        rng = np.random.default_rng(tc.seed)
        val_idx = np.sort(rng.choice(val_idx, size=MAX_VAL_SAMPLES, replace=False))
    return dataset, train_idx, val_idx, dataset.read(val_idx)


def _fit_config(config: RunConfig, dataset: Dataset) -> RunConfig:
    """The configuration with the model's data shape taken from the data set, and an HDF5 data
    spec made absolute (``/abs/FILE.h5:array``), so the run's data can be found again from
    another directory."""
    info = dataset.describe()
    if info.get("source") == "hdf5" and info.get("file") and info.get("array"):
        spec = f"{info['file']}:{info['array']}"
        if spec != config.train.data:
            config = dataclasses.replace(config, train=dataclasses.replace(config.train, data=spec))
    if tuple(config.model.data_shape) == tuple(dataset.sample_shape):
        return config
    model = dataclasses.replace(config.model, data_shape=tuple(dataset.sample_shape))
    return dataclasses.replace(config, model=model)


def default_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r}: use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda was asked for, but CUDA is not available on this machine")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {device!r}: use cpu or cuda")
    return dev


def _all_finite(tensors: list[torch.Tensor]) -> bool:
    """Whether every element of the tensors is finite (up to overflow of huge values, which
    counts as divergence too): one host sync, for the sum of their sums."""
    return bool(torch.isfinite(torch.stack([t.detach().sum() for t in tensors]).sum()))


# =========================================================================== the trainer
class Trainer:
    """Trains one VAE on one data set. ``run()`` blocks; ``pause/resume/stop`` are thread-safe.

    Parameters
    ----------
    config
        The run's configuration. ``config.model.data_shape`` must match the data's sample shape
        (``Trainer.from_config`` sets it from the data).
    train
        The data set; ``train_indices`` selects its training rows (default: all of them).
    val_x
        Validation rows, float32 ``[N, *sample_shape]`` scaled as ``Dataset.read`` scales them,
        or a Dataset whose rows are all used.
    device
        ``"cpu"``, ``"cuda"`` or ``None`` (CUDA when present).
    run_path, force
        Write the run to this HDF5 file (see ``models.io.runfile``); an existing file is replaced
        only with ``force``. ``None`` writes no file.
    callbacks
        Functions called with every event, on the training thread.
    val_indices
        Where ``val_x`` came from in the data set, recorded in the run file.
    """

    def __init__(
        self,
        config: RunConfig,
        train: Dataset,
        val_x: np.ndarray | Dataset | torch.Tensor,
        *,
        train_indices: np.ndarray | None = None,
        device: str | torch.device | None = None,
        run_path: str | os.PathLike | None = None,
        force: bool = False,
        callbacks: Iterable[Callback] = (),
        val_indices: np.ndarray | None = None,
    ) -> None:
        self.config = config
        self.train_data = train
        self.device = _resolve_device(device)
        self.run_path = None if run_path is None else os.fspath(run_path)
        self.force = force
        self.val_indices = None if val_indices is None else np.asarray(val_indices, np.int64)
        self._callbacks: list[Callback] = list(callbacks)
        mc, tc = config.model, config.train
        if math.prod(train.sample_shape) != mc.data_dim or (
            mc.arch == "conv" and tuple(train.sample_shape) != tuple(mc.data_shape)
        ):
            raise ConfigError(
                f"{train.name}: samples of shape {tuple(train.sample_shape)} do not fit a model "
                f"for data of shape {tuple(mc.data_shape)}"
            )
        if self.run_path is not None and os.path.exists(self.run_path) and not force:
            raise RunFileError(f"{self.run_path}: exists already (use --force to replace it)")

        idx = np.arange(len(train)) if train_indices is None else np.asarray(train_indices, np.int64)
        if len(idx) == 0:
            raise DataError(f"{train.name}: no training rows")
        self.train_indices = idx
        self.n_train = len(idx)
        self.steps_per_epoch = math.ceil(self.n_train / tc.batch_size)
        self.total_steps = self.steps_per_epoch * tc.epochs
        self.binary = mc.likelihood == "bernoulli"

        with torch.random.fork_rng(devices=[]):  # seeded initialisation, identical on any device
            torch.manual_seed(tc.seed)
            model = VAE(mc)
        self.model = model.to(self.device)
        self.model.train()
        self._params = [p for p in self.model.parameters() if p.requires_grad]
        # fused: one kernel for the whole update, and it honours found_inf (see _loop)
        self.optimizer = torch.optim.Adam(self._params, lr=tc.lr, fused=True)
        self._gen = torch.Generator(device=self.device)
        self._gen.manual_seed(tc.seed)
        # the random bits of dynamic binarisation on the CPU (see bernoulli_bytes)
        self._bits = np.random.PCG64([tc.seed, _BINARIZE_STREAM])

        self._val_raw = self._validation_rows(val_x)
        self.n_val = len(self._val_raw)
        if self.n_val == 0:
            raise DataError(f"{train.name}: the validation set is empty")

        self.step = 0
        self.epoch = 0
        self._stop = threading.Event()
        self._resume = threading.Event()
        self._resume.set()
        self._ran = False
        self._callback_error: BaseException | None = None
        self._train_dev: torch.Tensor | None = None
        self._val_dev: torch.Tensor | None = None
        if train.in_memory:  # now, so unusable data fail before a run file is made
            self._upload_train()

    @classmethod
    def from_config(cls, config: RunConfig, **kwargs: Any) -> Trainer:
        """Load and split the data the configuration names (``prepare_run``), take the model's
        data shape from it, and build the trainer; keyword arguments go to ``Trainer``."""
        dataset, train_idx, val_idx, val_x = _prepare(config)
        return cls(
            _fit_config(config, dataset),
            dataset,
            val_x,
            train_indices=train_idx,
            val_indices=val_idx,
            **kwargs,
        )

    # ------------------------------------------------------------------ control
    def add_callback(self, fn: Callback) -> None:
        self._callbacks.append(fn)

    def pause(self) -> None:
        """Block the loop before its next step (until resume() or stop())."""
        self._resume.clear()

    def resume(self) -> None:
        self._resume.set()

    def stop(self) -> None:
        """End the run after the current step, with status "stopped"; the file stays complete."""
        self._stop.set()
        self._resume.set()

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------------ data on the device
    def _validation_rows(self, val_x: np.ndarray | Dataset | torch.Tensor) -> np.ndarray:
        if isinstance(val_x, Dataset):
            arr = val_x.read(np.arange(len(val_x)))
        elif isinstance(val_x, torch.Tensor):
            arr = val_x.detach().cpu().numpy()
        else:
            arr = np.asarray(val_x)
        arr = arr.astype(np.float32, copy=False)
        if arr.ndim < 1 or (len(arr) and arr[0].size != self.config.model.data_dim):
            raise DataError(
                f"{self.train_data.name}: validation rows of shape {arr.shape[1:]} do not fit "
                f"the model's data shape {self.config.model.data_shape}"
            )
        arr = arr.reshape(len(arr), *self.config.model.data_shape)
        if not np.all(np.isfinite(arr)):
            raise DataError(f"{self.train_data.name}: the validation rows hold NaN or infinite values")
        if self.binary:
            self._check_unit_range(arr, "validation rows")
        return arr

    def _check_unit_range(self, x: np.ndarray | torch.Tensor, what: str) -> None:
        if isinstance(x, torch.Tensor):
            lo, hi = (float(v) for v in torch.aminmax(x))
        else:
            lo, hi = float(np.min(x)), float(np.max(x))
        if lo < 0.0 or hi > 1.0:
            raise DataError(
                f"{self.train_data.name}: the {what} range over [{lo:g}, {hi:g}], but the "
                "Bernoulli likelihood needs data in [0, 1] (use --likelihood gaussian)"
            )

    def _upload_train(self) -> None:
        """Put the training rows on the device once: uint8 bytes when stored as bytes, a binary
        uint8 mask for threshold binarisation, float32 otherwise."""
        data, idx, dev = self.train_data, self.train_indices, self.device
        as_bytes = data.scaling == "uint8/255"
        threshold = self.binary and self.config.train.binarize == "threshold"
        dtype = torch.uint8 if (as_bytes or threshold) else torch.float32
        out = torch.empty((len(idx), *self.config.model.data_shape), dtype=dtype, device=dev)
        for s in range(0, len(idx), _READ_CHUNK):
            x = data.read(idx[s : s + _READ_CHUNK])
            if self.binary and not as_bytes:
                self._check_unit_range(x, "training rows")
            x = x.reshape(len(x), *self.config.model.data_shape)
            if threshold:
                x = (x > 0.5).astype(np.uint8)
            elif as_bytes:
                x = np.rint(x * 255.0).astype(np.uint8)
            out[s : s + len(x)] = torch.from_numpy(x).to(dev)
        self._train_dev = out
        self._train_kind = "binary" if threshold else ("bytes" if as_bytes else "float")

    def _upload_val(self) -> None:
        x = self._val_raw
        if self.binary:
            if self.config.train.binarize == "threshold":
                x = (x > 0.5).astype(np.uint8)
            else:
                rng = np.random.default_rng(VAL_BINARIZE_SEED)
                x = (rng.random(x.shape, dtype=np.float32) < x).astype(np.uint8)
        self._val_dev = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)

    def _to_model_input(self, xb: torch.Tensor) -> torch.Tensor:
        """A stored training batch -> float32 model input (binarised for Bernoulli)."""
        kind = self._train_kind
        if kind == "binary":
            return xb.float()
        if self.binary and self.config.train.binarize == "dynamic":
            # x ~ Bernoulli(pixel), afresh each batch. For bytes k on the CPU: 24 random bits
            # a pixel, compared in numpy (half the time of torch's generator and its threaded
            # element-wise ops at this size). On CUDA: P(r < k) = k/255 with r uniform on
            # {0, ..., 254}, integer draws being several times faster than floats.
            if kind == "bytes":
                if xb.device.type == "cpu":
                    # bool -> float32 is ~4x slower in torch than uint8 -> float32: via uint8
                    x = bernoulli_bytes(xb.numpy(), self._bits).view(np.uint8)
                    return torch.from_numpy(x).float()
                r = torch.randint(0, 255, xb.shape, generator=self._gen, dtype=torch.uint8, device=xb.device)
                return (r < xb).float()
            return (torch.rand(xb.shape, generator=self._gen, device=xb.device) < xb).float()
        x = xb.float().div_(255.0) if kind == "bytes" else xb
        if self.binary:  # threshold
            return (x > 0.5).float()
        return x

    def _batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, int]]:
        bs = self.config.train.batch_size
        if self.train_data.in_memory:
            if self._train_dev is None:
                self._upload_train()
            assert self._train_dev is not None
            perm = torch.randperm(self.n_train, device=self.device, generator=self._gen)
            for s in range(0, self.n_train, bs):
                idx = perm[s : s + bs]
                yield self._to_model_input(self._train_dev.index_select(0, idx)), len(idx)
            return
        self._train_kind = "float"
        rng = np.random.default_rng([self.config.train.seed, epoch])
        shape = self.config.model.data_shape
        for xb in self.train_data.iter_batches(self.train_indices, bs, rng):
            if self.binary:
                self._check_unit_range(xb, "training rows")
            x = torch.from_numpy(np.ascontiguousarray(xb).reshape(len(xb), *shape))
            yield self._to_model_input(x.to(self.device, non_blocking=True)), len(xb)

    # ------------------------------------------------------------------ events
    def _emit(self, ev: Event) -> None:
        for fn in list(self._callbacks):
            try:
                fn(ev)
            except Exception as exc:  # not silent: logged, the run ends, run() re-raises it
                log.exception("a training callback raised; the run stops")
                if self._callback_error is None:
                    self._callback_error = exc
                self._stop.set()
                self._resume.set()
                if isinstance(ev, FinishedEvent):
                    continue

    # ------------------------------------------------------------------ running
    def run(self) -> FinishedEvent:
        """Train; block until finished, stopped or diverged. Returns the ``FinishedEvent``.

        Raises ``RunFileError`` if the run file cannot be created, ``DataError`` for data the
        model cannot use, and re-raises a callback's exception (after recording status "error").
        """
        if self._ran:
            raise RuntimeError("a Trainer runs once; make a new one for another run")
        self._ran = True
        writer: RunWriter | None = None
        if self.run_path is not None:
            info = self.train_data.describe()
            info["n_train"] = int(self.n_train)
            info["n_val"] = int(self.n_val)
            writer = RunWriter(
                self.run_path, self.config, self.model, info, self.val_indices, force=self.force
            )
        self._writer = writer
        try:
            status, message = self._loop()
            if self._callback_error is not None:
                exc = self._callback_error
                status, message = "error", f"a callback failed: {type(exc).__name__}: {exc}"
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt)
            status = "stopped" if interrupted else "error"
            message = "interrupted" if interrupted else _one_line(exc)
            self._finish(status, message)
            raise
        fin = self._finish(status, message)
        if self._callback_error is not None:
            raise self._callback_error
        return fin

    def _finish(self, status: str, message: str) -> FinishedEvent:
        w = self._writer
        if w is not None:
            try:
                # A diverged model's weights are the ones that produced the non-finite values
                # (the update before the bad step made them): the run file keeps its last
                # checkpoint, written at an epoch's end and validated, instead.
                if status != "diverged":
                    w.save_weights(self.model, step=self._good_step)
            except (RunFileError, OSError) as exc:  # non-finite weights are never written
                log.error("%s", exc)
            finally:
                try:
                    w.set_status(status, message)
                finally:
                    w.close()
        fin = FinishedEvent(status, message, self._epochs_done, self._good_step, self.run_path)
        self.finished = fin
        self._emit(fin)
        return fin

    def _loop(self) -> tuple[str, str]:
        cfg = self.config
        tc, obj = cfg.train, cfg.objective
        d = cfg.model.latent_dim
        dev = self.device
        self._epochs_done = 0
        self._good_step = 0
        self._saved_step: int | None = None  # the step of the last checkpoint written
        self._upload_val()
        # Device-side state: one row of stats per step [D, KL_1..KL_d], and the sticky
        # "found_inf" that makes fused Adam skip a step (and every later one) on the device.
        buf = torch.zeros((tc.log_every, d + 1), dtype=torch.float32, device=dev)
        found_inf = torch.zeros((), dtype=torch.float32, device=dev)
        self.optimizer.found_inf = found_inf  # type: ignore[attr-defined]
        k = 0  # rows of buf in use
        row_sizes: list[int] = []
        t_mark = time.perf_counter()
        excluded = 0.0  # seconds of validation and pauses since t_mark
        lr = float(tc.lr)
        epoch_sums = np.zeros(d + 1)
        epoch_count = 0.0

        def report() -> str | None:
            """Bring buf's rows to the host (the one sync), add them to the epoch's sums and emit
            a StepEvent for the finite ones. Returns a divergence message, or None."""
            nonlocal k, t_mark, excluded, epoch_sums, epoch_count
            if k == 0:
                return None
            rows = buf[:k].double().cpu().numpy()
            sizes = np.asarray(row_sizes, dtype=np.float64)
            first = self.step - k + 1  # the step of rows[0]
            k = 0
            row_sizes.clear()
            finite = np.isfinite(rows).all(1)
            n_good = len(rows) if finite.all() else int(np.argmin(finite))
            now = time.perf_counter()
            if n_good:
                good, w = rows[:n_good], sizes[:n_good]
                epoch_sums = epoch_sums + (good * w[:, None]).sum(0)
                epoch_count += w.sum()
                mean = (good * w[:, None]).sum(0) / w.sum()
                self._good_step = first + n_good - 1
                kl = mean[1 : d + 1]
                rate = float(kl.sum())
                ev = StepEvent(
                    step=self._good_step,
                    epoch=self.epoch,
                    elbo=-(float(mean[0]) + rate),
                    distortion=float(mean[0]),
                    rate=rate,
                    kl_per_dim=kl.copy(),
                    beta=float(kl_weight(self._good_step - 1, obj)),
                    lr=lr,
                    samples_per_s=float(sizes.sum() / max(now - t_mark - excluded, 1e-9)),
                )
                if self._writer is not None:
                    self._writer.log_step(ev)
                self._emit(ev)
            t_mark, excluded = now, 0.0
            if n_good < len(rows):
                return self._divergence_message(rows[n_good], first + n_good)
            # Every loss was finite. A non-finite gradient leaves a finite loss but makes Adam's
            # update non-finite, which the next step's loss shows; for the interval's last step
            # no next step has run yet, so look at the weights (once per interval, not per step).
            if not _all_finite(self._params):
                return (
                    f"training diverged at step {self.step} (epoch {self.epoch}): its gradients "
                    f"were not finite; {self._kept_and_hint(self.step)}"
                )
            return None

        for epoch in range(1, tc.epochs + 1):
            self.epoch = epoch
            t_epoch = time.perf_counter()
            epoch_sums, epoch_count = np.zeros(d + 1), 0.0
            for xb, nb in self._batches(epoch):
                if not self._resume.is_set():  # paused: wait between steps, stop still works
                    t_pause = time.perf_counter()
                    if self._writer is not None:
                        self._writer.flush()
                    while not self._resume.wait(0.1):
                        pass
                    excluded += time.perf_counter() - t_pause
                if self._stop.is_set():
                    break
                beta_t = kl_weight(self.step, obj)
                terms = elbo_terms(self.model, xb, generator=self._gen)
                loss = training_loss(terms, beta_t, obj.free_bits)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                with torch.no_grad():
                    row = buf[k]
                    torch.mean(terms.distortion.detach(), 0, keepdim=True, out=row[:1])
                    torch.mean(terms.kl_per_dim.detach(), 0, out=row[1:])
                    found_inf.logical_or_(~torch.isfinite(row).all())
                self.optimizer.step()
                self.step += 1
                row_sizes.append(nb)
                k += 1
                if self.step % tc.log_every == 0:
                    diverged = report()
                    if diverged is not None:
                        return "diverged", diverged
            diverged = report()  # the epoch's last steps: a row at every epoch's end
            if diverged is not None:
                return "diverged", diverged
            if self._stop.is_set():
                return "stopped", (
                    f"stopped at step {self._good_step} of {self.total_steps}, during epoch "
                    f"{epoch} ({self._epochs_done} of {tc.epochs} epochs complete)"
                )
            t_val = time.perf_counter()
            ev = self._evaluate(epoch, epoch_sums / max(epoch_count, 1.0), t_epoch)
            if isinstance(ev, str):  # the validation gave non-finite values
                return "diverged", ev
            if self._writer is not None:
                self._writer.save_weights(self.model, step=self._good_step)
                self._saved_step = self._good_step
                self._writer.log_epoch(ev)
            self._epochs_done = epoch
            self._emit(ev)
            excluded += time.perf_counter() - t_val
        if self._stop.is_set():
            return "stopped", f"stopped after {self._epochs_done} of {tc.epochs} epochs"
        return "finished", f"finished {tc.epochs} epochs ({self._good_step} steps)"

    def _divergence_message(self, row: np.ndarray, step: int) -> str:
        d = self.config.model.latent_dim
        if not np.isfinite(row[0]):
            what = f"the distortion was {row[0]}"
        else:
            dims = np.flatnonzero(~np.isfinite(row[1 : d + 1]))
            what = f"the KL (rate) was {row[1:d+1].sum()} (latent dims {', '.join(map(str, dims[:8]))})"
        return f"training diverged at step {step} (epoch {self.epoch}): {what}; {self._kept_and_hint(step)}"

    def _kept_and_hint(self, step: int) -> str:
        """What the run file keeps after a divergence at ``step``, and what to try."""
        if self._writer is None:
            kept = "no weights were saved (no run file)"
        elif self._saved_step is None:
            kept = "no weights were kept (no epoch had finished)"
        else:
            kept = f"kept the last checkpoint's weights, from step {self._saved_step}"
        hint = f"lower the learning rate (now {self.config.train.lr:g})"
        if self.config.model.likelihood == "gaussian" and self.config.model.obs_std is None:
            hint += " or fix --obs-std"
        scale = self._data_scale()
        if step <= 10 and scale > 1e6:  # the first steps: the data, not the optimiser, is the cause
            hint = f"rescale the data (its values reach {scale:.3g}), or {hint}"
        return f"{kept}. Try again and {hint}"

    def _data_scale(self) -> float:
        """The largest absolute value among the validation rows (a sample of the data)."""
        x = self._val_raw
        return float(np.max(np.abs(x))) if x.size else 0.0

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def _evaluate(self, epoch: int, train_means: np.ndarray, t_epoch: float) -> EpochEvent | str:
        """The epoch's EpochEvent, or a divergence message when the validation set's encodings
        or distortion are not finite (the weights are then not worth keeping)."""
        from models.diagnostics import latent_summary, verdict

        assert self._val_dev is not None
        d = self.config.model.latent_dim
        model = self.model
        model.eval()
        gen = torch.Generator(device=self.device)
        gen.manual_seed(VAL_NOISE_SEED)
        dist_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        mus, lvs = [], []
        for s in range(0, self.n_val, EVAL_BATCH):
            xb = self._val_dev[s : s + EVAL_BATCH].float()
            terms = elbo_terms(model, xb, generator=gen)
            dist_sum += terms.distortion.double().sum()
            mus.append(terms.mu)
            lvs.append(terms.logvar)
        model.train()
        mu = torch.cat(mus).double().cpu().numpy()
        lv = torch.cat(lvs).double().cpu().numpy()
        distortion = float(dist_sum) / self.n_val
        if not (math.isfinite(distortion) and np.isfinite(mu).all() and np.isfinite(lv).all()):
            what = "distortion was" if not math.isfinite(distortion) else "encodings were"
            return (
                f"training diverged at step {self._good_step} (epoch {epoch}): the validation "
                f"{what} not finite; {self._kept_and_hint(self._good_step)}"
            )
        summary = latent_summary(mu, lv, rng=0)
        rate = float(summary["rate"])
        tr = train_means
        tr_rate = float(tr[1 : d + 1].sum())
        return EpochEvent(
            epoch=epoch,
            step=self._good_step,
            train_elbo=-(float(tr[0]) + tr_rate),
            train_distortion=float(tr[0]),
            train_rate=tr_rate,
            val_elbo=-(distortion + rate),
            val_distortion=distortion,
            val_rate=rate,
            val_kl_per_dim=np.asarray(summary["kl_per_dim"], dtype=np.float64),
            activity_per_dim=np.asarray(summary["activity_per_dim"], dtype=np.float64),
            active_units=int(summary["active_units"]),
            mutual_info=float(summary["mutual_info"]),
            marginal_kl=float(summary["marginal_kl"]),
            seconds=time.perf_counter() - t_epoch,
            verdict=verdict(summary, self.config.objective, self.config.model),
            collapsed_dims=list(summary["collapsed_dims"]),
        )


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, LatentExplorerError):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
