"""``latent-explorer diagnose``: end to end through ``python main.py`` (train, then diagnose
--json), the text report, the data options, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from models.cli import main as cli_main
from models.config import ModelConfig, ObjectiveConfig, RunConfig, TrainConfig
from models.diagnostics import JSON_KEYS
from models.io.runfile import RunReader
from models.io.run_callback import start_run

REPO = Path(__file__).resolve().parents[3]
N_ROWS, DIM = 200, 16


def _write_data(path: Path) -> None:
    """Rows in [0, 1] with low-dimensional structure, usable by Bernoulli and Gaussian models."""
    g = np.random.default_rng(0)
    z = g.standard_normal((N_ROWS, 2))
    w = g.standard_normal((2, DIM))
    x = 1.0 / (1.0 + np.exp(-(z @ w)))
    with h5py.File(path, "w") as f:
        f["x"] = x.astype(np.float32)
        f["other"] = np.zeros((30, 5), np.float32)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("diag") / "tiny.h5"
    _write_data(path)
    return path


def _gaussian(spec: str, latent_dim: int) -> RunConfig:
    """Two epochs of a small MLP with a learned Gaussian likelihood on ``spec``."""
    return RunConfig(
        ModelConfig(arch="mlp", data_shape=(DIM,), latent_dim=latent_dim, hidden=(16,),
                    likelihood="gaussian", obs_std=None),
        ObjectiveConfig(beta=1.0),
        TrainConfig(data=spec, epochs=2, batch_size=32, seed=0),
    )


@pytest.fixture(scope="module")
def gaussian_run(data_file: Path) -> Path:
    out = data_file.parent / "gauss.h5"
    result = start_run(_gaussian(f"{data_file}:x", 4), out, device="cpu").run()
    assert result.status == "finished"
    return out


def _cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = cli_main(["diagnose", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _check_consistent(j: dict) -> None:
    assert list(j) == list(JSON_KEYS)
    for k in ("elbo", "distortion", "rate", "iwae", "elbo_gap", "mutual_info", "marginal_kl"):
        assert isinstance(j[k], float) and math.isfinite(j[k]), k
    assert isinstance(j["active_units"], int) and isinstance(j["n_samples"], int)
    assert isinstance(j["verdict"], str) and j["verdict"]
    assert all(isinstance(i, int) for i in j["collapsed_dims"])
    assert j["rate"] == pytest.approx(sum(j["kl_per_dim"]), rel=1e-9, abs=1e-12)
    assert j["elbo"] == pytest.approx(-(j["distortion"] + j["rate"]), rel=1e-12)
    assert j["elbo_gap"] == pytest.approx(j["iwae"] - j["elbo"], rel=1e-9)
    assert j["iwae"] >= j["elbo"] - 0.1
    assert j["mutual_info"] + j["marginal_kl"] == pytest.approx(j["rate"], abs=1e-9)
    assert j["mutual_info"] <= math.log(j["n_samples"]) + 1e-9
    assert j["active_units"] + len(j["collapsed_dims"]) == len(j["kl_per_dim"])
    assert len(j["activity_per_dim"]) == len(j["kl_per_dim"])


# --------------------------------------------------------------------------- end to end
def test_train_then_diagnose_json_through_main_py(data_file: Path) -> None:
    run = data_file.parent / "bern.h5"
    train = subprocess.run(
        [sys.executable, "main.py", "train", "--data", f"{data_file}:x", "--latent-dim", "3",
         "--hidden", "16", "--epochs", "1", "--batch-size", "32", "--out", str(run)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )
    assert train.returncode == 0, train.stderr
    diag = subprocess.run(
        [sys.executable, "main.py", "diagnose", str(run), "--json", "--iw-samples", "20"],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )
    assert diag.returncode == 0, diag.stderr
    assert diag.stdout.count("\n") == 1  # one JSON object and nothing else
    j = json.loads(diag.stdout)
    _check_consistent(j)
    with RunReader(run) as reader:
        epochs = reader.epochs()
        n_val = len(reader.val_indices)
    assert j["n_samples"] == n_val == round(0.1 * N_ROWS)
    # the same validation rows, binarised by the trainer's rule: the exact rate and the same
    # latent statistics as the trainer's last epoch
    assert j["rate"] == pytest.approx(float(epochs["val_rate"][-1]), rel=1e-6)
    assert j["active_units"] == int(epochs["active_units"][-1])
    np.testing.assert_allclose(j["kl_per_dim"], epochs["val_kl_per_dim"][-1], rtol=1e-6)


# --------------------------------------------------------------------------- in process
def test_text_report(capsys: pytest.CaptureFixture, gaussian_run: Path) -> None:
    code, out, err = _cli(capsys, str(gaussian_run), "--iw-samples", "10")
    assert code == 0 and err == ""
    for words in ("validation rows of", "ELBO", "distortion D", "rate R", "IWAE log p(x)",
                  "ELBO gap", "I(X;Z)", "marginal KL", "active units", "verdict: ",
                  "gaussian (continuous)", "log-densities of continuous data (no bits/dim)",
                  "at most log N = 3.00"):
        assert words in out, words
    assert "bits/dim  " not in out  # float data: a density, which has no bits/dim
    table = [line for line in out.splitlines() if line.strip().endswith(("active", "collapsed"))]
    assert len(table) == 4
    # the numbers printed are the JSON's
    code, js, _ = _cli(capsys, str(gaussian_run), "--iw-samples", "10", "--json")
    j = json.loads(js)
    assert f"{j['elbo']:12.4f}" in out and f"{j['iwae']:12.4f}" in out
    assert j["likelihood_kind"] == "continuous" and j["bits_per_dim"] is None
    assert j["mi_ceiling"] == pytest.approx(math.log(20)) and isinstance(j["mi_saturated"], bool)


def test_an_8_bit_gaussian_run_reports_the_discrete_bound(capsys: pytest.CaptureFixture,
                                                          data_file: Path) -> None:
    """8-bit data under a Gaussian: trained and diagnosed on (k + u) / 256, so -log p includes
    D log 256 and bits/dim is positive; diagnose dequantises the validation rows exactly as the
    trainer did (same seed), so its exact rate is the trainer's last validation rate."""
    bytes_file = data_file.parent / "bytes.h5"
    with h5py.File(data_file, "r") as f, h5py.File(bytes_file, "w") as g:
        g["x"] = np.rint(f["x"][()] * 255).astype(np.uint8)
    run = data_file.parent / "gauss8.h5"
    cfg = _gaussian(f"{bytes_file}:x", 3)
    assert start_run(cfg, run, device="cpu").run().status == "finished"
    with RunReader(run) as reader:
        assert reader.dataset_info["likelihood_kind"] == "discrete"
        epochs = reader.epochs()
    assert epochs["mi_ceiling"][-1] == pytest.approx(math.log(20))
    assert set(epochs["mi_saturated"]) <= {0, 1}
    code, js, err = _cli(capsys, str(run), "--json", "--iw-samples", "50")
    assert code == 0 and err == ""
    j = json.loads(js)
    _check_consistent(j)
    assert j["likelihood_kind"] == "discrete"
    assert j["bits_per_dim"] == pytest.approx(-j["iwae"] / (DIM * math.log(2.0)), rel=1e-12)
    assert j["bits_per_dim"] > 0 and j["distortion"] > 0
    assert j["rate"] == pytest.approx(float(epochs["val_rate"][-1]), rel=1e-6)
    # the training curves are on the same discrete scale as the diagnosis
    assert abs(j["elbo"] - float(epochs["val_elbo"][-1])) < 0.05 * abs(j["elbo"])
    code, out, _ = _cli(capsys, str(run), "--iw-samples", "50")
    assert "gaussian (discrete)" in out and f"{j['bits_per_dim']:12.4f}" in out


