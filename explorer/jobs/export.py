"""A run's decoder to ONNX, in a child process that can be cancelled.

The export runs ``latent-explorer export RUN --decoder OUT --force`` in a child process: the ONNX
exporter (``torch.export``) changes torch's global operator tables while it traces, which
deadlocked against a run training in another thread of the app. In its own process it cannot.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from ..tasks import Cancelled, TaskState

#: Export child processes now running (see :func:`stop_child_processes`).
_CHILDREN: set[subprocess.Popen] = set()
_CHILDREN_LOCK = threading.Lock()

#: How often a running export checks for a cancel (s).
POLL_S = 0.1


#: The child's program. A cancel reaches it as SIGTERM, which its first statement turns into
#: KeyboardInterrupt (the CLI's clean-up then removes its temporary file). SIGTERM because a
#: process started with SIGINT ignored (a shell's background job) passes that on: a SIGINT
#: that came before the child's first statement was lost, and the child finished the export
#: the user had cancelled; a SIGTERM that early ends the child before it has written anything.
#: SIGINT gets Python's default handler back too (Ctrl-C in a terminal), both unblocked.
_CHILD_SCRIPT = (
    "import signal, sys\n"
    "def _cancelled(*_args): raise KeyboardInterrupt\n"
    "signal.signal(signal.SIGTERM, _cancelled)\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "hasattr(signal, 'pthread_sigmask') and signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})\n"
    "from models.cli import main; sys.exit(main())\n"
)


def _file_state(path) -> tuple | None:
    """What identifies a file's content cheaply (inode, size, mtime); None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _interrupt(proc: subprocess.Popen) -> None:
    """Ask the child to stop (SIGTERM, see :data:`_CHILD_SCRIPT`; on Windows, terminate): its
    clean-up removes its temporary file, and the file it would have replaced stays as it was."""
    try:
        proc.terminate()
    except OSError:
        pass


def stop_child_processes(grace: float = 10.0) -> None:
    """Interrupt every export child process; kill any still running after ``grace`` seconds.
    Called when the app closes."""
    with _CHILDREN_LOCK:
        children = list(_CHILDREN)
    for proc in children:
        _interrupt(proc)
    for proc in children:
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()


def export_run_decoder(run_path: str, out_path: str, encoder_path: str | None = None,
                       timeout: float = 900.0,
                       should_stop: Callable[[], bool] | None = None) -> str:
    """Export the decoder (and optionally the encoder) of a run file's last saved weights.

    The export is verified against torch and written atomically by ``models.io.onnx_export``;
    returns its one-line summary, or raises ``ExportError`` with the command's one-line error.
    When ``should_stop()`` turns true the child is interrupted (its target is left as it was)
    and :class:`~explorer.tasks.Cancelled` is raised.
    """
    from models.errors import ExportError

    cmd = [sys.executable, "-c", _CHILD_SCRIPT,
           "export", os.fspath(run_path), "--decoder", os.fspath(out_path), "--force"]
    if encoder_path:
        cmd += ["--encoder", os.fspath(encoder_path)]
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    if should_stop is not None and should_stop():
        raise Cancelled()
    before = _file_state(out_path)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    with _CHILDREN_LOCK:
        _CHILDREN.add(proc)
    deadline = time.monotonic() + timeout
    cancelled = False
    try:
        while True:
            try:
                stdout, stderr = proc.communicate(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:  # retrying communicate() loses no output
                if time.monotonic() > deadline:
                    proc.kill()
                    proc.communicate()
                    if cancelled:  # it did not stop within 10 s of SIGTERM
                        raise Cancelled() from None
                    raise ExportError(f"{out_path}: the export took longer than {timeout:.0f} s") from None
                if not cancelled and should_stop is not None and should_stop():
                    cancelled = True
                    _interrupt(proc)
                    deadline = min(deadline, time.monotonic() + 10.0)
    finally:
        with _CHILDREN_LOCK:
            _CHILDREN.discard(proc)
    if cancelled:
        if proc.returncode == 0 or _file_state(out_path) != before:
            # The cancel came after the child had replaced the file: say what happened.
            return f"decoder -> {out_path} (written before the cancel reached it)"
        raise Cancelled()
    if proc.returncode in (130, -2, -15, -9):  # interrupted (the app is closing)
        raise ExportError(f"{out_path}: the export was cancelled; nothing was written")
    if proc.returncode != 0:
        lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
        line = lines[-1] if lines else f"exit status {proc.returncode}"
        raise ExportError(line.removeprefix("latent-explorer export: error: "))
    lines = [ln for ln in stdout.strip().splitlines() if ln.strip()]
    return "; ".join(lines) or f"decoder -> {out_path}"


def export_task(state: TaskState, run_path: str, out_path: str) -> str:
    """The task: :func:`export_run_decoder`, cancelled through ``state``."""
    return export_run_decoder(run_path, out_path, should_stop=state.is_interruption_requested)
