"""The trainer's numbers for issue 12: 8-bit data dequantised for a Gaussian and reported as the
discrete bound, the MI ceiling per epoch, and a throughput that excludes the callbacks' time.

Times come from a fake clock (no wall-clock assertion): the clock moves only when a callback
"works", so any of that time charged to training shows in samples/s."""

from __future__ import annotations

import math
import types

import h5py
import numpy as np
import pytest

import models.training.meter as meter_module
import models.training.trainer as trainer_module
from models.config import ModelConfig
from models.latent.discrete import EVAL_DEQUANTIZE_SEED, dequantize_uint8
from models.training import EpochEvent, StepEvent, Trainer

from train_helpers import one_thread  # noqa: F401  (fixture)
from train_helpers import SIZE, tiny_config, write_tiny_h5

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> str:
    return write_tiny_h5(str(tmp_path_factory.mktemp("data") / "tiny.h5"))


@pytest.fixture(scope="module")
def byte_spec(tmp_path_factory, spec) -> str:
    path = str(tmp_path_factory.mktemp("bytes") / "bytes.h5")
    with h5py.File(spec.rsplit(":", 1)[0], "r") as f, h5py.File(path, "w") as g:
        g["x"] = np.rint(f["x"][()] * 255).astype(np.uint8)
    return f"{path}:x"


GAUSS = ModelConfig(arch="mlp", data_shape=(1, SIZE, SIZE), latent_dim=3, hidden=(32,),
                    likelihood="gaussian", obs_std=0.1)


def test_callbacks_time_is_not_charged_to_training(spec, monkeypatch):
    clock = types.SimpleNamespace(now=0.0)
    fake = types.SimpleNamespace(perf_counter=lambda: clock.now)
    for module in (trainer_module, meter_module):  # the meter times the intervals
        monkeypatch.setattr(module, "time", fake)
    steps: list[StepEvent] = []

    def slow_callback(ev) -> None:  # a plot redraw of 100 fake seconds
        if isinstance(ev, StepEvent):
            steps.append(ev)
        clock.now += 100.0

    trainer = Trainer.from_config(tiny_config(spec, epochs=2, log_every=2), device="cpu",
                                  callbacks=[slow_callback])
    assert trainer.run().status == "finished"
    assert len(steps) == 6
    # training itself took no fake time: any 100 s charged would give < 1 sample/s
    assert all(e.samples_per_s > 1e6 for e in steps), [e.samples_per_s for e in steps]


def test_8_bit_data_under_a_gaussian_are_dequantised_and_reported_discrete(byte_spec):
    trainer = Trainer.from_config(tiny_config(byte_spec, model=GAUSS, epochs=1), device="cpu")
    assert trainer.dequantize and trainer.likelihood_kind == "discrete"
    events: list = []
    trainer.add_callback(events.append)
    trainer.run()
    # the validation rows: (k + u) / 256 with the evaluation seed, never k / 255
    k = np.rint(trainer._val_raw * 255).astype(np.uint8)
    np.testing.assert_array_equal(trainer._val_dev.cpu().numpy(),
                                  dequantize_uint8(k, EVAL_DEQUANTIZE_SEED))
    # a training batch: inside its bins, and fresh noise each time
    xb = trainer.batches._on_device[:4]
    a, b = trainer.batches._model_input(xb), trainer.batches._model_input(xb)
    kf = xb.float()
    assert bool(((a >= kf / 256) & (a <= (kf + 1) / 256)).all()) and not bool((a == b).all())
    ep = next(e for e in events if isinstance(e, EpochEvent))
    assert ep.likelihood_kind == "discrete"
    # the distortion includes D log 256, so the ELBO bounds a log-probability: -log p >= 0
    d = SIZE * SIZE
    assert ep.val_distortion > 0 and ep.val_elbo < 0
    assert trainer._bin_nats == pytest.approx(d * math.log(256))


def test_float_data_stay_continuous_and_each_epoch_carries_the_mi_ceiling(spec):
    events: list = []
    trainer = Trainer.from_config(tiny_config(spec, model=GAUSS, epochs=2), device="cpu",
                                  callbacks=[events.append])
    assert not trainer.dequantize and trainer.likelihood_kind == "continuous"
    trainer.run()
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert [e.likelihood_kind for e in epochs] == ["continuous"] * 2
    for e in epochs:
        assert e.mi_ceiling == pytest.approx(math.log(trainer.n_val))
        assert isinstance(e.mi_saturated, bool)
        assert 0.0 <= e.mutual_info <= e.val_rate and e.marginal_kl >= 0.0
