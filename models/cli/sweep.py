"""``latent-explorer sweep``: train runs that differ in one or two settings, several at once.

``--beta``, ``--latent-dim``, ``--free-bits``, ``--warmup`` and ``--seeds`` take one value or a
comma-separated list; each setting given more than one value varies (at most two), and with
none, beta varies over 0.25, 1, 4, 16. Every other option is ``train``'s. Each run is a run file
in ``--out`` with the manifest ``sweep.json``; running the command again on the same folder keeps
the finished runs and trains the others again. Progress goes to stderr (one line per run, redrawn
on a terminal; a line per epoch and per end otherwise); the final table (or, with ``--json``, one
JSON object) to stdout. Ctrl-C stops every run within one step, each file complete (exit 130);
exit 0 when every run finished, 1 when one diverged, failed or was interrupted, 2 with one line
on stderr for bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from typing import Any, TextIO

from models.cli.args import seed_arg
from models.cli.train import _float, _int, add_run_arguments, build_config
from models.errors import ConfigError

#: CLI option -> (sweep setting, argparse type of one value, the value when the option is absent).
LIST_OPTIONS = {
    "--beta": ("beta", _float(0.0, False), 1.0),
    "--latent-dim": ("latent_dim", _int(1), 10),
    "--free-bits": ("free_bits", _float(0.0, False), 0.0),
    "--warmup": ("warmup", _int(0), 0),
    "--seeds": ("seed", seed_arg, 0),
}


def _values(one: Any) -> Any:
    def parse(text: str) -> tuple:
        items = [s.strip() for s in text.split(",")]
        if not any(items):
            raise argparse.ArgumentTypeError("the list of values is empty")
        if not all(items):
            raise argparse.ArgumentTypeError(f"{text!r} has an empty item")
        return tuple(one(s) for s in items)

    return parse


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "sweep",
        help="train runs that differ in beta (or latent size, free bits, warm-up, seed)",
        description="Train a set of runs that differ in one or two settings (by default beta "
        "0.25, 1, 4, 16: a rate-distortion frontier), several at once in child processes or on "
        "Ray, each into a run file in --out with the manifest sweep.json. Running it again on "
        "the same folder keeps the finished runs and trains the rest.",
        conflict_handler="resolve",  # the settings below replace train's single-valued ones
    )
    add_run_arguments(p)
    g = p.add_argument_group("the settings that vary (one value, or V1,V2,...)")
    for flag, (name, one, default) in LIST_OPTIONS.items():
        g.add_argument(flag, type=_values(one), metavar="V[,V...]", dest=name,
                       help=f"{name} (default: {default}{' or 0.25,1,4,16' if name == 'beta' else ''})")
    g.add_argument("--seed", type=_values(seed_arg), metavar="S[,S...]", dest="seed", help="same as --seeds")
    g = p.add_argument_group("running")
    g.add_argument("--workers", type=_int(1), metavar="N",
                   help="runs at once (default: as many as the runs, at most the cores; on Ray "
                   "as many as the runs)")
    g.add_argument("--threads", type=_int(1), metavar="N",
                   help="torch threads per run (default: the cores divided among the workers)")
    g.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="child processes of this one (local, default) or Ray tasks (ray)")
    g.add_argument("--ray-address", metavar="ADDR",
                   help="with --backend ray: auto or ray://HOST:PORT (default: a new local instance)")
    g = p.add_argument_group("output")
    g.add_argument("--out", default="sweep", metavar="DIR", help="the sweep's folder (default: sweep)")
    g.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    p.set_defaults(handler=run)
    return p


def plan(args: argparse.Namespace, dataset: Any):  # noqa: ANN201  (a SweepSpec; imported late)
    """The sweep the arguments describe, on the opened data set: its base configuration (the
    data set's sample shape and absolute spec) and the settings that vary."""
    from models.sweep.spec import DEFAULT_BETAS, SweepSpec

    given = {name: getattr(args, name) for name, _, _ in LIST_OPTIONS.values() if getattr(args, name)}
    varied = {n: v for n, v in given.items() if len(v) > 1} or {"beta": given.get("beta", DEFAULT_BETAS)}
    # one value of each setting for the base configuration (a varied one: any, each run sets its own)
    single = {n: (varied.get(n) or given.get(n) or (default,))[0] for n, _, default in LIST_OPTIONS.values()}
    return SweepSpec(build_config(argparse.Namespace(**{**vars(args), **single}), dataset), varied)


def make_backend(args: argparse.Namespace, n_runs: int):  # noqa: ANN201  (a Backend)
    import os

    if args.backend == "ray":  # Ray places the runs by the CPUs each asks for
        from models.sweep.ray_backend import RayBackend

        return RayBackend(args.workers or n_runs, address=args.ray_address, threads=args.threads,
                          device=args.device)
    workers = args.workers or max(1, min(n_runs, os.cpu_count() or 1))
    from models.sweep.local import LocalBackend

    return LocalBackend(workers, threads=args.threads, device=args.device)


# --------------------------------------------------------------------------- progress display
class Progress:
    """The sweep's progress on stderr: a line per run that trains (runs kept from an earlier
    invocation show none), redrawn in place on a terminal; else a line per epoch and per end."""

    def __init__(self, epochs: int, err: TextIO) -> None:
        self.epochs = epochs
        self.err = err
        self.live = err.isatty()
        self.lines: dict[str, str] = {}
        self._drawn = 0
        self._last = 0.0

    def __call__(self, record: Any, ev: Any) -> None:
        from models.training import EpochEvent, FinishedEvent, StepEvent

        if isinstance(ev, StepEvent):
            text = (f"epoch {ev.epoch}/{self.epochs} step {ev.step}  ELBO {ev.elbo:.2f}  "
                    f"D {ev.distortion:.2f}  R {ev.rate:.2f}")
        elif isinstance(ev, EpochEvent):
            text = (f"epoch {ev.epoch}/{self.epochs} done  val ELBO {ev.val_elbo:.2f} "
                    f"(D {ev.val_distortion:.2f}, R {ev.val_rate:.2f})  active {ev.active_units}")
        elif isinstance(ev, FinishedEvent):
            text = f"{ev.status}: {ev.message}"
        else:
            return
        self.lines[record.name] = f"{record.name}: {text}"
        if self.live:
            now = time.monotonic()
            if isinstance(ev, StepEvent) and now - self._last < 0.1:
                return
            self._last = now
            self.draw()
        elif not isinstance(ev, StepEvent):
            print(self.lines[record.name], file=self.err, flush=True)

    def restart_block(self) -> None:
        self._drawn = 0

    def draw(self) -> None:
        up = f"\x1b[{self._drawn}A" if self._drawn else ""
        body = "".join(f"\r\x1b[K{line[:200]}\n" for line in self.lines.values())
        self.err.write(up + body)
        self.err.flush()
        self._drawn = len(self.lines)


# --------------------------------------------------------------------------- the result
def result(folder: str, spec: Any, records: list) -> dict[str, Any]:
    """The sweep's outcome as a JSON-able object (the --json output): NaN is null."""
    runs = []
    for r in records:
        s = r.summary.to_dict()
        runs.append({"name": r.name, "file": r.file, "settings": r.settings, "status": r.status.value,
                     "message": r.message, **s})
    return {"folder": folder, "varied": {k: list(v) for k, v in spec.varied.items()}, "runs": runs}


def table(spec: Any, records: list) -> str:
    """The final table: the varied settings, R, D, ELBO, active units, status."""
    from models.sweep.spec import format_value

    def num(v: float) -> str:
        return "-" if not math.isfinite(v) else f"{v:.2f}"

    head = [*spec.varied, "R", "D", "ELBO", "active", "status"]
    rows = [[*(format_value(r.settings[k]) for k in spec.varied), num(r.summary.rate),
             num(r.summary.distortion), num(r.summary.elbo),
             "-" if r.summary.active_units < 0 else str(r.summary.active_units), r.status.value]
            for r in records]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    return "\n".join("  ".join(str(x).rjust(w) for x, w in zip(line, widths)) for line in [head, *rows])


# --------------------------------------------------------------------------- the command
def run(args: argparse.Namespace) -> int:
    from models.data import load_dataset
    from models.sweep.manifest import RunStatus
    from models.sweep.runner import Sweep

    if args.ray_address and args.backend != "ray":
        raise ConfigError("--ray-address needs --backend ray")
    # opened once here (a few rows): bad data are one line now, not N failed runs
    spec = plan(args, load_dataset(args.data, args.labels, max_samples=10))
    sweep = Sweep(spec, args.out)
    backend = make_backend(args, len(spec.runs))
    progress = Progress(spec.base.train.epochs, sys.stderr)

    def on_sigint(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C aborts
        print("stopping every run after its current step (Ctrl-C again to abort)", file=sys.stderr, flush=True)
        progress.restart_block()  # the live lines are drawn anew below the message
        sweep.stop()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        records = sweep.run(backend, on_event=progress)
    finally:
        signal.signal(signal.SIGINT, previous)
        backend.close()
    if args.json:
        print(json.dumps(result(sweep.folder, spec, records), allow_nan=False))
    else:
        print(table(spec, records))
    if sweep.stopping:
        print(f"latent-explorer sweep: stopped; {sweep.folder} is complete (run it again to go on)",
              file=sys.stderr)
        return 130
    return 0 if all(r.status is RunStatus.FINISHED for r in records) else 1
