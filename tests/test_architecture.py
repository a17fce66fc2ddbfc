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


# --------------------------------------------------------------------------- import cycles
def _import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, and modules importing
    themselves: every import cycle of the graph (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1 or v in edges[v]:
                        cycles.append(sorted(comp))
    return cycles


def test_the_cycle_finder_finds_cycles() -> None:
    """The check below can fail: a two-module cycle, a longer one and a self-import are found."""
    edges = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c", "f"}, "f": set(), "g": {"g"}}
    assert sorted(_import_cycles(edges)) == [["a", "b"], ["c", "d", "e"], ["g"]]
    assert _import_cycles({"x": {"y"}, "y": set()}) == []


def test_no_import_cycle_among_the_projects_modules() -> None:
    """Every import (also inside functions, also under TYPE_CHECKING) among the modules of
    models and explorer, as grimp finds them: the graph has no cycle."""
    import grimp

    graph = grimp.build_graph("models", "explorer")
    modules = set(graph.modules)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) & modules for m in modules}
    assert sum(map(len, edges.values())) > 100  # the graph was really built
    assert _import_cycles(edges) == []


def test_the_layers_contract_ignores_no_import() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = [c for c in config["contracts"] if c["type"] == "layers"]
    assert layers and all(not c.get("ignore_imports") for c in layers)
    assert layers[0]["layers"][:4] == ["models.cli", "models.sweep", "models.io", "models.training"]
