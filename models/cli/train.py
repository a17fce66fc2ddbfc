"""``latent-explorer train``: train a VAE headless and write its run file.

Progress goes to stderr as a one-line bar when stderr is a terminal; each epoch prints a summary
line on stdout either way. Ctrl-C stops after the current step and leaves a complete run file with
status "stopped" (exit 130); a second Ctrl-C aborts at once. Exit 0 when training finished, 1
when it diverged (the run file keeps the last good weights), 2 with one line on stderr for bad
input (data file, existing --out without --force, out-of-range numbers).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Any, TextIO

from models.cli.args import seed_arg
from models.config import (
    ARCHS, BINARIZATIONS, DEFAULT_HIDDEN, DEVICES, LIKELIHOODS, ModelConfig, ObjectiveConfig,
    RunConfig, TrainConfig,
)
from models.training.events import EpochEvent, FinishedEvent, RunStatus, StepEvent


# --------------------------------------------------------------------------- argument types
def _int(minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below the minimum {minimum}")
        return value

    return parse


def _float(minimum: float, strict: bool) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (value > minimum if strict else value >= minimum) or value != value or value == float("inf"):
            bound = "greater than" if strict else "at least"
            raise argparse.ArgumentTypeError(f"{text} must be a finite number {bound} {minimum:g}")
        return value

    return parse


def _ramp(text: str) -> float:
    value = _float(0.0, True)(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text} must be a fraction of the cycle, at most 1")
    return value


#: The objective's defaults, shown by the options that set them.
_OBJ = ObjectiveConfig()


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.replace(" ", "").split(",") if s)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of widths, e.g. 512,256"
        ) from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: widths must be positive whole numbers")
    return sizes


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="train a VAE and write its run file (HDF5)",
        description="Train a variational autoencoder on MNIST, the generated shapes or an HDF5 "
        "array, and write a run file (config, per-step and per-epoch metrics, diagnostics, "
        "weights). The ELBO, distortion D and rate R shown are the true bound's terms in nats "
        "per sample, whatever beta, warm-up and free bits train on.",
    )
    add_run_arguments(p)  # shared with `sweep` (models/cli/sweep.py)
    g = p.add_argument_group("output")
    g.add_argument("--out", required=True, metavar="RUN.h5", help="the run file to write")
    g.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(handler=run)
    return p


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The data, model, objective and optimisation options of a run (``build_config`` reads them)."""
    g = p.add_argument_group("data")
    g.add_argument("--data", default="mnist", metavar="SPEC",
                   help="mnist, shapes, shapes:32, FILE.h5[:path/to/array], FILE.npy, "
                   "FILE.npz[:array] or an image folder (default: mnist)")
    g.add_argument("--labels", metavar="PATH", help="integer labels: an array of the same HDF5 "
                   "or .npz file, or a .npy file (image folders: their sub-folders)")
    g.add_argument("--max-samples", type=_int(1), metavar="N",
                   help="train on at most N rows (the first N of the training split); "
                   "the validation split is unchanged")
    g.add_argument("--val-fraction", type=_float(0.0, True), default=0.1, metavar="F",
                   help="fraction held out for validation when the data set has no predefined "
                   "split (default: 0.1; MNIST uses its 10,000 test images)")
    g.add_argument("--binarize", choices=BINARIZATIONS, default=BINARIZATIONS[0],
                   help="Bernoulli only: sample x ~ Bernoulli(pixel) per batch (dynamic, default) "
                   "or use pixel > 0.5 (threshold)")
    g = p.add_argument_group("model")
    g.add_argument("--arch", choices=ARCHS, default=ARCHS[0], help=f"default: {ARCHS[0]}")
    g.add_argument("--latent-dim", type=_int(1), default=10, metavar="N", help="default: 10")
    g.add_argument("--hidden", type=_hidden, metavar="W1,W2,...",
                   help="MLP hidden widths (default 512,256) or, for conv, the channels of the "
                   "stride-2 stages then the dense width (default 32,64,256)")
    g.add_argument("--likelihood", choices=LIKELIHOODS, default=LIKELIHOODS[0],
                   help="p(x|z): bernoulli (binarised data, default) or gaussian")
    g.add_argument("--obs-std", type=_float(0.0, True), metavar="S",
                   help="gaussian only: fixed standard deviation of p(x|z) (default: learned)")
    g = p.add_argument_group("objective")
    g.add_argument("--beta", type=_float(0.0, False), default=1.0, metavar="B",
                   help="weight of the KL term (default: 1, the true ELBO)")
    g.add_argument("--warmup", type=_int(0), default=0, metavar="STEPS",
                   help="warm the KL weight up linearly from 0 over this many steps (default: 0)")
    g.add_argument("--free-bits", type=_float(0.0, False), default=0.0, metavar="LAMBDA",
                   help="per-dimension KL floor in nats (default: 0)")
    g.add_argument("--kl-cycles", type=_int(0), default=_OBJ.kl_cycles, metavar="M",
                   help="cyclical KL annealing (Fu et al. 2019): M cycles over the run, the KL "
                   "weight ramping from 0 to beta in each; replaces --warmup (default: 0, off)")
    g.add_argument("--kl-cycle-ramp", type=_ramp, default=_OBJ.kl_cycle_ramp, metavar="R",
                   help="the fraction of each cycle over which the weight ramps up, 0 < R <= 1 "
                   f"(default: {_OBJ.kl_cycle_ramp:g})")
    g.add_argument("--aggressive", action="store_true",
                   help="aggressive encoder training (He et al. 2019): extra encoder updates "
                   "before each decoder update while the validation I(X;Z) climbs")
    g.add_argument("--aggressive-inner-steps", type=_int(1), default=_OBJ.aggressive_inner_steps,
                   metavar="N", help="the most encoder updates per decoder update in the "
                   f"aggressive phase (default: {_OBJ.aggressive_inner_steps})")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=_int(1), default=10, metavar="E", help="default: 10")
    g.add_argument("--batch-size", type=_int(1), default=128, metavar="N", help="default: 128")
    g.add_argument("--lr", type=_float(0.0, True), default=1e-3, metavar="LR",
                   help="Adam learning rate (default: 1e-3)")
    g.add_argument("--seed", type=seed_arg, default=0, metavar="S", help="0 to 2**63 - 1 (default: 0)")
    g.add_argument("--log-every", type=_int(1), default=10, metavar="N",
                   help="record a step row every N steps (default: 10)")
    g.add_argument("--device", choices=DEVICES, help="default: cuda when present, else cpu")


