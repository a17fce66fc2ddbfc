"""Drive the real app under X (Xvfb) and export the decoder through File > Export N times.

    python tests/explorer/stress_app.py --exports 50          # needs xvfb-run (apt: xvfb)

The parent trains a tiny run (once), then starts the app's own entry point
(``explorer.app.main``, the ``xcb`` platform under ``xvfb-run``) in a child process with the run
and a copy of it on the command line. The child raises the latent explorer's dock (which loads
the current run: one more export and an encoding), then triggers File > Export decoder to ONNX
(the save dialog answered by the script), waits for the export to end, switches to the other
run, and does it again, N times, then quits through the window. ``faulthandler`` is on in the
child: a crash prints every thread's stack. If a child dies, the parent counts the crash and
starts another for the exports left. Not collected by pytest (the name has no ``test_``); the
last line printed is JSON: ``{"exports_ok", "export_errors", "crashes", ...}``.

Measured on 2026-12-01 (2 shared cores, load average ~15, Xvfb): 50 exports of 50 in one app
process, no crash, no error, 3,973 s (each run switch also re-exported the explorer's decoder).
The same machine crashed the app before explorer.tasks: a 3,000-task repro of the old
RunController._run_task segfaulted 3 times in 3.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def make_run(folder: str) -> str:
    """A finished 2-epoch run on tiny 8 x 8 images (as tests/explorer/conftest.py makes)."""
    import h5py
    import torch

    sys.path.insert(0, HERE)
    from conftest import tiny_images

    from models.config import ModelConfig, ObjectiveConfig, RunConfig, TrainConfig
    from models.io.run_callback import start_run

    torch.set_num_threads(1)
    data = os.path.join(folder, "tiny.h5")
    x, y = tiny_images()
    with h5py.File(data, "w") as f:
        f["images"] = x
        f["labels"] = y
    cfg = RunConfig(
        model=ModelConfig(arch="mlp", data_shape=(1, 8, 8), latent_dim=3, hidden=(16,)),
        objective=ObjectiveConfig(beta=2.0),
        train=TrainConfig(data=f"{data}:images", epochs=2, batch_size=20, lr=3e-3, log_every=2),
    )
    path = os.path.join(folder, "stress.h5")
    assert start_run(cfg, path).run().status == "finished"
    return path


def child(n: int, runs: list[str], out_dir: str) -> int:
    """In the app's process: N exports through the window's File menu action."""
    import faulthandler

    faulthandler.enable()
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QFileDialog

    import explorer.dialogs
    from explorer import app as app_module

    qapp = QApplication([sys.argv[0]])
    stats = {"exports_ok": 0, "export_errors": [], "started": 0}
    t0 = time.perf_counter()
    errors: list[str] = []
    explorer.dialogs.show_error = lambda parent, message, title="": errors.append(str(message))

    def window():
        return next(w for w in qapp.topLevelWidgets() if w.objectName() == "MainWindow")

    def next_path(*_args, **_kwargs):
        return os.path.join(out_dir, f"decoder-{stats['started'] % 3}.onnx"), ""

    QFileDialog.getSaveFileName = staticmethod(next_path)

    def export_next() -> None:
        win = window()
        if stats["started"] >= n:
            win.close()  # the last window: the app quits
            return
        stats["started"] += 1
        win.act_next_run.trigger()  # a run switch between exports
        win.act_export.trigger()  # File > Export decoder to ONNX…

    def busy_changed(busy: bool) -> None:
        if not busy:
            QTimer.singleShot(20, export_next)

    def finished(_summary: str) -> None:
        stats["exports_ok"] += 1

    def start() -> None:
        win = window()
        win.controller.exportBusyChanged.connect(busy_changed)
        win.controller.exportFinished.connect(finished)
        win.latent_panel.dock.show()
        win.latent_panel.dock.raise_()  # the explorer loads the current run meanwhile
        export_next()

    QTimer.singleShot(500, start)
    rc = app_module.main(list(runs))
    stats["export_errors"] = [e for e in errors if e.startswith("export failed")]
    stats["other_errors"] = [e for e in errors if not e.startswith("export failed")]
    stats["seconds"] = round(time.perf_counter() - t0, 1)
    stats["rc"] = rc
    print(json.dumps(stats), flush=True)
    return 0 if rc == 0 else 1


def parent(args: argparse.Namespace) -> int:
    tmp = tempfile.mkdtemp(prefix="latent-explorer-stress-")
    try:
        run = args.run or make_run(tmp)
        copy = os.path.join(tmp, "stress-copy.h5")
        shutil.copy(run, copy)
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", QT_QPA_PLATFORM="xcb")
        for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
            env[name] = os.path.join(tmp, name.lower())  # never the user's settings
        env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH", "")) if p)
        total = {"exports_ok": 0, "export_errors": [], "other_errors": [], "crashes": 0,
                 "crash_signals": [], "children": 0, "seconds": 0.0}
        t0 = time.perf_counter()
        while total["exports_ok"] + len(total["export_errors"]) < args.exports:
            left = args.exports - total["exports_ok"] - len(total["export_errors"])
            out = os.path.join(tmp, f"out-{total['children']}")
            os.makedirs(out)
            cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable,
                   os.path.abspath(__file__), "--child", "--exports", str(left), "--out", out,
                   run, copy]
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
            total["children"] += 1
            last = (proc.stdout.strip().splitlines() or [""])[-1]
            try:
                stats = json.loads(last)
            except json.JSONDecodeError:
                stats = None
            if stats is None or proc.returncode != 0:
                total["crashes"] += 1
                total["crash_signals"].append(proc.returncode)
                sys.stderr.write(f"child crashed (rc {proc.returncode}):\n{proc.stderr[-4000:]}\n")
                if total["crashes"] >= args.max_crashes:
                    break
                # exports it finished before dying are not known: count none of them
                continue
            total["exports_ok"] += stats["exports_ok"]
            total["export_errors"] += stats["export_errors"]
            total["other_errors"] += stats["other_errors"]
            print(f"child {total['children']}: {stats['exports_ok']} exports in {stats['seconds']} s",
                  file=sys.stderr)
        total["seconds"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(total))
        return 0 if total["crashes"] == 0 and not total["export_errors"] else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", help="(child) run files to open")
    parser.add_argument("--exports", type=int, default=50)
    parser.add_argument("--run", help="a finished run file to export (default: train a tiny one)")
    parser.add_argument("--max-crashes", type=int, default=10)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.exports, args.runs, args.out)
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
