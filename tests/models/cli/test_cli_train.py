"""``latent-explorer train``: end to end through main.py, Ctrl-C, the progress display, bad input."""

from __future__ import annotations

import io
import signal

import numpy as np
import pytest

from models.cli import main as cli_main
from models.cli.train import Progress
from models.io.runfile import RunReader
from models.errors import ConfigError
from models.training import EpochEvent, StepEvent

from train_helpers import LineReader, cli, one_thread, write_tiny_h5  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> str:
    return write_tiny_h5(str(tmp_path_factory.mktemp("data") / "tiny.h5"))


def _finish(proc, timeout: float = 180.0) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    return out, err


def test_train_end_to_end_writes_a_complete_run_file(spec, tmp_path):
    out_path = tmp_path / "run.h5"
    with cli("train", "--data", spec, "--latent-dim", "3", "--hidden", "24,12", "--epochs", "2",
             "--batch-size", "16", "--beta", "2", "--warmup", "4", "--free-bits", "0.1",
             "--lr", "0.003", "--seed", "7", "--val-fraction", "0.25", "--log-every", "2",
             "--device", "cpu", "--out", str(out_path)) as proc:
        out, err = _finish(proc)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("training a mlp VAE (latent 3, bernoulli)")
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert len(epoch_lines) == 2 and "val ELBO" in epoch_lines[0] and "I(X;Z)" in epoch_lines[0]
    assert lines[-1].endswith(f"wrote {out_path}") and any(x.startswith("verdict: ") for x in lines)
    assert "\r" not in err  # no progress bar when stderr is not a terminal
    with RunReader(out_path) as r:
        assert r.status == "finished"
        cfg = r.config
        assert (cfg.model.latent_dim, cfg.model.hidden, cfg.model.data_shape) == (3, (24, 12), (1, 8, 8))
        assert (cfg.objective.beta, cfg.objective.warmup_steps, cfg.objective.free_bits) == (2.0, 4, 0.1)
        assert (cfg.train.seed, cfg.train.batch_size, cfg.train.lr, cfg.train.epochs) == (7, 16, 0.003, 2)
        assert r.n_epochs == 2 and r.steps()["step"].tolist() == [2, 4, 5, 6, 8, 10]
        assert np.all(np.isfinite(r.epochs()["val_elbo"]))
        assert r.load_model().latent_dim == 3


def test_ctrl_c_stops_cleanly_with_a_complete_file(spec, tmp_path):
    out_path = tmp_path / "run.h5"
    with cli("train", "--data", spec, "--latent-dim", "2", "--hidden", "16", "--epochs", "100000",
             "--device", "cpu", "--out", str(out_path)) as proc:
        lines = LineReader(proc)
        lines.wait_for("epoch ", count=1)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        lines.rest()
        err = proc.stderr.read()
    assert proc.returncode == 130, err
    assert "stopping after this step" in err and "complete (status stopped)" in err
    assert "Traceback" not in err
    with RunReader(out_path) as r:
        assert r.status == "stopped" and "stopped" in r.message
        assert r.n_epochs >= 1 and r.weights_step >= r.epochs()["step"][0]
        r.load_model()


def test_bad_input_through_main_py_is_exit_2_and_one_line(tmp_path):
    with cli("train", "--data", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "r.h5")) as proc:
        out, err = _finish(proc)
    assert proc.returncode == 2
    assert err.count("\n") == 1 and "missing.h5" in err and "Traceback" not in err
    assert not (tmp_path / "r.h5").exists()


def _run_cli(capsys, *args: str) -> tuple[int, str]:
    """models.cli.main in this process (what main.py calls); argparse's errors exit(2)."""
    try:
        code = cli_main(["train", *args])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--lr", "0"], "--lr"),
        (["--lr", "nan"], "--lr"),
        (["--epochs", "0"], "--epochs"),
        (["--latent-dim", "two"], "--latent-dim"),
        (["--batch-size", "-3"], "--batch-size"),
        (["--hidden", "64,,x"], "--hidden"),
        (["--beta", "-1"], "--beta"),
        (["--val-fraction", "1.5"], "val_fraction"),
        (["--arch", "rnn"], "--arch"),
        (["--seed", "99999999999999999999999"], "--seed"),
        (["--seed", str(2**63)], "--seed"),
        (["--seed", "-1"], "--seed"),
        (["--likelihood", "gaussian", "--obs-std", "1e-4"], "obs_std must be at least exp(-7)"),
    ],
)
def test_bad_numbers_exit_2_with_one_line(capsys, tmp_path, spec, args, expected):
    code, err = _run_cli(capsys, "--data", spec, "--out", str(tmp_path / "r.h5"), *args)
    assert code == 2 and err.count("\n") == 1 and expected in err
    assert not (tmp_path / "r.h5").exists()


def test_existing_out_needs_force(capsys, tmp_path, spec):
    out_path = tmp_path / "r.h5"
    out_path.write_bytes(b"precious")
    code, err = _run_cli(capsys, "--data", spec, "--epochs", "1", "--out", str(out_path))
    assert code == 2 and err.count("\n") == 1 and "file exists" in err and "--force" in err
    assert out_path.read_bytes() == b"precious"
    code = cli_main(["train", "--data", spec, "--epochs", "1", "--hidden", "8", "--latent-dim", "2",
                     "--device", "cpu", "--out", str(out_path), "--force"])
    assert code == 0
    with RunReader(out_path) as r:
        assert r.status == "finished"


