"""The export child process: a cancel leaves the user's file as it was, and says so truthfully."""

from __future__ import annotations

import signal
import time

import pytest

from explorer.jobs import export as export_job
from explorer.tasks import Cancelled


def _stop_after(seconds: float):
    t0 = time.monotonic()
    return lambda: time.monotonic() - t0 > seconds


def test_a_cancel_stops_the_child_even_when_the_app_ignores_sigint(finished_run, tmp_path):
    # A shell's background job starts with SIGINT ignored, and a child inherits that: before
    # the fix the child finished the export the user had cancelled and replaced the file.
    target = tmp_path / "decoder.onnx"
    target.write_bytes(b"the user's old decoder")
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with pytest.raises(Cancelled):
            export_job.export_run_decoder(finished_run, str(target), should_stop=_stop_after(0.5))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert target.read_bytes() == b"the user's old decoder"
    assert not export_job._CHILDREN


def test_a_cancel_that_comes_after_the_file_was_written_says_it_was_written(tmp_path, monkeypatch):
    # A child that has replaced the file before the cancel reaches it: not "nothing was written".
    target = tmp_path / "decoder.onnx"
    target.write_bytes(b"old")
    script = ("import signal, sys, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
              "open(sys.argv[4], 'wb').write(b'new'); time.sleep(1.0)")
    monkeypatch.setattr(export_job, "_CHILD_SCRIPT", script)
    summary = export_job.export_run_decoder("run.h5", str(target),
                                            should_stop=lambda: target.read_bytes() == b"new")
    assert target.read_bytes() == b"new"
    assert "written before the cancel" in summary


def test_a_cancel_reaches_a_child_that_has_not_yet_set_up_its_handlers(tmp_path):
    # A cancel right after the child started (the app closed at once) came before the child's
    # first statement; with SIGINT inherited as ignored it was lost, and the child went on to
    # replace the user's file. The interrupt must end such a child too.
    import subprocess
    import sys

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:  # a child still in its start-up: the inherited dispositions, nothing of ours yet
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        time.sleep(0.3)
        export_job._interrupt(proc)
        assert proc.wait(5) != 0
    finally:
        proc.kill()
        proc.wait()
