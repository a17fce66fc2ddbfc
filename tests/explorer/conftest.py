"""Fixtures of the GUI tests: headless Qt, isolated settings, tiny data, a main window.

Settings and the runs folder never touch the user's: the XDG folders point into a temporary
directory before Qt starts (QSettings and QStandardPaths read them), and each window gets its own
ini file and runs folder.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_XDG_ROOT = tempfile.mkdtemp(prefix="latent-explorer-tests-")
for _name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
    os.environ[_name] = os.path.join(_XDG_ROOT, _name.lower())
os.environ.setdefault("XDG_RUNTIME_DIR", os.path.join(_XDG_ROOT, "runtime"))
os.makedirs(os.environ["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tiny_images(n: int = 200, size: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n binary-ish uint8 images of two kinds (a bar at a random row or column) and their labels."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, size, size), dtype=np.uint8)
    labels = rng.integers(0, 2, n)
    where = rng.integers(0, size, n)
    for i in range(n):
        if labels[i] == 0:
            x[i, where[i], :] = 255
        else:
            x[i, :, where[i]] = 255
    noise = rng.random((n, size, size)) < 0.05
    x[noise] = 255 - x[noise]
    return x, labels.astype(np.int64)


@pytest.fixture(scope="session")
def tiny_h5(tmp_path_factory) -> str:
    """An HDF5 data set: ``images`` 200 x 8 x 8 uint8, ``labels`` 200 int64, ``meta/scale`` scalar."""
    path = str(tmp_path_factory.mktemp("data") / "tiny.h5")
    x, y = tiny_images()
    with h5py.File(path, "w") as f:
        f["images"] = x
        f["labels"] = y
        f.create_group("meta")["scale"] = 1.0
    return path


@pytest.fixture
def tiny_config(tiny_h5):
    """A run of 2 epochs x 9 steps on the tiny data (a step row every 2 steps)."""
    from models.config import ModelConfig, ObjectiveConfig, RunConfig, TrainConfig

    return RunConfig(
        model=ModelConfig(arch="mlp", data_shape=(1, 8, 8), latent_dim=3, hidden=(16,)),
        objective=ObjectiveConfig(beta=1.0),
        train=TrainConfig(data=f"{tiny_h5}:images", epochs=2, batch_size=20, lr=3e-3, log_every=2),
    )


@pytest.fixture
def errors(monkeypatch) -> list[str]:
    """The messages the app shows in error dialogs (the dialog is replaced; nothing blocks)."""
    import explorer.dialogs

    shown: list[str] = []
    monkeypatch.setattr(explorer.dialogs, "show_error",
                        lambda parent, message, title="": shown.append(str(message)))
    return shown


@pytest.fixture(scope="session", autouse=True)
def gui_thread_collector(qapp):
    """Cycles collected by a GUI-thread timer from the first test on, as the app does from its
    start (explorer/app.py), not by CPython wherever it allocates: an automatic collection in
    the middle of a scene's work freed a plot item the scene still listed (a segmentation fault
    in ``QGraphicsScene::itemsBoundingRect``, after a test had only been added to a module)."""
    from explorer import collector

    collector.install()
    yield


@pytest.fixture(autouse=True)
def quit_stops_training(monkeypatch):
    """Closing a window during a run answers "Stop and quit" (the real question would block)."""
    import explorer.dialogs

    monkeypatch.setattr(explorer.dialogs, "ask_quit_while_training",
                        lambda parent, name: explorer.dialogs.QuitChoice.STOP_AND_QUIT)


@pytest.fixture
def settings_path(tmp_path) -> str:
    return str(tmp_path / "settings.ini")


@pytest.fixture
def make_window(qtbot, tmp_path, settings_path):
    """Build main windows with their own settings file and runs folder; shut them down after."""
    from PySide6.QtCore import QSettings

    from explorer.main_window import MainWindow

    made = []

    def make(**kwargs):
        settings = QSettings(settings_path, QSettings.Format.IniFormat)
        # One torch thread: tiny models on a shared machine are far faster without a thread pool.
        kwargs.setdefault("torch_threads", 1)
        window = MainWindow(settings=settings, **kwargs)
        window.controller.runs_folder = str(tmp_path / "runs")
        qtbot.addWidget(window)
        window.resize(1400, 900)
        made.append(window)
        return window

    yield make
    import shiboken6

    for window in made:
        if shiboken6.isValid(window):
            window.close()  # stops training and every panel's background work
            window.controller.shutdown(30_000)


@pytest.fixture
def window(make_window):
    w = make_window()
    w.show()
    return w


@pytest.fixture
def wait_idle(qtbot):
    """``wait_idle(window)``: wait until the training thread has ended and its signals are handled."""

    def wait(window, timeout: int = 60_000) -> None:
        qtbot.waitUntil(lambda: not window.controller.is_training, timeout=timeout)

    return wait


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, tiny_h5) -> str:
    """A finished run file (2 epochs on the tiny data), trained without the GUI."""
    import torch

    from models.config import ModelConfig, ObjectiveConfig, RunConfig, TrainConfig
    from models.io.run_callback import start_run

    torch.set_num_threads(1)
    path = str(tmp_path_factory.mktemp("runs") / "finished.h5")
    cfg = RunConfig(
        model=ModelConfig(arch="mlp", data_shape=(1, 8, 8), latent_dim=3, hidden=(16,)),
        objective=ObjectiveConfig(beta=2.0),
        train=TrainConfig(data=f"{tiny_h5}:images", epochs=2, batch_size=20, lr=3e-3, log_every=2),
    )
    result = start_run(cfg, path).run()
    assert result.status == "finished"
    return path