def test_bad_data_exit_2_with_one_line(capsys, tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("hello\n")
    code, err = _run_cli(capsys, "--data", str(text), "--out", str(tmp_path / "r.h5"))
    assert code == 2 and err.count("\n") == 1 and "notes.h5" in err

    wide = write_tiny_h5(str(tmp_path / "wide.h5"), lo=-2.0, hi=2.0)
    code, err = _run_cli(capsys, "--data", wide, "--out", str(tmp_path / "r.h5"))
    assert code == 2 and err.count("\n") == 1 and "--likelihood gaussian" in err

    code, err = _run_cli(capsys, "--data", wide, "--arch", "conv", "--out", str(tmp_path / "r.h5"))
    assert code == 2 and err.count("\n") == 1 and "conv" in err
    code, err = _run_cli(capsys, "--data", wide, "--out", str(tmp_path / "no" / "r.h5"))
    assert code == 2 and "does not exist" in err
    assert not (tmp_path / "r.h5").exists()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _FakeTrainer:
    total_steps = 100

    class config:  # noqa: N801  (stands in for a RunConfig)
        class train:  # noqa: N801
            epochs = 4


def test_progress_bar_on_a_terminal_and_epoch_lines_on_stdout():
    out, err = io.StringIO(), _Terminal()
    progress = Progress(_FakeTrainer(), out, err)
    kl = np.array([1.0, 2.0])
    progress(StepEvent(step=25, epoch=1, elbo=-103.0, distortion=100.0, rate=3.0, kl_per_dim=kl,
                       beta=1.0, lr=1e-3, samples_per_s=12345.0))
    bar = err.getvalue()
    assert bar.startswith("\r") and "epoch 1/4" in bar and "step 25/100" in bar
    assert "ELBO -103.00" in bar and "D 100.00" in bar and "R 3.00" in bar
    assert "12,345 samples/s" in bar and "ETA" in bar
    progress(EpochEvent(epoch=1, step=25, train_elbo=-104.0, train_distortion=101.0, train_rate=3.0,
                        val_elbo=-105.5, val_distortion=102.0, val_rate=3.5, val_kl_per_dim=kl,
                        activity_per_dim=np.array([0.5, 0.0]), active_units=1, mutual_info=2.0,
                        marginal_kl=1.5, seconds=1.25, verdict="fine"))
    assert err.getvalue().endswith("\r\x1b[K")  # the bar is cleared before the epoch line
    line = out.getvalue()
    assert line.startswith("epoch 1/4  step 25") and "val ELBO -105.50" in line and "active 1/2" in line

    quiet = io.StringIO()
    plain = Progress(_FakeTrainer(), io.StringIO(), quiet)
    plain(StepEvent(step=25, epoch=1, elbo=-103.0, distortion=100.0, rate=3.0, kl_per_dim=kl,
                    beta=1.0, lr=1e-3, samples_per_s=1.0))
    assert quiet.getvalue() == ""


@pytest.mark.parametrize("how", ["same", "symlink", "relative"])
def test_out_that_is_the_data_file_is_refused_even_with_force(capsys, tmp_path, monkeypatch, how):
    """--force must never delete the user's data: --out naming the data file is refused."""
    data_file = tmp_path / "data.h5"
    write_tiny_h5(str(data_file))
    before = data_file.read_bytes()
    out = data_file
    if how == "symlink":
        out = tmp_path / "link.h5"
        out.symlink_to(data_file)
    elif how == "relative":
        monkeypatch.chdir(tmp_path)
        out = "./data.h5"
    code, err = _run_cli(capsys, "--data", f"{data_file}:x", "--labels", "x", "--epochs", "1",
                         "--out", str(out), "--force")
    assert code == 2 and err.count("\n") == 1 and "is the data file" in err, err
    assert data_file.read_bytes() == before


def test_a_config_refuses_seeds_outside_64_bits() -> None:
    from models.config import TrainConfig

    for bad in (-1, 2**63, 10**30, 1.5, True):
        with pytest.raises(ConfigError, match="seed must be"):
            TrainConfig(seed=bad)
    assert TrainConfig(seed=2**63 - 1).seed == 2**63 - 1


def test_the_option_choices_are_the_configs_own() -> None:
    """--arch, --likelihood, --binarize and --device offer exactly the config's Literal choices,
    the first being the default: a choice added to the config reaches the CLI by itself."""
    from typing import get_args

    from models.cli.main import build_parser
    from models import config

    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    actions = {a.dest: a for a in train._actions}
    for dest, literal in (("arch", config.Arch), ("likelihood", config.Likelihood),
                          ("binarize", config.Binarize), ("device", config.Device)):
        assert tuple(actions[dest].choices) == get_args(literal)
        if dest != "device":  # the device defaults to whatever the machine has
            assert actions[dest].default == get_args(literal)[0]
    assert config.ModelConfig().arch == config.ARCHS[0]
    assert config.ModelConfig().likelihood == config.LIKELIHOODS[0]
    assert config.TrainConfig().binarize == config.BINARIZATIONS[0]