def build_config(args: argparse.Namespace, dataset: Any) -> RunConfig:
    """The run configuration the arguments describe, for the opened data set: its sample shape
    and its absolute spec (``Dataset.absolute_spec``)."""
    hidden = args.hidden if args.hidden is not None else DEFAULT_HIDDEN[args.arch]
    model = ModelConfig(
        arch=args.arch,
        data_shape=tuple(dataset.sample_shape),
        latent_dim=args.latent_dim,
        hidden=hidden,
        likelihood=args.likelihood,
        obs_std=args.obs_std if args.likelihood == "gaussian" else None,
    )
    objective = ObjectiveConfig(
        beta=args.beta,
        warmup_steps=args.warmup,
        free_bits=args.free_bits,
        kl_cycles=args.kl_cycles,
        kl_cycle_ramp=args.kl_cycle_ramp,
        aggressive=args.aggressive,
        aggressive_inner_steps=args.aggressive_inner_steps,
    )
    train = TrainConfig(
        data=dataset.absolute_spec,
        labels=args.labels,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        val_fraction=args.val_fraction,
        binarize=args.binarize,
        log_every=args.log_every,
        max_train_samples=args.max_samples,
    )
    return RunConfig(model=model, objective=objective, train=train)


# --------------------------------------------------------------------------- progress display
def _duration(seconds: float) -> str:
    if not seconds == seconds or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class Progress:
    """Prints training progress: a live bar on a terminal's stderr, epoch lines on stdout."""

    def __init__(self, trainer: Any, out: TextIO, err: TextIO) -> None:
        self.trainer = trainer
        self.out = out
        self.err = err
        self.live = err.isatty()
        self.start = time.perf_counter()
        self.epochs = trainer.config.train.epochs
        self.last_epoch: Any = None
        self._bar_shown = False

    def _clear_bar(self) -> None:
        if self._bar_shown:
            self.err.write("\r\x1b[K")
            self.err.flush()
            self._bar_shown = False

    def __call__(self, ev: Any) -> None:
        if isinstance(ev, StepEvent):
            if not self.live:
                return
            total = self.trainer.total_steps
            elapsed = time.perf_counter() - self.start
            eta = elapsed / ev.step * (total - ev.step) if ev.step else float("nan")
            width = 20
            filled = int(width * ev.step / total) if total else width
            bar = "#" * filled + "-" * (width - filled)
            self.err.write(
                f"\r\x1b[Kepoch {ev.epoch}/{self.epochs} [{bar}] step {ev.step}/{total}  "
                f"ELBO {ev.elbo:.2f}  D {ev.distortion:.2f}  R {ev.rate:.2f}  "
                f"{ev.samples_per_s:,.0f} samples/s  ETA {_duration(eta)}"
            )
            self.err.flush()
            self._bar_shown = True
        elif isinstance(ev, EpochEvent):
            self._clear_bar()
            self.last_epoch = ev
            d = len(ev.activity_per_dim)
            print(
                f"epoch {ev.epoch}/{self.epochs}  step {ev.step}  "
                f"train ELBO {ev.train_elbo:.2f}  val ELBO {ev.val_elbo:.2f} "
                f"(D {ev.val_distortion:.2f}, R {ev.val_rate:.2f})  "
                f"active {ev.active_units}/{d}  I(X;Z) {ev.mutual_info:.2f}"
                f"{' (at its ceiling log N: a lower estimate)' if ev.mi_saturated else ''}  "
                f"{ev.seconds:.1f}s",
                file=self.out,
                flush=True,
            )
        elif isinstance(ev, FinishedEvent):
            self._clear_bar()


