"""The trainer: events, honest metrics, binarisation, reproducibility, control, divergence."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from models.config import ModelConfig, ObjectiveConfig
from models.data import load_dataset
from models.errors import ConfigError, DataError, RunFileError
from models.nn.objectives import elbo_terms, kl_weight
from models.io.run_callback import RunFileCallback, start_run
from models.io.runfile import RunReader
from models.data import VAL_BINARIZE_SEED, bernoulli_bytes
from models.training import (
    VAL_NOISE_SEED,
    EpochEvent,
    FinishedEvent,
    StepEvent,
    Trainer,
    prepare_run,
)

from train_helpers import one_thread  # noqa: F401  (fixture)
from train_helpers import SIZE, tiny_config, write_tiny_h5

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> str:
    return write_tiny_h5(str(tmp_path_factory.mktemp("data") / "tiny.h5"))


def _train(cfg, run_path=None) -> tuple[Trainer, list, FinishedEvent]:
    """Train on the CPU, collecting the events; with ``run_path``, writing that run file."""
    events: list = []
    if run_path is None:
        trainer = Trainer.from_config(cfg, device="cpu", callbacks=[events.append])
    else:
        trainer = start_run(cfg, run_path, device="cpu", callbacks=[events.append])
    fin = trainer.run()
    return trainer, events, fin


def test_events_come_in_order_with_the_true_elbo(spec, tmp_path):
    cfg = tiny_config(spec, epochs=2, log_every=2)
    trainer, events, fin = _train(cfg, run_path=tmp_path / "run.h5")
    steps = [e for e in events if isinstance(e, StepEvent)]
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert isinstance(events[-1], FinishedEvent) and sum(isinstance(e, FinishedEvent) for e in events) == 1
    assert fin.status == "finished" and fin.epochs_done == 2
    n_train = 72  # 96 rows, a quarter held out
    assert trainer.n_train == n_train and trainer.n_val == 24
    assert trainer.total_steps == 2 * 5 == fin.step  # ceil(72 / 16) per epoch
    assert [e.step for e in steps] == [2, 4, 5, 6, 8, 10]  # every 2 steps and at epoch ends
    assert [e.epoch for e in epochs] == [1, 2] and [e.step for e in epochs] == [5, 10]
    for e in steps:
        assert e.rate == pytest.approx(e.kl_per_dim.sum()) and e.kl_per_dim.shape == (3,)
        assert e.elbo == pytest.approx(-(e.distortion + e.rate))
        assert e.samples_per_s > 0 and e.lr == cfg.train.lr and e.beta == 1.0
    for e in epochs:
        assert e.val_elbo == pytest.approx(-(e.val_distortion + e.val_rate))
        assert e.train_elbo == pytest.approx(-(e.train_distortion + e.train_rate))
        assert e.val_rate == pytest.approx(e.val_kl_per_dim.sum())
        assert e.mutual_info + e.marginal_kl == pytest.approx(e.val_rate)
        assert e.activity_per_dim.shape == (3,) and 0 <= e.active_units <= 3
        assert e.verdict and e.seconds > 0
    # events and file agree
    with RunReader(tmp_path / "run.h5") as r:
        assert r.status == "finished" and r.weights_step == 10
        s, ep = r.steps(), r.epochs()
        assert s["step"].tolist() == [2, 4, 5, 6, 8, 10]
        np.testing.assert_allclose(s["elbo"], [e.elbo for e in steps])
        np.testing.assert_allclose(s["kl_per_dim"], np.stack([e.kl_per_dim for e in steps]))
        np.testing.assert_allclose(ep["val_elbo"], [e.val_elbo for e in epochs])
        assert list(ep["verdict"]) == [e.verdict for e in epochs]
        assert r.dataset_info["n_train"] == n_train and len(r.val_indices) == 24
        model = r.load_model()
    for name, tensor in trainer.model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], tensor.cpu(), rtol=0, atol=0)


def test_validation_numbers_are_the_true_elbo_of_the_saved_weights(spec, tmp_path):
    """Recompute the last epoch's validation ELBO from the run file alone: the binarised
    validation rows (fixed seed), the stored weights, the same z draws."""
    objective = ObjectiveConfig(beta=4.0, warmup_steps=7, free_bits=0.5)
    cfg = tiny_config(spec, epochs=1, objective=objective)
    _, events, _ = _train(cfg, run_path=tmp_path / "run.h5")
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert [e.beta for e in steps] == [kl_weight(s - 1, objective) for s in (2, 4, 5)]
    last = [e for e in events if isinstance(e, EpochEvent)][-1]
    with RunReader(tmp_path / "run.h5") as r:
        model = r.load_model()
        data = load_dataset(r.config.train.data)
        x = data.read(r.val_indices)
    rng = np.random.default_rng(VAL_BINARIZE_SEED)
    xb = torch.from_numpy((rng.random(x.shape, dtype=np.float32) < x).astype(np.float32))
    gen = torch.Generator().manual_seed(VAL_NOISE_SEED)
    with torch.no_grad():
        terms = elbo_terms(model, xb, generator=gen)
    assert last.val_distortion == pytest.approx(float(terms.distortion.double().mean()), rel=1e-6)
    assert last.val_rate == pytest.approx(float(terms.rate.double().mean()), rel=1e-5)
    # the trained objective (beta 4, free bits) differs from what is reported
    objective_value = last.val_distortion + 4.0 * np.maximum(last.val_kl_per_dim, 0.5).sum()
    assert -last.val_elbo < objective_value


def test_bernoulli_inputs_are_binary(spec):
    for binarize in ("dynamic", "threshold"):
        seen: list[torch.Tensor] = []
        cfg = tiny_config(spec, epochs=2, binarize=binarize)
        trainer = Trainer.from_config(cfg, device="cpu")
        trainer.model.encoder.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone()))
        trainer.run()
        batches = torch.cat([b.flatten() for b in seen])
        assert set(batches.unique().tolist()) == {0.0, 1.0}
        pixels = trainer.train_data.read(trainer.train_indices)
        if binarize == "threshold":  # the same binary images every epoch
            assert float(batches.mean()) == pytest.approx(float((pixels > 0.5).mean()), abs=1e-6)
        else:  # fresh draws: the mean matches the pixels' in expectation, not their threshold
            assert float(batches.mean()) == pytest.approx(float(pixels.mean()), abs=0.02)
            assert abs(float(batches.mean()) - float((pixels > 0.5).mean())) > 0.05


class _AllTriples:
    """A stand-in bit generator whose bytes, read as (b1, b2, b3) triples the way
    ``bernoulli_bytes`` reads them, run through all 2**24 values once."""

    def random_raw(self, n: int) -> np.ndarray:
        u = np.arange(2**24, dtype=np.uint32)
        triples = np.stack([u >> 16, (u >> 8) & 255, u & 255]).astype(np.uint8)  # b1, b2, b3
        out = np.zeros(8 * n, np.uint8)
        out[: triples.size] = triples.ravel()
        return out.view(np.uint64)


@pytest.mark.parametrize("k", [0, 1, 51, 128, 254, 255])
def test_bernoulli_bytes_probability_is_k_over_255_to_24_bits(k):
    """Over every 24-bit draw, exactly k * 65793 = k (2**24 - 1) / 255 of them give a one."""
    x = bernoulli_bytes(np.full(2**24, k, np.uint8), _AllTriples())
    assert x.dtype == np.bool_ and int(x.sum()) == k * 65793


def test_bernoulli_bytes_draws_fresh_independent_bits():
    bits = np.random.PCG64(3)
    k = np.repeat(np.arange(256, dtype=np.uint8), 4000).reshape(256, 4000)
    a, b = bernoulli_bytes(k, bits), bernoulli_bytes(k, bits)
    p = np.arange(256) / 255
    sigma = np.sqrt(p * (1 - p) / 4000)
    assert np.all(np.abs(a.mean(1) - p) <= 5 * sigma + 1e-12)
    assert not a[0].any() and a[255].all()
    assert (a != b).any()  # a fresh draw each call


def test_uint8_data_binarise_exactly_in_proportion(tmp_path):
    """Bytes k become 1 with probability k/255: a constant image of 51 gives 20% ones."""
    import h5py

    path = tmp_path / "bytes.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.full((64, SIZE, SIZE), 51, dtype=np.uint8))
    seen: list[torch.Tensor] = []
    trainer = Trainer.from_config(tiny_config(f"{path}:x", epochs=3), device="cpu")
    assert trainer.train_data.scaling == "uint8/255"
    trainer.model.encoder.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone()))
    trainer.run()
    ones = torch.cat([b.flatten() for b in seen])
    assert set(ones.unique().tolist()) == {0.0, 1.0}
    assert float(ones.mean()) == pytest.approx(0.2, abs=0.01)


def test_bernoulli_refuses_data_outside_the_unit_interval(tmp_path):
    spec = write_tiny_h5(str(tmp_path / "wide.h5"), lo=-1.0, hi=3.0)
    with pytest.raises(DataError, match="use --likelihood gaussian") as info:
        Trainer.from_config(tiny_config(spec), device="cpu")
    assert "\n" not in str(info.value) and "wide.h5" in str(info.value)
    # training rows out of range, validation rows fine: refused before any run file is made
    train, idx, val_x = prepare_run(tiny_config(spec))
    with pytest.raises(DataError, match="training rows range over"):
        Trainer(tiny_config(spec), train, np.clip(val_x, 0, 1), train_indices=idx, device="cpu",
                callbacks=[RunFileCallback(tmp_path / "run.h5")])
    assert not (tmp_path / "run.h5").exists()
    gauss = ModelConfig(arch="mlp", data_shape=(1, SIZE, SIZE), latent_dim=3, hidden=(32,),
                        likelihood="gaussian")
    _, _, fin = _train(tiny_config(spec, epochs=1, model=gauss))
    assert fin.status == "finished"


def test_same_seed_same_metrics_other_seed_other_metrics(spec, tmp_path):
    def history(seed: int, name: str) -> tuple[dict, dict]:
        _train(tiny_config(spec, epochs=2, seed=seed), run_path=tmp_path / name)
        with RunReader(tmp_path / name) as r:
            return r.steps(), r.epochs()

    s1, e1 = history(5, "a.h5")
    s2, e2 = history(5, "b.h5")
    s3, _ = history(6, "c.h5")
    for key in ("elbo", "distortion", "rate", "kl_per_dim"):
        np.testing.assert_array_equal(s1[key], s2[key])
    for key in ("val_elbo", "val_kl_per_dim", "mutual_info", "train_elbo"):
        np.testing.assert_array_equal(e1[key], e2[key])
    assert not np.array_equal(s1["elbo"], s3["elbo"])


def test_stop_takes_effect_within_one_step(spec, tmp_path):
    holder: dict = {}

    def stop_at_step_3(ev):
        if isinstance(ev, StepEvent) and ev.step == 3:
            holder["trainer"].stop()

    cfg = tiny_config(spec, epochs=50, log_every=1)
    trainer = start_run(cfg, tmp_path / "run.h5", device="cpu", callbacks=[stop_at_step_3])
    holder["trainer"] = trainer
    fin = trainer.run()
    assert fin.status == "stopped" and fin.step == 3 and trainer.step == 3 and fin.epochs_done == 0
    with RunReader(tmp_path / "run.h5") as r:
        assert r.status == "stopped" and "step 3" in r.message
        assert r.steps()["step"].tolist() == [1, 2, 3] and r.weights_step == 3
        r.load_model()


def test_pause_blocks_between_steps_and_resume_continues(spec):
    cfg = tiny_config(spec, epochs=400, log_every=1)
    trainer = Trainer.from_config(cfg, device="cpu")
    paused_at: list[int] = []

    def pause_once(ev):
        if isinstance(ev, StepEvent) and ev.step == 2 and not paused_at:
            trainer.pause()
            paused_at.append(ev.step)

    trainer.add_callback(pause_once)
    result: list = []
    thread = threading.Thread(target=lambda: result.append(trainer.run()))
    thread.start()
    deadline = time.monotonic() + 60
    while not paused_at and time.monotonic() < deadline:
        time.sleep(0.01)
    assert trainer.paused
    time.sleep(0.3)
    assert trainer.step == 2  # no step while paused
    trainer.resume()
    while trainer.step < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert trainer.step >= 6
    trainer.pause()
    time.sleep(0.2)
    frozen = trainer.step
    time.sleep(0.3)
    assert trainer.step == frozen
    trainer.stop()  # stop also ends a pause
    thread.join(60)
    assert not thread.is_alive() and result[0].status == "stopped" and result[0].step == frozen


@pytest.mark.parametrize("log_every", [1, 4])
def test_nan_loss_stops_the_run_and_keeps_the_last_good_weights(spec, tmp_path, log_every):
    bad_step = 6  # the 6th training forward pass returns NaN (epoch 2's first)
    cfg = tiny_config(spec, epochs=5, log_every=log_every)
    trainer = start_run(cfg, tmp_path / "run.h5", device="cpu")
    calls = {"n": 0}
    snapshot: dict = {}

    def before_step(module, args):
        if not module.training:  # validation passes are not training steps
            return
        calls["n"] += 1
        if calls["n"] == bad_step:  # the weights at the start of the bad step: the last good ones
            snapshot.update({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})

    def poison(module, args, output):
        if calls["n"] >= bad_step:
            return output * float("nan")
        return output

    trainer.model.encoder.register_forward_pre_hook(before_step)
    trainer.model.decoder.register_forward_hook(poison)
    fin = trainer.run()
    assert fin.status == "diverged" and fin.step == bad_step - 1
    assert f"step {bad_step}" in fin.message and "distortion" in fin.message
    assert "learning rate" in fin.message
    for name, tensor in trainer.model.state_dict().items():
        torch.testing.assert_close(tensor, snapshot[name], rtol=0, atol=0)
    with RunReader(tmp_path / "run.h5") as r:
        assert r.status == "diverged" and r.message == fin.message
        assert r.weights_step == bad_step - 1
        weights = r.weights()
        assert r.steps()["step"].max() <= bad_step - 1
        assert np.all(np.isfinite(r.steps()["elbo"]))
    for name, arr in weights.items():
        assert np.all(np.isfinite(arr))
        np.testing.assert_array_equal(arr, snapshot[name].numpy())


@pytest.mark.parametrize("log_every", [1, 3])
def test_a_non_finite_gradient_under_a_finite_loss_is_a_divergence(spec, tmp_path, log_every):
    """Step 4's loss is finite but one gradient is infinite. Its update makes the weights
    non-finite: with a sync after every step the check of the weights names step 4 and its
    gradients; otherwise step 5's loss shows it. Nothing non-finite reaches the file."""
    bad_step = 4
    cfg = tiny_config(spec, epochs=3, log_every=log_every)
    trainer = start_run(cfg, tmp_path / "run.h5", device="cpu")
    calls = {"n": 0}

    def count(module, args):
        if module.training:
            calls["n"] += 1

    trainer.model.encoder.register_forward_pre_hook(count)
    bias = trainer.model.decoder.net[-1].bias
    bias.register_hook(lambda g: g * float("inf") if calls["n"] == bad_step else g)
    fin = trainer.run()
    assert fin.status == "diverged" and fin.step == bad_step, fin.message
    if log_every == 1:
        assert f"diverged at step {bad_step} (epoch 1): its gradients were not finite" in fin.message
    else:
        assert f"diverged at step {bad_step + 1} (epoch 1): the distortion was nan" in fin.message
    assert "no weights were kept" in fin.message  # epoch 1 (5 steps) had not ended
    with RunReader(tmp_path / "run.h5") as r:
        assert r.status == "diverged" and r.steps()["step"].max() == bad_step
        assert np.all(np.isfinite(r.steps()["elbo"]))


