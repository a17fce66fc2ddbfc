"""Run the CLI in-process or in a subprocess with torch made unimportable; hash files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from models.cli.main import main

ROOT = Path(__file__).resolve().parents[3]

BLOCK_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
        return None
sys.meta_path.insert(0, _NoTorch())
from models.cli.main import main
code = main(sys.argv[1:])
assert "torch" not in sys.modules, "torch was imported"
sys.exit(code)
"""


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """``latent-explorer ARGS`` in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def cli_without_torch(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``latent-explorer ARGS`` in a subprocess where importing torch raises ImportError."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH, *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def one_error_line(code: int, out: str, err: str) -> str:
    """Assert the CLI's bad-input contract (exit 2, nothing on stdout, one stderr line)."""
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("latent-explorer diagnose: error: "), err
    return lines[0]


def digest(folder: Path) -> dict[str, str]:
    """Every file under folder, by relative path, with the hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def json_of(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])