# --------------------------------------------------------------------------- the command
def run(args: argparse.Namespace) -> int:
    from models.data import load_dataset
    from models.io.run_callback import check_not_data_file, start_run
    from models.io.run_writer import check_run_target

    out = os.fspath(args.out)
    check_not_data_file(out, args.data)  # before the data are read (start_run checks again)
    check_run_target(out, args.force)
    dataset = load_dataset(args.data, args.labels)  # the one visit: the config is built from it
    trainer = start_run(build_config(args, dataset), out, force=args.force, device=args.device,
                        dataset=dataset)
    cfg = trainer.config
    print(
        f"training a {cfg.model.arch} VAE (latent {cfg.model.latent_dim}, {cfg.model.likelihood}) "
        f"on {trainer.train_data.name}: {trainer.n_train} training / {trainer.n_val} validation "
        f"rows, {trainer.total_steps} steps on {trainer.device.type}",
        flush=True,
    )
    progress = Progress(trainer, sys.stdout, sys.stderr)
    trainer.add_callback(progress)

    def on_sigint(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C aborts
        progress._clear_bar()
        print("stopping after this step (Ctrl-C again to abort)", file=sys.stderr, flush=True)
        trainer.stop()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        fin = trainer.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    last = progress.last_epoch
    if fin.status == RunStatus.FINISHED:
        if last is not None:
            print(f"verdict: {last.verdict}")
        elbo = f"; val ELBO {last.val_elbo:.2f} nats" if last is not None else ""
        print(f"finished {fin.epochs_done} epochs, {fin.step} steps{elbo}; wrote {out}")
        return 0
    if fin.status == RunStatus.STOPPED:
        print(
            f"latent-explorer train: {fin.message}; {out} is complete (status stopped)",
            file=sys.stderr,
        )
        return 130
    print(f"latent-explorer train: {fin.message}; wrote {out} (status {fin.status})", file=sys.stderr)
    return 1
