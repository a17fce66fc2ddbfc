"""The two collapse remedies: aggressive encoder training (He et al. 2019) and cyclical KL
annealing (Fu et al. 2019): their exact rules, and that each does what its paper says where the
plain run collapses (same beta, same seed)."""

from __future__ import annotations

import pytest
import torch

from models.config import ModelConfig, ObjectiveConfig, RunConfig, TrainConfig
from models.data import load_dataset
from models.training import EpochEvent, Trainer
from models.training.aggressive import AggressivePhase, inner_loop_done, keeps_climbing

from train_helpers import one_thread  # noqa: F401  (fixture)
from train_helpers import tiny_config, write_tiny_h5

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> str:
    return write_tiny_h5(str(tmp_path_factory.mktemp("data") / "tiny.h5"))


# ----------------------------------------------------------------------------- the exact rules
def test_the_phase_goes_on_while_the_mutual_information_climbs() -> None:
    assert keeps_climbing(None, 0.0)  # the first epoch has nothing to compare with
    assert keeps_climbing(1.0, 1.2)
    assert not keeps_climbing(1.2, 1.2)  # not climbing: the phase ends
    assert not keeps_climbing(1.2, 1.1)


def test_the_phase_ends_at_the_first_epoch_whose_mi_does_not_climb(spec) -> None:
    trainer = Trainer.for_dataset(
        tiny_config(spec, objective=ObjectiveConfig(aggressive=True)), load_dataset(spec, None)
    )
    phase = trainer.aggressive
    assert [phase.keep_going(mi, e) for e, mi in enumerate([0.5, 0.9, 1.4, 1.3, 2.0], 1)] == [
        True, True, True, False, True
    ]
    assert phase.ended_after == 4


def test_the_inner_loop_stops_when_its_loss_stops_improving_or_at_the_cap() -> None:
    assert not inner_loop_done([], 5, 50)
    assert not inner_loop_done([3.0], 10, 50)  # one window: nothing to compare with yet
    assert not inner_loop_done([3.0, 2.5], 20, 50)
    assert inner_loop_done([3.0, 2.5, 2.5], 30, 50)  # no better than the window before
    assert inner_loop_done([3.0, 3.1], 20, 50)
    assert inner_loop_done([3.0], 7, 7)  # the cap


def test_the_inner_loop_updates_the_encoder_only_and_respects_the_cap(spec) -> None:
    cfg = tiny_config(spec, objective=ObjectiveConfig(aggressive=True, aggressive_inner_steps=7))
    trainer = Trainer.for_dataset(cfg, load_dataset(spec, None))
    phase = trainer.aggressive
    enc = [p.detach().clone() for p in phase.encoder_params]
    dec = [p.detach().clone() for p in phase.decoder_params]
    xb, _rows = next(iter(trainer.batches.epoch(1)))
    steps = phase.train_encoder(xb, 0)
    assert 1 <= steps <= 7 and phase.encoder_steps == steps and phase.decoder_steps == 1
    assert all(torch.equal(a, b) for a, b in zip(dec, phase.decoder_params))
    assert not all(torch.equal(a, b) for a, b in zip(enc, phase.encoder_params))
    state = trainer.optimizer.state
    assert all(int(state[p]["step"]) == steps for p in phase.encoder_params)


def _adam_steps(trainer: Trainer, params) -> set[int]:
    return {int(trainer.optimizer.state[p]["step"]) for p in params}


def test_a_decoder_step_leaves_the_encoder_and_the_phase_hands_over_to_plain_steps(
    spec, monkeypatch
) -> None:
    """With one inner step per decoder step, the encoder's Adam steps equal the decoder's in
    the aggressive epoch (the decoder step did not update the encoder); once the phase ends,
    every step updates both, and the inner loop runs no more."""
    monkeypatch.setattr(AggressivePhase, "keep_going", lambda self, mi, epoch: False)
    cfg = tiny_config(spec, epochs=2, objective=ObjectiveConfig(aggressive=True, aggressive_inner_steps=1))
    trainer = Trainer.for_dataset(cfg, load_dataset(spec, None))
    phase = trainer.aggressive
    seen: list[tuple[set[int], set[int], int]] = []

    def at_epoch(ev) -> None:
        if isinstance(ev, EpochEvent):
            seen.append((_adam_steps(trainer, phase.encoder_params),
                         _adam_steps(trainer, phase.decoder_params), phase.encoder_steps))

    trainer.add_callback(at_epoch)
    trainer.run()
    s = trainer.steps_per_epoch
    assert seen[0] == ({s}, {s}, s)
    assert seen[1] == ({2 * s}, {2 * s}, s)  # epoch 2: plain joint steps only
    assert trainer.aggressive is None