def test_a_huge_learning_rate_diverges_with_finite_weights(spec, tmp_path):
    gauss = ModelConfig(arch="mlp", data_shape=(1, SIZE, SIZE), latent_dim=3, hidden=(32,),
                        likelihood="gaussian")
    cfg = tiny_config(spec, epochs=200, lr=1e4, model=gauss, log_every=3)
    _, _, fin = _train(cfg, run_path=tmp_path / "run.h5")
    assert fin.status == "diverged" and "lower the learning rate (now 10000)" in fin.message
    with RunReader(tmp_path / "run.h5") as r:
        assert r.status == "diverged"
        if r.weights_step < 0:  # diverged in the first epoch: nothing validated to keep
            assert "no weights were kept" in fin.message
            return
        model = r.load_model()
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_failing_callback_ends_the_run_loudly(spec, tmp_path):
    finished: list = []

    def broken(ev):
        if isinstance(ev, FinishedEvent):
            finished.append(ev)
        elif isinstance(ev, StepEvent) and ev.step == 4:
            raise ZeroDivisionError("plot failed")

    trainer = start_run(tiny_config(spec, epochs=50), tmp_path / "run.h5", device="cpu", callbacks=[broken])
    with pytest.raises(ZeroDivisionError, match="plot failed"):
        trainer.run()
    assert finished and finished[0].status == "error" and "plot failed" in finished[0].message
    assert trainer.step <= 5
    with RunReader(tmp_path / "run.h5") as r:
        assert r.status == "error" and "ZeroDivisionError: plot failed" in r.message


