"""The sweep's plan and folder: settings, values, names, the manifest and its lock."""

from __future__ import annotations

import json
import os

import pytest

from models.errors import ConfigError, RunFileError
from models.sweep.handle import threads_per_run
from models.sweep.manifest import Manifest, RunStatus, lock_folder, prepare_folder
from models.sweep.spec import DEFAULT_BETAS, SweepSpec, log_spaced
from models.sweep.worker import Command, Control


def test_default_is_a_log_spaced_beta_sweep(tiny) -> None:
    spec = SweepSpec(tiny())
    assert DEFAULT_BETAS == (0.25, 1.0, 4.0, 16.0)
    assert [r.settings for r in spec.runs] == [{"beta": b} for b in DEFAULT_BETAS]
    assert [r.config.objective.beta for r in spec.runs] == list(DEFAULT_BETAS)
    assert log_spaced(1, 100, 3) == (1.0, 10.0, 100.0)


def test_two_settings_make_their_product_with_names_and_files(tiny) -> None:
    spec = SweepSpec(tiny(), {"beta": [0.5, 2], "seed": [0, 1]})
    runs = spec.runs
    assert [r.name for r in runs] == ["beta=0.5 seed=0", "beta=0.5 seed=1", "beta=2 seed=0", "beta=2 seed=1"]
    assert [r.file for r in runs][1] == "beta0.5_seed1.h5"
    assert [(r.config.objective.beta, r.config.train.seed) for r in runs] == [(0.5, 0), (0.5, 1), (2.0, 0), (2.0, 1)]
    other = SweepSpec(tiny(), {"latent_dim": [2, 4], "warmup": [0, 10]}).runs[-1].config
    assert (other.model.latent_dim, other.objective.warmup_steps) == (4, 10)
    assert SweepSpec(tiny(), {"free_bits": [0.25]}).runs[0].config.objective.free_bits == 0.25


@pytest.mark.parametrize(
    "varied, words",
    [
        ({"bogus": [1, 2]}, "unknown sweep setting 'bogus'"),
        ({"beta": []}, "beta: the list of values is empty"),
        ({"beta": [1, -1]}, "beta = -1: beta must be non-negative"),
        ({"beta": [1, 1.0]}, "beta: 1 is listed twice"),
        ({"latent_dim": [2, 2.5]}, "latent_dim: 2.5 is not a whole number"),
        ({"latent_dim": [0]}, "latent_dim = 0"),
        ({"beta": [float("nan")]}, "not a finite number"),
        ({"beta": [1, 2], "seed": [0, 1], "free_bits": [0, 1]}, "one or two settings, not 3"),
    ],
)
def test_bad_settings_raise_one_line(tiny, varied, words) -> None:
    with pytest.raises(ConfigError) as info:
        SweepSpec(tiny(), varied)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_manifest_round_trip_atomic_save_and_mismatch(tiny, tmp_path) -> None:
    spec = SweepSpec(tiny(), {"beta": [0.5, 2]})
    folder = prepare_folder(str(tmp_path / "sw"))
    m = Manifest.for_spec(folder, spec)
    m.runs[1].status = RunStatus.INTERRUPTED
    m.save()
    assert sorted(os.listdir(folder)) == ["sweep.json"]  # no temporary file left behind
    d = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert [r["status"] for r in d["runs"]] == ["pending", "interrupted"]
    again = Manifest.for_spec(folder, SweepSpec.from_dict(d["sweep"]))
    assert [r.status for r in again.runs] == [RunStatus.PENDING, RunStatus.INTERRUPTED]
    with pytest.raises(ConfigError, match="holds another sweep"):
        Manifest.for_spec(folder, SweepSpec(tiny(), {"beta": [0.5, 3]}))
    (tmp_path / "sw" / "sweep.json").write_text("{")
    with pytest.raises(RunFileError, match="not valid JSON"):
        Manifest.load(folder)


def test_folder_that_is_a_file_and_the_lock(tmp_path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(RunFileError, match="is a file, not a folder"):
        prepare_folder(str(tmp_path / "f"))
    folder = prepare_folder(str(tmp_path / "d"))
    with lock_folder(folder):
        with pytest.raises(RunFileError, match="another sweep is running"):
            with lock_folder(folder):
                pass
    with lock_folder(folder):  # released
        pass


def test_threads_split_the_cores() -> None:
    assert threads_per_run(2, cores=2) == 1
    assert threads_per_run(2, reserve_cores=1, cores=9) == 4
    assert threads_per_run(4, cores=2) == 1  # never zero
    assert RunStatus.FINISHED.done and RunStatus.DIVERGED.done
    assert not any(s.done for s in (RunStatus.STOPPED, RunStatus.INTERRUPTED, RunStatus.ERROR))


class _FakeTrainer:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")

    def stop(self) -> None:
        self.calls.append("stop")


def test_control_remembers_commands_until_the_trainer_exists() -> None:
    c = Control()
    c.apply(Command.PAUSE)
    t = _FakeTrainer()
    c.attach(t)
    assert t.calls == ["pause"]
    c.apply("resume")
    c.apply(Command.STOP)
    c.apply(Command.PAUSE)  # after a stop: ignored, or the trainer would wait forever
    assert t.calls == ["pause", "resume", "stop"]
    stopped = Control()
    stopped.apply(Command.STOP)
    t2 = _FakeTrainer()
    stopped.attach(t2)
    assert t2.calls == ["stop"]


def test_the_driver_side_loads_no_torch_and_no_trainer() -> None:
    import subprocess
    import sys

    code = ("import sys, models.sweep.local, models.sweep.runner, models.sweep.ray_backend, models.cli.sweep\n"
            "print('torch' in sys.modules, 'models.training.trainer' in sys.modules)")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
