"""The engine is a plain library: every module of models/ imports with Qt made unimportable."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import models

ROOT = Path(__file__).resolve().parents[1]

BLOCKER = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError('blocked for this test: ' + name)
        return None
sys.meta_path.insert(0, Block())
"""


def _module_names() -> list[str]:
    return sorted(
        m.name for m in pkgutil.walk_packages(models.__path__, prefix="models.") if "__main__" not in m.name
    )


def test_models_modules_exist() -> None:
    names = _module_names()
    assert "models.nn.vae" in names and "models.nn.objectives" in names and "models.cli" in names


def test_models_import_without_qt() -> None:
    code = BLOCKER.format(blocked={"PySide6", "pyqtgraph", "explorer", "shiboken6"})
    code += "import importlib\n"
    code += "".join(f"importlib.import_module({n!r})\n" for n in _module_names())
    code += "print('ok')\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_cli_help_imports_no_qt() -> None:
    code = BLOCKER.format(blocked={"PySide6", "pyqtgraph", "shiboken6"})
    code += "import sys\nsys.argv=['latent-explorer','--help']\nfrom explorer.entry import main\nmain()\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for command in ("train", "diagnose", "export", "inspect", "decode"):
        assert command in out.stdout