def test_out_of_core_data_train_through_iter_batches(spec, tmp_path):
    data = load_dataset(spec, memory_limit=0)
    assert not data.in_memory
    cfg = tiny_config(spec, epochs=2)
    train_idx = np.arange(64)
    events: list = []
    trainer = Trainer(cfg, data, data.read(np.arange(64, 96)), train_indices=train_idx, device="cpu",
                      callbacks=[events.append], val_indices=np.arange(64, 96))
    seen: list[torch.Tensor] = []
    trainer.model.encoder.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone()))
    fin = trainer.run()
    assert fin.status == "finished" and fin.step == 8
    assert sum(len(b) for b in seen if len(b) <= 16) >= 2 * 64  # both epochs, every row
    assert set(torch.cat([b.flatten() for b in seen]).unique().tolist()) == {0.0, 1.0}
    data.close()
    whole = load_dataset(spec)  # a Dataset as the validation set: every row of it is used
    assert Trainer(cfg, whole, whole, device="cpu").n_val == 96


def test_conv_model_and_prepare_run(spec, tmp_path):
    train, train_idx, val_x = prepare_run(tiny_config(spec, max_train_samples=20))
    assert len(train_idx) == 20 and val_x.shape == (24, 1, SIZE, SIZE) and val_x.dtype == np.float32
    images = write_tiny_h5(str(tmp_path / "images.h5"), n=40, size=32)
    conv = ModelConfig(arch="conv", data_shape=(1, 32, 32), latent_dim=2, hidden=(8, 16))
    trainer = Trainer.from_config(tiny_config(images, epochs=1, model=conv), device="cpu")
    assert trainer.n_train == 30 and trainer.n_val == 10
    assert trainer.run().status == "finished"


