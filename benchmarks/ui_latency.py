"""How responsive the GUI stays while a model trains: lateness of a 5 ms timer on the event loop.

A precise 5 ms single-shot timer is re-armed each time it fires on the GUI thread of the real
main window; its lateness (actual minus due time) is what a user feels as stutter. Measured:

- idle: the window shown, nothing running;
- train: while the default MNIST model (the app's defaults: MLP 784-512-256-10, Bernoulli,
  batch 128) trains from the app (in its child process, the app following its events), from
  its first logged step for ``--seconds``, with the live plots redrawing as they do for a user
  (epoch ends and validation included);
- sweep: while a two-run beta sweep (0.5 and 2, the same model) trains from the app on the local
  backend (two child processes at once), the app following both live, for ``--sweep-seconds``
  from the moment both have logged a step.

Usage: ``QT_QPA_PLATFORM=offscreen python benchmarks/ui_latency.py [--seconds 20]
[--sweep-seconds 20] [--torch-threads N]``. The last line is JSON with ``idle_p50_ms``,
``idle_p99_ms``, ``idle_max_ms``, ``train_p50_ms``, ``train_p99_ms``, ``train_max_ms``,
``sweep_p50_ms``, ``sweep_p99_ms``, ``sweep_max_ms`` and the context.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TICK_MS = 5


class LatencyProbe:
    """Re-arms a 5 ms precise timer and records how late each firing is (ms)."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer, Qt

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self._fired)
        self.samples: list[float] = []
        self._due = 0.0
        self.recording = False

    def start(self) -> None:
        self._arm()

    def _arm(self) -> None:
        self._due = time.perf_counter() + TICK_MS / 1000
        self.timer.start(TICK_MS)

    def _fired(self) -> None:
        late = (time.perf_counter() - self._due) * 1000
        if self.recording:
            self.samples.append(max(0.0, late))
        self._arm()

    def take(self) -> np.ndarray:
        out = np.asarray(self.samples)
        self.samples = []
        return out


def stats(samples: np.ndarray) -> dict[str, float]:
    if len(samples) == 0:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan"), "n": 0}
    return {
        "p50": float(np.percentile(samples, 50)),
        "p99": float(np.percentile(samples, 99)),
        "max": float(samples.max()),
        "n": int(len(samples)),
    }


def run_for(app, seconds: float, until=None) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        if until is not None and until():
            return
        time.sleep(0.0005)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="training seconds measured")
    parser.add_argument("--sweep-seconds", type=float, default=20.0,
                        help="seconds measured while the two-run sweep trains (0: skip)")
    parser.add_argument("--idle-seconds", type=float, default=3.0)
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch threads of the training process (default: the app's choice)")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="Python's GIL switch interval in seconds (default: the app's)")
    args = parser.parse_args(argv)

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = tempfile.mkdtemp(prefix="ui-latency-")
    from PySide6.QtCore import QCoreApplication, QSettings
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setOrganizationName("LatentExplorerBenchmark")
    QCoreApplication.setApplicationName("ui_latency")
    app = QApplication.instance() or QApplication([sys.argv[0]])
    from explorer.jobs.sweep import SweepJob
    from explorer.main_window import MainWindow
    from models.config import RunConfig
    from models.sweep.spec import SweepSpec

    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    from explorer import collector

    collector.install_for_app()  # as the app starts (explorer/app.py)
    settings = QSettings(os.path.join(tmp, "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, torch_threads=args.torch_threads)
    window.controller.runs_folder = os.path.join(tmp, "runs")
    window.resize(1400, 900)
    window.show()
    probe = LatencyProbe()
    probe.start()
    run_for(app, 0.5)  # let the window settle

    probe.recording = True
    run_for(app, args.idle_seconds)
    idle = stats(probe.take())

    config = RunConfig()  # the app's defaults: MNIST, MLP, latent 10, batch 128
    t0 = time.perf_counter()
    session = window.start_training(config)
    run_for(app, 600, until=lambda: len(session.steps) > 0 or not window.controller.is_training)
    load = stats(probe.take())
    load_s = time.perf_counter() - t0
    if len(session.steps) == 0:
        print(f"training did not start: {session.status} {session.message}", file=sys.stderr)
        return 1
    steps0 = int(session.steps.last("step"))
    t1 = time.perf_counter()
    run_for(app, args.seconds)
    train = stats(probe.take())
    elapsed = time.perf_counter() - t1
    steps = int(session.steps.last("step")) - steps0
    epochs = len(session.epochs)
    window.controller.stop()
    run_for(app, 120, until=lambda: not window.controller.is_training)
    probe.take()

    sweep = stats(np.zeros(0))
    sweep_steps, sweep_elapsed = 0, 0.0
    if args.sweep_seconds > 0:
        job = SweepJob(SweepSpec(config, {"beta": [0.5, 2.0]}), os.path.join(tmp, "sweep"), workers=2)
        window.sweeps.start_sweep(job)
        runs = lambda: [s for s in window.runs.sessions() if s.sweep]  # noqa: E731
        run_for(app, 600, until=lambda: (len(runs()) == 2 and all(len(s.steps) for s in runs()))
                or not window.sweeps.controller.busy)
        probe.take()
        first = {id(s): int(s.steps.last("step")) for s in runs()}
        t2 = time.perf_counter()
        run_for(app, args.sweep_seconds)
        sweep = stats(probe.take())
        sweep_elapsed = time.perf_counter() - t2
        sweep_steps = sum(int(s.steps.last("step")) - first.get(id(s), 0) for s in runs())
        window.sweeps.controller.stop()
        run_for(app, 120, until=lambda: not window.sweeps.controller.busy)
    probe.recording = False
    pids = {s.pid for s in window.runs.sessions()}
    window.close()

    print(f"{'phase':<24}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'ticks':>8}")
    for name, s in (("idle", idle), ("loading data", load), ("training", train), ("sweep (2 runs)", sweep)):
        print(f"{name:<24}{s['p50']:9.2f}{s['p99']:9.2f}{s['max']:9.2f}{s['n']:8d}")
    print(f"training: {steps} steps in {elapsed:.1f} s ({steps * config.train.batch_size / elapsed:,.0f} "
          f"samples/s), {epochs} epochs ended; data loading took {load_s:.1f} s; "
          f"training processes {sorted(p for p in pids if p)} (the GUI: {os.getpid()}); "
          f"{os.cpu_count()} CPUs")
    if args.sweep_seconds > 0:
        print(f"sweep: {sweep_steps} steps of two runs in {sweep_elapsed:.1f} s")
    result = {
        "idle_p50_ms": round(idle["p50"], 3),
        "idle_p99_ms": round(idle["p99"], 3),
        "idle_max_ms": round(idle["max"], 3),
        "train_p50_ms": round(train["p50"], 3),
        "train_p99_ms": round(train["p99"], 3),
        "train_max_ms": round(train["max"], 3),
        "load_p99_ms": round(load["p99"], 3),
        "load_max_ms": round(load["max"], 3),
        "train_steps": steps,
        "train_seconds": round(elapsed, 2),
        "epochs_ended": epochs,
        "sweep_p50_ms": round(sweep["p50"], 3),
        "sweep_p99_ms": round(sweep["p99"], 3),
        "sweep_max_ms": round(sweep["max"], 3),
        "sweep_steps": sweep_steps,
        "sweep_seconds": round(sweep_elapsed, 2),
        "torch_threads": args.torch_threads,
        "cpus": os.cpu_count(),
        "gui_loaded_trainer": "models.training.trainer" in sys.modules,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