def test_json_is_seeded_and_options_apply(capsys: pytest.CaptureFixture, gaussian_run: Path,
                                          data_file: Path) -> None:
    args = (str(gaussian_run), "--json", "--iw-samples", "8", "--batch-size", "7")
    a = _cli(capsys, *args)[1]
    assert a == _cli(capsys, *args)[1]
    other = json.loads(_cli(capsys, *args, "--seed", "1")[1])
    assert other["iwae"] != json.loads(a)["iwae"]
    _check_consistent(json.loads(a))
    sub = json.loads(_cli(capsys, *args, "--max-samples", "7")[1])
    assert sub["n_samples"] == 7
    _check_consistent(sub)
    whole = json.loads(_cli(capsys, *args, "--data", f"{data_file}:x")[1])
    assert whole["n_samples"] == N_ROWS
    _check_consistent(whole)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["{dir}/missing.h5"], "no such file"),
        (["{data}"], "not a Latent Explorer run file"),
        (["{run}", "--iw-samples", "0"], "--iw-samples must be at least 1"),
        (["{run}", "--max-samples", "0"], "--max-samples must be at least 1"),
        (["{run}", "--batch-size", "0"], "--batch-size must be at least 1"),
        (["{run}", "--data", "{dir}/nothing.h5"], "nothing.h5"),
        (["{run}", "--data", "{data}:other"], "do not fit the model's data shape"),
        (["{run}", "--iw-samples", "many"], "invalid int value"),
        (["{run}", "--seed", "-1"], "--seed"),
        (["{run}", "--seed", "99999999999999999999999"], "--seed"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys: pytest.CaptureFixture, gaussian_run: Path,
                                         data_file: Path, argv: list[str], words: str) -> None:
    fill = {"dir": str(data_file.parent), "data": str(data_file), "run": str(gaussian_run)}
    argv = [a.format(**fill) for a in argv]
    try:
        code = cli_main(["diagnose", *argv])
    except SystemExit as exc:  # argparse's own errors exit from the parser
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and words in err, err
    assert "Traceback" not in err