def test_bad_setups_raise_one_line_errors(spec, tmp_path):
    existing = tmp_path / "run.h5"
    existing.write_bytes(b"")
    with pytest.raises(RunFileError, match="file exists"):
        start_run(tiny_config(spec), existing, device="cpu")
    wrong = tiny_config(spec, model=ModelConfig(arch="mlp", data_shape=(5,), latent_dim=2, hidden=(4,)))
    train, idx, val_x = prepare_run(wrong)
    with pytest.raises(ConfigError, match="do not fit"):
        Trainer(wrong, train, val_x, train_indices=idx, device="cpu")
    with pytest.raises(RuntimeError, match="runs once"):
        t = Trainer.from_config(tiny_config(spec, epochs=1), device="cpu")
        t.run()
        t.run()


def _huge_lr_after_epoch_1(trainer: Trainer, snapshot: dict):
    def cb(ev):
        if isinstance(ev, EpochEvent) and ev.epoch == 1:
            snapshot.update({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})
            snapshot["_step"] = ev.step
            for g in trainer.optimizer.param_groups:
                g["lr"] = 1e30
    return cb


def test_a_divergence_keeps_the_last_checkpoint_not_the_weights_that_diverged(spec, tmp_path):
    # Epoch 1 trains normally and is checkpointed; then a huge learning rate makes an update
    # whose weights give non-finite values. Those weights must not replace the checkpoint.
    cfg = tiny_config(spec, epochs=3, log_every=1)
    trainer = start_run(cfg, tmp_path / "run.h5", device="cpu")
    snapshot: dict = {}
    trainer.add_callback(_huge_lr_after_epoch_1(trainer, snapshot))
    fin = trainer.run()
    assert fin.status == "diverged"
    saved = snapshot.pop("_step")
    assert f"kept the last checkpoint's weights, from step {saved}" in fin.message
    with RunReader(tmp_path / "run.h5") as r:
        assert r.status == "diverged" and r.weights_step == saved
        model = r.load_model()
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, snapshot[name], rtol=0, atol=0)
    x = torch.from_numpy(trainer._val_raw).bernoulli(generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.isfinite(elbo_terms(model, x).elbo).all()


def test_a_divergence_in_the_first_epoch_keeps_no_weights_and_says_so(spec, tmp_path):
    cfg = tiny_config(spec, epochs=3, log_every=1, lr=1e30)
    _, _, fin = _train(cfg, run_path=tmp_path / "run.h5")
    assert fin.status == "diverged" and "no weights were kept" in fin.message
    with RunReader(tmp_path / "run.h5") as r:
        assert r.weights_step == -1
        with pytest.raises(RunFileError, match="holds no weights yet"):
            r.load_model()


def test_non_finite_validation_is_a_divergence_that_keeps_the_checkpoint(spec, tmp_path):
    cfg = tiny_config(spec, epochs=3)
    trainer = start_run(cfg, tmp_path / "run.h5", device="cpu")
    saved: dict = {}

    def poison_after_epoch_1(ev):
        if isinstance(ev, EpochEvent) and ev.epoch == 1:
            saved["step"] = ev.step

            def nan_in_eval(module, args, output):  # encodings turn NaN, in validation only
                return output if module.training else tuple(o * float("nan") for o in output)

            trainer.model.encoder.register_forward_hook(nan_in_eval)

    trainer.add_callback(poison_after_epoch_1)
    fin = trainer.run()
    assert fin.status == "diverged", fin.message
    assert "validation" in fin.message and f"from step {saved['step']}" in fin.message
    with RunReader(tmp_path / "run.h5") as r:
        assert r.status == "diverged" and r.weights_step == saved["step"] and r.n_epochs == 1


def test_a_divergence_at_the_first_steps_on_huge_data_names_the_data_scale(tmp_path):
    huge = write_tiny_h5(str(tmp_path / "huge.h5"), lo=0.0, hi=1e30)
    gauss = ModelConfig(arch="mlp", data_shape=(1, SIZE, SIZE), latent_dim=3, hidden=(32,),
                        likelihood="gaussian")
    # [faults] refused up front with the range found (issue 16), no longer a divergence
    with pytest.raises(DataError, match=r"range over .*Gaussian likelihood needs values within"):
        _train(tiny_config(huge, model=gauss, log_every=1))
