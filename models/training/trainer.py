"""The trainer: minibatch epochs on the true ELBO's terms, reported as events, with pause and stop.

Plain Python, no Qt, no files: ``Trainer.run()`` blocks (the app calls it from a worker thread)
and emits events (``models.training.events``) to its callbacks, on the training thread. A run
file is one such callback (``models.io.run_callback.RunFileCallback``), as is the CLI's progress
printer. Each step trains on ``objectives.training_loss`` (KL schedule and free bits; with
``aggressive``, after an encoder inner loop: ``models.training.aggressive``), but every
number reported is the true bound's: ELBO = -(D + R) per sample, in nats. A callback that raises
ends the run with status "error" and its exception is re-raised from ``run()``.

Speed: the data reach the device once (``batches``); metrics stay on the device between log steps
(``meter``: one sync per ``log_every`` steps); fused Adam skips every step after a non-finite loss
(its ``found_inf`` flag) until the next sync notices; a non-finite gradient shows in the next
loss, or in the weights checked at each sync. Only finite, validated weights are offered as
checkpoints, and a diverged run offers none at its end: a listener keeps its last good epoch.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from models.config import RunConfig
from models.data import Dataset, load_dataset, run_split
from models.errors import ConfigError, DataError, error_line, LatentExplorerError
from models.diagnostics.summary import data_spread
from models.latent import discrete
from models.nn.objectives import elbo_terms, kl_weight, training_loss
from models.nn.vae import VAE
from models.training.aggressive import AggressivePhase
from models.training.batches import TrainingBatches, validation_array, validation_tensor
from models.training.devices import all_finite, resolve_device
from models.training.events import (
    Callback, CheckpointEvent, EpochEvent, Event, FinishedEvent, PauseEvent, RunStatus, StartEvent,
    StepEvent,
)
from models.training.meter import StepMeter
from models.training.validation import epoch_event, score_validation

log = logging.getLogger(__name__)



def prepare_run(config: RunConfig) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """Load the data a configuration names and split it: ``(train Dataset, train_idx, val_x)``
    (``models.data.run_split``; ``val_x`` the validation rows, float32)."""
    dataset = load_dataset(config.train.data, config.train.labels)
    train_idx, val_idx = run_split(dataset, config.train)
    return dataset, train_idx, dataset.read(val_idx)


class Trainer:
    """Trains one VAE on one data set. ``run()`` blocks; ``pause/resume/stop`` are thread-safe.

    Parameters
    ----------
    config
        The run's configuration; ``config.model.data_shape`` must fit the data's sample shape
        (``Trainer.for_dataset`` builds it from the data).
    train
        The data set; ``train_indices`` selects its training rows (default: all of them).
    val_x
        Validation rows, float32 ``[N, *sample_shape]`` scaled as ``Dataset.read`` scales them,
        or a Dataset whose rows are all used; ``val_indices`` says where they came from.
    device
        ``"cpu"``, ``"cuda"`` or ``None`` (CUDA when present).
    callbacks
        Functions called with every event, on the training thread, in order.
    """

    def __init__(
        self,
        config: RunConfig,
        train: Dataset,
        val_x: np.ndarray | Dataset | torch.Tensor,
        *,
        train_indices: np.ndarray | None = None,
        device: str | torch.device | None = None,
        callbacks: Iterable[Callback] = (),
        val_indices: np.ndarray | None = None,
    ) -> None:
        mc, tc = config.model, config.train
        if math.prod(train.sample_shape) != mc.data_dim or (
            mc.arch == "conv" and tuple(train.sample_shape) != tuple(mc.data_shape)
        ):
            raise ConfigError(
                f"{train.name}: samples of shape {tuple(train.sample_shape)} do not fit a model "
                f"for data of shape {tuple(mc.data_shape)}"
            )
        idx = np.arange(len(train)) if train_indices is None else np.asarray(train_indices, np.int64)
        if len(idx) == 0:
            raise DataError(f"{train.name}: no training rows")
        self.config = config
        self.train_data = train
        self.device = resolve_device(device)
        self.val_indices = None if val_indices is None else np.asarray(val_indices, np.int64)
        self._callbacks: list[Callback] = list(callbacks)
        self.train_indices = idx
        self.n_train = len(idx)
        self.steps_per_epoch = math.ceil(self.n_train / tc.batch_size)
        self.total_steps = self.steps_per_epoch * tc.epochs
        # 8-bit data under a Gaussian: trained on (k + u) / 256, reported as discrete bounds
        self.dequantize = discrete.needs_dequantization(mc.likelihood, train.scaling)
        self.likelihood_kind = discrete.likelihood_kind(mc.likelihood, self.dequantize)
        self._bin_nats = discrete.bin_log_volume(mc.data_dim, self.dequantize)
        self._val_elbos: list[float] = []  # the verdict's evidence of convergence

        with torch.random.fork_rng(devices=[]):  # seeded initialisation, identical on any device
            torch.manual_seed(tc.seed)
            model = VAE(mc)
        self.model = model.to(self.device)
        self.model.train()
        self._params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self._params, lr=tc.lr, fused=True)  # one kernel
        self._gen = torch.Generator(device=self.device)
        self._gen.manual_seed(tc.seed)

        self._val_raw = validation_array(val_x, config, train.name)
        self.n_val = len(self._val_raw)
        if self.n_val == 0:
            raise DataError(f"{train.name}: the validation set is empty")
        self._val_spread = data_spread(self._val_raw)
        # in-memory rows reach the device now, so unusable data fail before a listener starts
        self.batches = TrainingBatches(train, idx, config, self.device, self._gen, self.dequantize)
        self.meter = StepMeter(mc.latent_dim, tc.log_every, self.device)
        self.optimizer.found_inf = self.meter.found_inf  # type: ignore[attr-defined]
        self._val_dev: torch.Tensor | None = None  # moved to the device when the run starts
        #: He et al.'s aggressive phase while it lasts (then None); its decoder step updates the
        #: decoder's side only (backward's inputs), a plain step everything (inputs None)
        self.aggressive = AggressivePhase(
            self.model, self.optimizer, self.batches, config.objective, self.total_steps, self._gen
        ) if config.objective.aggressive else None
        self._backward_inputs = self.aggressive.decoder_params if self.aggressive else None

        self.step = 0
        self.epoch = 0
        self.finished: FinishedEvent | None = None
        self._epochs_done = 0
        self._good_step = 0  # the last step whose statistics were finite
        self._checkpoint_step: int | None = None  # the step of the last epoch-end checkpoint
        self._stop = threading.Event()
        self._resume = threading.Event()
        self._resume.set()
        self._ran = False
        self._callback_error: BaseException | None = None

    @classmethod
    def for_dataset(cls, config: RunConfig, dataset: Dataset, **kwargs: Any) -> Trainer:
        """Split an opened data set for the run (``models.data.run_split``) and build the
        trainer, the configuration naming the data set as it was opened (its absolute spec and
        sample shape: ``RunConfig.for_data``); keyword arguments go to ``Trainer``."""
        train_idx, val_idx = run_split(dataset, config.train)
        return cls(
            config.for_data(dataset.absolute_spec, dataset.sample_shape),
            dataset,
            dataset.read(val_idx),
            train_indices=train_idx,
            val_indices=val_idx,
            **kwargs,
        )

    @classmethod
    def from_config(cls, config: RunConfig, **kwargs: Any) -> Trainer:
        """Open the data the configuration names and build the trainer (``for_dataset``)."""
        return cls.for_dataset(config, load_dataset(config.train.data, config.train.labels), **kwargs)

    # ------------------------------------------------------------------ control
    def add_callback(self, fn: Callback) -> None:
        self._callbacks.append(fn)

    def pause(self) -> None:
        """Block the loop before its next step (until resume() or stop())."""
        self._resume.clear()

    def resume(self) -> None:
        self._resume.set()

    def stop(self) -> None:
        """End the run after the current step, with status "stopped"."""
        self._stop.set()
        self._resume.set()

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------------ events
    def _emit(self, ev: Event) -> None:
        for fn in list(self._callbacks):
            try:
                fn(ev)
            except Exception as exc:  # not silent: the run ends, run() re-raises it
                if isinstance(exc, LatentExplorerError):  # the user's to read, in one line
                    log.debug("a training callback refused: %s", exc)
                else:
                    log.exception("a training callback raised; the run stops")
                if self._callback_error is None:
                    self._callback_error = exc
                self._stop.set()
                self._resume.set()

    def _weights(self) -> dict[str, np.ndarray]:
        """A copy of the weights, keyed by ``state_dict`` names (events cross threads)."""
        return {k: t.detach().cpu().numpy().copy() for k, t in self.model.state_dict().items()}

    def _finite_weights(self) -> bool:
        try:
            return all_finite(self._params)
        except Exception:  # the device failed (the run is ending with its error): offer none
            log.exception("the weights could not be checked at the end of the run")
            return False

    # ------------------------------------------------------------------ running
    def run(self) -> FinishedEvent:
        """Train; block until finished, stopped or diverged. Returns the ``FinishedEvent``.

        Raises what a callback raised on the ``StartEvent`` (e.g. ``RunFileError``: the run file
        cannot be made) before training, and re-raises a later callback's exception after the
        run ended with status "error".
        """
        if self._ran:
            raise RuntimeError("a Trainer runs once; make a new one for another run")
        self._ran = True
        info = self.train_data.describe()
        info.update(n_train=int(self.n_train), n_val=int(self.n_val), likelihood_kind=self.likelihood_kind.value)
        self._emit(StartEvent(self.config, info, self.val_indices, self._weights(), self.total_steps))
        if self._callback_error is not None:  # a listener could not start: nothing was trained
            raise self._callback_error
        try:
            status, message = self._loop()
            if self._callback_error is not None:
                exc = self._callback_error
                status, message = RunStatus.ERROR, f"a callback failed: {type(exc).__name__}: {exc}"
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt)
            self._finish(
                RunStatus.STOPPED if interrupted else RunStatus.ERROR,
                "interrupted" if interrupted else error_line(exc),
            )
            raise
        fin = self._finish(status, message)
        if self._callback_error is not None:
            raise self._callback_error
        return fin

    def _finish(self, status: RunStatus, message: str) -> FinishedEvent:
        # A diverged model's weights are the ones that produced the non-finite values: the
        # listeners keep the last epoch-end checkpoint instead. Non-finite weights are never sent.
        if status != RunStatus.DIVERGED and self._finite_weights():
            self._emit(CheckpointEvent(self._good_step, self.epoch, self._weights(), final=True))
        fin = FinishedEvent(status, message, self._epochs_done, self._good_step)
        self.finished = fin
        self._emit(fin)
        return fin

    def _loop(self) -> tuple[RunStatus, str]:
        """The epochs: steps with a report every ``log_every``, then a validation per epoch."""
        tc = self.config.train
        self._val_dev = validation_tensor(self._val_raw, self.config, self.device, self.dequantize)
        self.meter.start_interval()  # the listeners' start (a file, a window) is not training
        for epoch in range(1, tc.epochs + 1):
            self.epoch, t_epoch = epoch, time.perf_counter()
            self.meter.new_epoch()
            for xb, rows in self.batches.epoch(epoch):
                self._wait_while_paused()
                if self._stop.is_set():
                    break
                self._train_step(xb, rows)
                if self.step % tc.log_every == 0 and (diverged := self._report()):
                    return RunStatus.DIVERGED, diverged
            if diverged := self._report():  # the epoch's last steps: a row at every epoch's end
                return RunStatus.DIVERGED, diverged
            if self._stop.is_set():
                return RunStatus.STOPPED, (
                    f"stopped at step {self._good_step} of {self.total_steps}, during epoch "
                    f"{epoch} ({self._epochs_done} of {tc.epochs} epochs complete)"
                )
            t_val = time.perf_counter()
            ev = self._validate(epoch, t_epoch)
            if isinstance(ev, str):  # the validation gave non-finite values
                return RunStatus.DIVERGED, ev
            self._checkpoint_step = self._good_step
            self._emit(CheckpointEvent(self._good_step, epoch, self._weights()))
            self._epochs_done = epoch
            self._emit(ev)
            if self.aggressive and not self.aggressive.keep_going(ev.mutual_info, epoch):
                self.aggressive = self._backward_inputs = None
            self.meter.exclude(time.perf_counter() - t_val)
        if self._stop.is_set():
            return RunStatus.STOPPED, f"stopped after {self._epochs_done} of {tc.epochs} epochs"
        return RunStatus.FINISHED, f"finished {tc.epochs} epochs ({self._good_step} steps)"

    def _wait_while_paused(self) -> None:
        """Paused: tell the listeners, then wait between steps (stop still works)."""
        if self._resume.is_set():
            return
        t_pause = time.perf_counter()
        self._emit(PauseEvent(self.step, self.epoch))
        while not self._resume.wait(0.1):
            pass
        self.meter.exclude(time.perf_counter() - t_pause)

    def _train_step(self, xb: torch.Tensor, rows: int) -> None:
        obj = self.config.objective
        if self.aggressive is not None:
            self.aggressive.train_encoder(xb, self.step)
        terms = elbo_terms(self.model, xb, generator=self._gen)
        loss = training_loss(terms, kl_weight(self.step, obj, self.total_steps), obj.free_bits)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward(inputs=self._backward_inputs)
        self.meter.record(terms.distortion, terms.kl_per_dim, rows)
        self.optimizer.step()
        self.step += 1

    def _report(self) -> str | None:
        """Bring the step rows to the host (the one sync) and emit a StepEvent for the finite
        ones. Returns a divergence message, or None."""
        iv = self.meter.drain(self.step)
        if iv is None:
            return None
        d = self.config.model.latent_dim
        if iv.mean is not None:
            self._good_step = iv.last_step
            kl = iv.mean[1 : d + 1]
            rate = float(kl.sum())
            dist = float(iv.mean[0]) + self._bin_nats
            self._emit(StepEvent(
                step=self._good_step,
                epoch=self.epoch,
                elbo=-(dist + rate),
                distortion=dist,
                rate=rate,
                kl_per_dim=kl.copy(),
                beta=float(kl_weight(self._good_step - 1, self.config.objective, self.total_steps)),
                lr=float(self.config.train.lr),
                samples_per_s=iv.samples / iv.seconds,
            ))
        if iv.bad_row is not None:
            row = iv.bad_row
            if not np.isfinite(row[0]):
                what = f"the distortion was {row[0]}"
            else:
                dims = np.flatnonzero(~np.isfinite(row[1 : d + 1]))
                what = f"the KL (rate) was {row[1:d+1].sum()} (latent dims {', '.join(map(str, dims[:8]))})"
            return self._diverged(iv.bad_step, self.epoch, what)
        # Every loss was finite. A non-finite gradient leaves a finite loss but makes Adam's
        # update non-finite, which the next step's loss shows; for the interval's last step
        # no next step has run yet, so look at the weights (once per interval, not per step).
        if not all_finite(self._params):
            return self._diverged(self.step, self.epoch, "its gradients were not finite")
        self.meter.start_interval()  # logging, listeners and checks are not training time
        return None

    def _diverged(self, step: int, epoch: int, what: str) -> str:
        """The divergence message: where, what, what the checkpoints keep, and what to try."""
        if self._checkpoint_step is None:
            kept = "no weights were kept (no epoch had finished)"
        else:
            kept = f"kept the last checkpoint's weights, from step {self._checkpoint_step}"
        hint = f"lower the learning rate (now {self.config.train.lr:g})"
        if self.config.model.likelihood == "gaussian" and self.config.model.obs_std is None:
            hint += " or fix --obs-std"
        scale = float(np.max(np.abs(self._val_raw))) if self._val_raw.size else 0.0
        if step <= 10 and scale > 1e6:  # the first steps: the data, not the optimiser, is the cause
            hint = f"rescale the data (its values reach {scale:.3g}), or {hint}"
        return f"training diverged at step {step} (epoch {epoch}): {what}; {kept}. Try again and {hint}"

    # ------------------------------------------------------------------ validation
    def _validate(self, epoch: int, t_epoch: float) -> EpochEvent | str:
        """The epoch's EpochEvent, or a divergence message when the validation set's encodings
        or distortion are not finite (the weights are then not worth keeping)."""
        from models.diagnostics import latent_summary, verdict

        assert self._val_dev is not None
        dist, mu, lv = score_validation(self.model, self._val_dev, self.device)
        distortion = dist + self._bin_nats
        if not (math.isfinite(distortion) and np.isfinite(mu).all() and np.isfinite(lv).all()):
            what = "distortion was" if not math.isfinite(distortion) else "encodings were"
            return self._diverged(self._good_step, epoch, f"the validation {what} not finite")
        summary = latent_summary(mu, lv, rng=0)
        self._val_elbos.append(-(distortion + float(summary["rate"])))
        summary.update(val_elbos=list(self._val_elbos), data_std=self._val_spread)
        return epoch_event(
            epoch, self._good_step, self.meter.epoch_means(), self._bin_nats, distortion, summary,
            verdict(summary, self.config.objective, self.config.model), self.likelihood_kind,
            time.perf_counter() - t_epoch,
        )