# ----------------------------------------------------------------------------- the papers' claims
def _mnist_run(dataset, objective: ObjectiveConfig, **train) -> EpochEvent:
    settings = dict(data="mnist", epochs=1, batch_size=64, lr=1e-3, seed=0, max_train_samples=2000)
    settings.update(train)
    cfg = RunConfig(
        model=ModelConfig(data_shape=dataset.sample_shape, latent_dim=16, hidden=(256, 128)),
        objective=objective,
        train=TrainConfig(**settings),
    )
    epochs: list[EpochEvent] = []
    Trainer.for_dataset(cfg, dataset, device="cpu",
                        callbacks=[lambda e: epochs.append(e) if isinstance(e, EpochEvent) else None]).run()
    return epochs[-1]


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist", None)


def test_aggressive_encoder_training_escapes_the_collapse_of_the_plain_run(mnist) -> None:
    """He et al.: the lagging encoder lets the posterior collapse early; catching it up first
    keeps the code informative. MLP VAE (16 latents, 256-128) on 2000 MNIST rows, beta 3, seed 0,
    one epoch (measured: plain 0 active units, I(X;Z) 0.03 nats; aggressive with at most 10
    encoder updates per decoder update, 14 active, I(X;Z) 0.46)."""
    plain = _mnist_run(mnist, ObjectiveConfig(beta=3.0))
    remedy = _mnist_run(mnist, ObjectiveConfig(beta=3.0, aggressive=True, aggressive_inner_steps=10))
    assert plain.active_units <= 2 and plain.mutual_info < 0.1  # the plain run has collapsed
    assert remedy.active_units >= plain.active_units + 8
    assert remedy.mutual_info > plain.mutual_info + 0.25


@pytest.mark.slow
def test_cyclical_annealing_keeps_more_information_than_the_plain_run(mnist) -> None:
    """Fu et al.: restarting the KL weight at 0 lets the encoder learn informative codes the
    constant weight suppresses, and they survive the return to beta. The same MLP VAE, beta 4,
    seed 0, 4 epochs of 2000 rows at batch 32 and lr 2e-3, 252 steps (measured: plain 14 active
    units, I(X;Z) 0.85 nats; M = 2 cycles, R = 0.5: 16 active, I(X;Z) 1.16)."""
    train = dict(epochs=4, batch_size=32, lr=2e-3)
    plain = _mnist_run(mnist, ObjectiveConfig(beta=4.0), **train)
    remedy = _mnist_run(mnist, ObjectiveConfig(beta=4.0, kl_cycles=2, kl_cycle_ramp=0.5), **train)
    assert remedy.mutual_info > plain.mutual_info + 0.15
    assert remedy.active_units >= plain.active_units


# ----------------------------------------------------------------------------- the command line
def test_train_options_reach_the_objective(spec) -> None:
    from models.cli.main import build_parser
    from models.cli.train import build_config

    args = build_parser().parse_args(
        ["train", "--out", "x.h5", "--kl-cycles", "4", "--kl-cycle-ramp", "0.25", "--aggressive",
         "--aggressive-inner-steps", "20"]
    )
    obj = build_config(args, load_dataset(spec, None)).objective
    assert (obj.kl_cycles, obj.kl_cycle_ramp, obj.aggressive, obj.aggressive_inner_steps) == (
        4, 0.25, True, 20
    )
    plain = build_config(build_parser().parse_args(["train", "--out", "x.h5"]), load_dataset(spec, None))
    assert plain.objective == ObjectiveConfig()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--kl-cycle-ramp", "1.5"], "at most 1"),
        (["--kl-cycle-ramp", "0"], "greater than 0"),
        (["--kl-cycles", "-1"], "below the minimum 0"),
        (["--aggressive-inner-steps", "0"], "below the minimum 1"),
        (["--kl-cycles", "2", "--warmup", "10"], "set one of them, not both"),
    ],
)
def test_bad_remedy_options_exit_2_with_one_line(spec, tmp_path, capsys, extra, message) -> None:
    from models.cli.main import main

    try:
        code = main(["train", "--data", spec, "--out", str(tmp_path / "r.h5"), *extra])
    except SystemExit as exc:  # argparse's own refusal
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and message in err[-1] and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "r.h5").exists()
