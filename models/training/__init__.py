"""Training: the events a run reports, and the trainer that runs minibatch epochs and emits them.

The events are torch-free; the trainer's names are imported from ``models.training.trainer`` on
first use, so code that only listens to events (the app's views, a sweep's driver) loads no torch.
"""

from models.training.events import Callback, EpochEvent, Event, FinishedEvent, StepEvent

_TRAINER_NAMES = (
    "EVAL_BATCH", "MAX_VAL_SAMPLES", "VAL_BINARIZE_SEED", "VAL_NOISE_SEED", "Trainer",
    "bernoulli_bytes", "default_device", "prepare_run",
)

__all__ = ["Callback", "EpochEvent", "Event", "FinishedEvent", "StepEvent", *_TRAINER_NAMES]


def __getattr__(name: str):  # PEP 562: the trainer (and torch) load when first asked for
    if name in _TRAINER_NAMES:
        from models.training import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'models.training' has no attribute {name!r}")
