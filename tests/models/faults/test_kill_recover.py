"""kill -9 of a real `train` at several moments, then `recover` and a plain h5py open.

After a kill the run file is marked open for write: plain h5py (and h5dump) refuse it. `recover`
must make it a normal HDF5 file with status `interrupted`, keeping every flushed row; refuse while
the writer is alive; leave a file that needs nothing alone. Every step has a generous timeout; no
assertion is about time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from models.cli.main import main
from models.io.liveness import writer_alive
from models.io.recover import recover
from models.training.events import RunStatus
from models.io.runfile import RunReader
from models.io.temp_files import remove_stale_temps, stale_temps

ROOT = Path(__file__).resolve().parents[3]
TRAIN = ["--data", "shapes:32", "--max-samples", "2000", "--hidden", "8", "--latent-dim", "2",
         "--log-every", "1"]
pytestmark = pytest.mark.slow


def _train(out: Path, epochs: int = 50) -> tuple[subprocess.Popen, Path]:
    log = out.with_suffix(".log")
    with log.open("w") as sink:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "train", *TRAIN, "--epochs", str(epochs),
             "--out", str(out)],
            cwd=out.parent, stdout=sink, stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen"),
        )
    return proc, log


def _wait(condition, proc: subprocess.Popen, what: str, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            return  # it ended first: the caller checks what state that left
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait(timeout=60)
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def _plain_opens(path: Path) -> bool:
    try:
        h5py.File(path, "r").close()
        return True
    except OSError as exc:
        assert "open for write" in str(exc), exc
        return False


def _rows(path: Path) -> dict[str, int]:
    with RunReader(path) as r:
        return {"steps": r.n_steps, "epochs": r.n_epochs}


def _recover_and_check(path: Path, capsys) -> None:
    assert writer_alive(path) is False
    before = _rows(path)
    flagged = not _plain_opens(path)
    code = main(["recover", str(path)])
    out, err = capsys.readouterr()
    assert code == 0 and err == "" and out.count("\n") == 1, (out, err)
    with h5py.File(path, "r") as f:  # what any HDF5 tool does
        status = f["status"][()].decode().strip("\x00")
        message = f["message"][()].decode()
    with RunReader(path) as r:
        assert {"steps": r.n_steps, "epochs": r.n_epochs} == before
        if r.weights_step >= 0:
            r.load_model()
    if flagged or status == RunStatus.INTERRUPTED:
        assert status == RunStatus.INTERRUPTED and "stopped without closing" in message, message
    code = main(["recover", str(path)])
    out, _ = capsys.readouterr()
    assert code == 0 and "nothing to do" in out
    assert not [n for n in os.listdir(path.parent) if ".recover-" in n]


@pytest.mark.parametrize("moment", ["first steps", "mid-epoch", "close"])
def test_kill_9_then_recover_gives_a_file_any_hdf5_tool_opens(tmp_path, capsys, moment) -> None:
    out = tmp_path / "run.h5"
    epochs = 2 if moment == "close" else 50
    proc, log = _train(out, epochs)
    if moment == "first steps":
        _wait(out.exists, proc, "the run file")
    elif moment == "mid-epoch":
        _wait(lambda: "epoch 1/" in log.read_text(), proc, "the first epoch")
        time.sleep(0.5)
    else:
        _wait(lambda: f"epoch {epochs}/{epochs}" in log.read_text(), proc, "the last epoch")
    _kill(proc)
    assert out.exists(), log.read_text()
    _recover_and_check(out, capsys)


def test_recover_refuses_while_the_writer_runs_and_the_file_is_untouched(tmp_path, capsys) -> None:
    out = tmp_path / "run.h5"
    proc, log = _train(out)
    try:
        _wait(lambda: "epoch 1/" in log.read_text(), proc, "the first epoch")
        assert proc.poll() is None and writer_alive(out) is True
        code = main(["recover", str(out)])
        _, err = capsys.readouterr()
        assert code == 2 and err.count("\n") == 1 and "still running" in err
        assert not [n for n in os.listdir(tmp_path) if ".recover-" in n]
    finally:
        _kill(proc)
    _recover_and_check(out, capsys)


def test_a_kill_during_creation_leaves_a_temporary_that_is_removed_once_its_process_is_gone(tmp_path) -> None:
    out = tmp_path / "run.h5"
    proc, _ = _train(out)
    _wait(lambda: any(n.startswith("run.h5.tmp-") for n in os.listdir(tmp_path)), proc, "the temporary")
    if proc.poll() is not None:  # on a busy machine the run can end before a poll sees it
        pytest.skip("the writer ended before it could be stopped mid-creation")
    assert stale_temps(out) == []  # its writer is alive: kept
    # Not reaped by poll(), so the pid is still its own (a zombie at worst): kill cannot miss.
    os.kill(proc.pid, signal.SIGSTOP)  # freeze it mid-creation, then kill it there
    _kill(proc)
    temps = [n for n in os.listdir(tmp_path) if n.startswith("run.h5.tmp-")]
    if not temps:
        pytest.skip("the writer finished creating the file before it was stopped")
    assert remove_stale_temps(out) == [str(tmp_path / temps[0])]
    assert not [n for n in os.listdir(tmp_path) if n.startswith("run.h5.tmp-")]


def test_a_finished_run_needs_nothing_and_is_left_alone(tmp_path, capsys) -> None:
    out = tmp_path / "run.h5"
    proc, log = _train(out, epochs=1)
    assert proc.wait(timeout=300) == 0, log.read_text()
    assert _plain_opens(out)  # a closed run file opens in any HDF5 tool
    before = out.read_bytes()
    result = recover(out)
    assert not result.changed and "nothing to do" in result.line and out.read_bytes() == before


def test_recover_refuses_what_is_not_a_run_file(tmp_path, capsys) -> None:
    other = tmp_path / "data.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(3)
    (tmp_path / "t.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 8)
    for path, message in ((other, "not a Latent Explorer run file"), (tmp_path / "t.h5", "damaged"),
                          (tmp_path / "missing.h5", "no such file")):
        code = main(["recover", str(path)])
        _, err = capsys.readouterr()
        assert code == 2 and err.count("\n") == 1 and message in err, err