def test_a_run_whose_data_changed_is_refused(capsys: pytest.CaptureFixture, gaussian_run: Path,
                                             tmp_path: Path) -> None:
    """The run file names its data; if that file now has fewer rows, say so instead of
    diagnosing the wrong rows."""
    data = tmp_path / "moving.h5"
    _write_data(data)
    run = tmp_path / "run.h5"
    cfg = RunConfig(
        ModelConfig(arch="mlp", data_shape=(DIM,), latent_dim=2, hidden=(8,),
                    likelihood="gaussian", obs_std=0.5),
        ObjectiveConfig(),
        TrainConfig(data=f"{data}:x", epochs=1, batch_size=50, seed=0),
    )
    assert start_run(cfg, run, device="cpu").run().status == "finished"
    with h5py.File(data, "w") as f:
        f["x"] = np.zeros((50, DIM), np.float32)
    code, out, err = _cli(capsys, str(run), "--json")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "changed" in err


def _blow_up(run: Path, factor: float, bias: float = 0.0) -> None:
    """Make a run's stored weights finite but huge, as a diverged run's could be."""
    with h5py.File(run, "r+") as f:
        for name, ds in f["weights"].items():
            ds[...] = ds[()] * factor + (bias if name.endswith("bias") else 0.0)
        f["status"][()] = np.bytes_(b"diverged".ljust(16, b"\0"))
        message = b"training diverged at step 7 (epoch 2): the distortion was nan; kept ..."
        f["message"][()] = np.bytes_(message.ljust(1024, b"\0"))


@pytest.mark.parametrize("factor,bias", [(1e20, 0.0), (1.0, 600.0)])
@pytest.mark.parametrize("as_json", [False, True])
def test_a_run_with_non_finite_values_exits_2_with_one_line(
    capsys: pytest.CaptureFixture, gaussian_run: Path, tmp_path: Path, as_json: bool,
    factor: float, bias: float,
) -> None:
    import shutil
    import warnings

    run = tmp_path / "diverged.h5"
    shutil.copyfile(gaussian_run, run)
    _blow_up(run, factor, bias)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = _cli(capsys, str(run), *(["--json"] if as_json else []))
    assert code == 2 and out == "", out
    assert err.count("\n") == 1 and "non-finite values" in err, err
    assert "diverged at step 7" in err and "nothing to diagnose" in err
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_json_never_holds_nan(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                             gaussian_run: Path) -> None:
    """If a value slipped through non-finite, --json refuses instead of printing NaN."""
    import models.diagnostics as diagnostics

    real = diagnostics.Diagnosis.to_json_dict
    monkeypatch.setattr(diagnostics.Diagnosis, "to_json_dict",
                        lambda self: dict(real(self), marginal_kl=float("nan")))
    code, out, err = _cli(capsys, str(gaussian_run), "--json", "--iw-samples", "2")
    assert code == 2 and out == "" and err.count("\n") == 1 and "non-finite" in err


def test_a_run_trained_on_a_relative_path_is_diagnosed_from_another_directory(
    capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.io.runfile import data_spec

    work = tmp_path / "work"
    work.mkdir()
    _write_data(work / "rel.h5")
    monkeypatch.chdir(work)
    cfg = RunConfig(
        ModelConfig(arch="mlp", data_shape=(DIM,), latent_dim=2, hidden=(8,),
                    likelihood="gaussian", obs_std=0.5),
        ObjectiveConfig(),
        TrainConfig(data="rel.h5:x", epochs=1, batch_size=50, seed=0),
    )
    assert start_run(cfg, "run.h5", device="cpu").run().status == "finished"
    monkeypatch.chdir(tmp_path)
    with RunReader(work / "run.h5") as r:
        assert r.config.train.data == f"{work / 'rel.h5'}:x"  # stored absolute
        assert r.dataset_info["spec"] == "rel.h5:x"  # as typed: what older files relied on
        assert data_spec(r) == f"{work / 'rel.h5'}:x"
    code, out, err = _cli(capsys, str(work / "run.h5"), "--json", "--iw-samples", "2")
    assert code == 0, err
    assert json.loads(out)["n_samples"] > 0


def test_data_spec_of_other_data_sets_is_the_stored_spec(gaussian_run: Path) -> None:
    from models.io.runfile import data_spec

    with RunReader(gaussian_run) as r:
        info = dict(r.dataset_info)
        assert data_spec(r) == f"{info['file']}:{info['array']}"
        r.dataset_info = {"spec": "shapes:32", "source": "shapes"}
        assert data_spec(r) == "shapes:32"
