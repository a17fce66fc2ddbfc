"""Opening hostile HDF5 files: one line in bounded time, nothing read from other files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from models.data.hdf5_safety import open_hdf5
from models.errors import DataError, RunFileError

ROOT = Path(__file__).resolve().parents[3]

# A SWMR writer that flushes a few rows and kills itself: the file stays marked open for write.
KILLED_WRITER = textwrap.dedent(
    """
    import os, sys, h5py, numpy as np
    path = sys.argv[1]
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("rows", shape=(0, 3), maxshape=(None, 3), dtype="f8", chunks=(64, 3))
    f = h5py.File(path, "r+", libver="latest")
    f.swmr_mode = True
    for i in range(4):
        f["rows"].resize((i + 1, 3)); f["rows"][i] = i; f.flush()
    os.kill(os.getpid(), 9)
    """
)


def killed_swmr_file(path: Path) -> Path:
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path)], timeout=60)
    assert proc.returncode == -9
    return path


def _one_line(exc: pytest.ExceptionInfo, path: Path) -> str:
    text = str(exc.value)
    assert text.startswith(str(path)) and "\n" not in text and len(text) < 400
    return text


def test_a_file_left_open_for_write_opens_as_swmr(tmp_path) -> None:
    path = killed_swmr_file(tmp_path / "k.h5")
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(path, "r")
    with open_hdf5(path, RunFileError) as f:
        assert f.swmr_mode and f["rows"].shape == (4, 3)


@pytest.mark.parametrize("length", [8, 16, 100, 1000, -200])
def test_short_truncations_are_one_line_at_once(tmp_path, length) -> None:
    """head -c 16 run.h5 slept 14 min in HDF5's SWMR retry loop; head -c 8 gave a traceback.
    Run in a subprocess: a hang is caught by the timeout, not by a clock assertion."""
    src = killed_swmr_file(tmp_path / "k.h5").read_bytes()
    cut = tmp_path / "t.h5"
    cut.write_bytes(src[:length])
    code = f"""
from models.data.hdf5_safety import open_hdf5
from models.errors import RunFileError
try:
    open_hdf5({str(cut)!r}, RunFileError).close()
    print("OPENED")
except RunFileError as exc:
    print("REFUSED", exc)
"""
    proc = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.startswith(("REFUSED", "OPENED")) and proc.stdout.count("\n") == 1


def test_a_damaged_file_that_is_open_for_write_fails_fast(tmp_path) -> None:
    path = killed_swmr_file(tmp_path / "k.h5")
    data = bytearray(path.read_bytes())
    for i in range(200, len(data), 97):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    code = f"""
from models.data.hdf5_safety import open_hdf5
from models.errors import RunFileError
try:
    open_hdf5({str(path)!r}, RunFileError).close()
except RunFileError as exc:
    print("REFUSED", exc)
"""
    proc = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.startswith("REFUSED") and proc.stderr == ""


def test_links_and_storage_in_other_files_are_refused_naming_the_object(tmp_path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(16, dtype="f4").tobytes())
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros((4, 4), "f4")
    cases = {}
    with h5py.File(tmp_path / "external.h5", "w") as f:
        f.create_dataset("data/x", shape=(4, 4), dtype="f4", external=[(str(secret), 0, 64)])
    cases["external.h5"] = "'/data/x' keeps its values in another file"
    with h5py.File(tmp_path / "virtual.h5", "w") as f:
        layout = h5py.VirtualLayout(shape=(4, 4), dtype="f4")
        layout[:] = h5py.VirtualSource(str(other), "x", shape=(4, 4))
        f.create_virtual_dataset("v", layout)
    cases["virtual.h5"] = "'/v' is a virtual dataset"
    with h5py.File(tmp_path / "soft.h5", "w") as f:
        f["steps/a"] = np.zeros(3)
        f["steps/b"] = h5py.SoftLink("/steps/a")
    cases["soft.h5"] = "'/steps/b' is a soft link"
    with h5py.File(tmp_path / "elink.h5", "w") as f:
        f["weights/w"] = h5py.ExternalLink(str(other), "x")
    cases["elink.h5"] = "'/weights/w' is a link to another file"
    for name, message in cases.items():
        for error in (DataError, RunFileError):
            with pytest.raises(error, match=message) as info:
                open_hdf5(tmp_path / name, error)
            _one_line(info, tmp_path / name)


def test_a_dataset_stored_in_a_fifo_is_refused_without_reading_it(tmp_path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    path = tmp_path / "fifo.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", shape=(4, 4), dtype="f4", external=[(str(fifo), 0, 64)])
    with pytest.raises(DataError, match="external storage"):
        open_hdf5(path, DataError)


def test_a_fifo_or_a_directory_is_refused_before_hdf5_reads_it(tmp_path) -> None:
    fifo = tmp_path / "run.h5"
    os.mkfifo(fifo)
    with pytest.raises(RunFileError, match="not a regular file"):
        open_hdf5(fifo, RunFileError)
    with pytest.raises(RunFileError, match="is a directory"):
        open_hdf5(tmp_path, RunFileError)
    with pytest.raises(RunFileError, match="no such file"):
        open_hdf5(tmp_path / "missing.h5", RunFileError)
    (tmp_path / "empty.h5").write_bytes(b"")
    with pytest.raises(RunFileError, match="empty"):
        open_hdf5(tmp_path / "empty.h5", RunFileError)
    (tmp_path / "text.h5").write_text("hello\n")
    with pytest.raises(RunFileError, match="not an HDF5 file"):
        open_hdf5(tmp_path / "text.h5", RunFileError)


def test_a_normal_file_opens_and_its_tree_is_accepted(tmp_path) -> None:
    path = tmp_path / "ok.h5"
    with h5py.File(path, "w") as f:
        f["a/b"] = np.arange(3)
        f["c"] = 1.5
    with open_hdf5(path, DataError) as f:
        assert not f.swmr_mode and list(f["a/b"][()]) == [0, 1, 2]


_THREADS_SCRIPT = """
import sys, threading
import h5py, numpy as np
from models.data.hdf5_safety import open_hdf5
from models.errors import DataError

path = sys.argv[1]
with h5py.File(path, "w") as f:
    for k in range(6):
        f.create_dataset(f"c{k}", data=np.arange(4000.0), chunks=(128,), compression="gzip")
errors = []

def read():
    try:
        for _ in range(200):
            f = open_hdf5(path, DataError)
            try:
                for k in range(6):
                    f[f"c{k}"][:500]
            finally:
                f.close()
    except Exception as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=read) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("errors", len(errors), errors[:1])
"""


def test_files_opened_from_several_threads_at_once_read_cleanly(tmp_path):
    # The app reads run files from several task threads at once (diagnosis, follow, samples,
    # encodings). Setting the metadata read attempts through ctypes outside h5py's lock
    # crashed this script (SIGSEGV, or "no VOL object wrap context" errors); in a child process
    # so that a crash fails the test instead of ending the suite.
    proc = subprocess.run([sys.executable, "-c", _THREADS_SCRIPT, str(tmp_path / "t.h5")],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().startswith("errors 0"), proc.stdout
