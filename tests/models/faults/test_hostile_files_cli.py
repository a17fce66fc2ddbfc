"""Every CLI command on crafted and damaged files: exit 2, one line on stderr, in bounded time
(a subprocess timeout catches a hang; nothing asserts a duration)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from models.errors import RunFileError
from models.io import disk
from models.io.liveness import file_replaced, refuse_live_writer

ROOT = Path(__file__).resolve().parents[3]
TINY = ["--hidden", "8", "--latent-dim", "2", "--epochs", "1"]


def cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def one_line_exit_2(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-1500:])
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def run_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("run")
    proc = cli("train", "--data", "shapes:32", "--max-samples", "500", *TINY, "--out", "run.h5", cwd=folder,
               timeout=300)
    assert proc.returncode == 0, proc.stderr
    return folder / "run.h5"


@pytest.mark.parametrize("length", [8, 16, 4096])
def test_truncated_run_files_are_one_line_for_diagnose_export_and_recover(run_file, tmp_path, length) -> None:
    cut = tmp_path / "t.h5"
    cut.write_bytes(run_file.read_bytes()[:length])
    for args in (["diagnose", str(cut)], ["export", str(cut), "--decoder", str(tmp_path / "d.onnx")],
                 ["recover", str(cut)]):
        one_line_exit_2(cli(*args, cwd=tmp_path, timeout=60))


def test_links_in_a_run_file_are_refused_naming_them(run_file, tmp_path) -> None:
    for group, link in (("steps", "soft"), ("weights", "external")):
        bad = tmp_path / f"{group}.h5"
        bad.write_bytes(run_file.read_bytes())
        with h5py.File(bad, "r+") as f:
            name = next(iter(f[group]))
            del f[group][name]
            f[group][name] = (h5py.SoftLink(f"/{group}/x") if link == "soft"
                              else h5py.ExternalLink("/etc/passwd", "x"))
        one_line_exit_2(cli("diagnose", str(bad), cwd=tmp_path, timeout=60), f"'/{group}/{name}'")


def test_a_weight_stored_in_another_file_is_never_copied_into_an_export(run_file, tmp_path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\x00\x00\x80\x3f" * 4096)
    bad = tmp_path / "leak.h5"
    bad.write_bytes(run_file.read_bytes())
    with h5py.File(bad, "r+") as f:
        name = next(iter(f["weights"]))
        shape, dtype = f["weights"][name].shape, f["weights"][name].dtype
        del f["weights"][name]
        f["weights"].create_dataset(name, shape=shape, dtype=dtype,
                                    external=[(str(secret), 0, int(np.prod(shape)) * dtype.itemsize)])
    proc = cli("export", str(bad), "--decoder", str(tmp_path / "d.onnx"), cwd=tmp_path, timeout=120)
    one_line_exit_2(proc, "external storage")
    assert not (tmp_path / "d.onnx").exists()


def test_data_files_that_name_other_files_or_are_malformed_are_one_line(tmp_path) -> None:
    secret = tmp_path / "passwd"
    secret.write_bytes(os.urandom(4096))
    files = {}
    for array, make in (
        ("ext", lambda f: f.create_dataset("ext", shape=(100, 8), dtype="u1", external=[(str(secret), 0, 800)])),
        ("scalar", lambda f: f.create_dataset("scalar", data=3.0)),
        ("huge", lambda f: f.create_dataset("huge", data=np.full((100, 8), 1e30, "f4"))),
        ("half", lambda f: f.create_dataset("half", data=np.full((100, 8), np.finfo(np.float16).max, "f2"))),
    ):
        files[array] = tmp_path / f"{array}_data.h5"
        with h5py.File(files[array], "w") as f:
            make(f)
    for array, needle in (("ext", "external storage"), ("scalar", "rank 0"), ("huge", "range over"),
                          ("half", "range over")):
        data = files[array]
        proc = cli("train", "--data", f"{data}:{array}", "--likelihood", "gaussian", *TINY,
                   "--out", f"{array}.h5", cwd=tmp_path, timeout=300)
        one_line_exit_2(proc, needle)


def test_concurrent_force_on_the_same_out_refuses_while_the_first_run_writes(tmp_path) -> None:
    args = ["train", "--data", "shapes:32", "--max-samples", "2000", "--hidden", "8", "--latent-dim", "2"]
    log = tmp_path / "first.log"
    with log.open("w") as sink:
        first = subprocess.Popen([sys.executable, str(ROOT / "main.py"), *args, "--epochs", "40", "--seed", "1",
                                  "--out", "s.h5"], cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT,
                                 env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        deadline = time.monotonic() + 240
        while "epoch 1/" not in log.read_text() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, log.read_text()
        second = cli(*args, "--epochs", "1", "--seed", "2", "--out", "s.h5", "--force", cwd=tmp_path, timeout=300)
        one_line_exit_2(second, "still running")
        assert first.poll() is None  # the first run goes on, its file untouched
    finally:
        first.kill()
        first.wait(timeout=60)


def test_refuse_live_writer_and_file_replaced(tmp_path) -> None:
    path = tmp_path / "run.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "latent-explorer-run"
        f.attrs["writer_host"] = os.uname().nodename
        f.attrs["writer_pid"] = os.getpid()
        f["created"] = time.time()
    with pytest.raises(RunFileError, match="still running"):
        refuse_live_writer(path)  # this process is its writer
    refuse_live_writer(tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_bytes(b"junk")
    refuse_live_writer(tmp_path / "junk.h5")  # unreadable: --force may replace it
    with h5py.File(path, "r") as f:
        assert not file_replaced(path, f)
        os.replace(path, tmp_path / "moved.h5")
        with h5py.File(path, "w"):
            pass
        assert file_replaced(path, f)


def test_free_space_check_and_disk_full_errors(tmp_path, monkeypatch) -> None:
    disk.check_free_space(tmp_path, 0)
    monkeypatch.setattr(disk, "free_bytes", lambda path: 100_000)
    with pytest.raises(RunFileError, match=r"disk is \(nearly\) full: 0.1 MB free") as info:
        disk.check_free_space(tmp_path / "run.h5", 10)
    assert str(info.value).startswith(str(tmp_path / "run.h5"))
    import errno

    assert disk.is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert disk.is_disk_full(RuntimeError("file write failed: errno = 28, error message = 'No space left on device'"))
    assert not disk.is_disk_full(OSError(errno.EACCES, "Permission denied"))


def _tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, timeout=30)
    return proc.returncode == 0


@pytest.mark.parametrize("used_kb", [1748, 1000, 400])
def test_a_full_disk_is_one_line_and_leaves_no_half_file(tmp_path, used_kb) -> None:
    disk_dir = tmp_path / "s"
    if not _tmpfs(disk_dir, "2m"):
        pytest.skip("cannot mount a tmpfs here (not root); the free-space check is tested above")
    try:
        (disk_dir / "f").write_bytes(b"\0" * used_kb * 1024)
        proc = cli("train", "--data", "shapes:32", "--max-samples", "2000", "--hidden", "64",
                   "--latent-dim", "2", "--epochs", "3", "--out", str(disk_dir / "run.h5"), cwd=tmp_path, timeout=300)
        assert proc.returncode in (0, 2) and "Traceback" not in proc.stderr, proc.stderr[-1500:]
        if proc.returncode == 2:
            assert proc.stderr.count("\n") == 1 and "full" in proc.stderr
        if (disk_dir / "run.h5").exists():  # a run the disk filled mid-way: whole, status error
            with h5py.File(disk_dir / "run.h5", "r") as f:
                status = f["status"][()].decode().strip("\x00")
            assert status == ("finished" if proc.returncode == 0 else "error")
        assert not [n for n in os.listdir(disk_dir) if ".tmp" in n]
    finally:
        subprocess.run(["umount", str(disk_dir)], capture_output=True, timeout=30)
