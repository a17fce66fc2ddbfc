"""Training: the events a run reports (and its status), the trainer, its devices and batch sources.

The events are torch-free; the trainer's names are imported from ``models.training.trainer`` on
first use, so code that only listens to events (the app's views, a sweep's driver) loads no torch.
"""

from models.data.preprocessing import MAX_VAL_SAMPLES, VAL_BINARIZE_SEED, bernoulli_bytes
from models.training.events import (
    Callback, CheckpointEvent, EpochEvent, Event, FinishedEvent, PauseEvent, RunStatus, StartEvent,
    StepEvent,
)

_TRAINER_NAMES = ("EVAL_BATCH", "VAL_NOISE_SEED", "Trainer", "prepare_run")
_DEVICE_NAMES = ("default_device", "resolve_device")

__all__ = [
    "Callback", "CheckpointEvent", "EpochEvent", "Event", "FinishedEvent", "MAX_VAL_SAMPLES",
    "PauseEvent", "RunStatus", "StartEvent", "StepEvent", "VAL_BINARIZE_SEED", "bernoulli_bytes",
    *_TRAINER_NAMES, *_DEVICE_NAMES,
]


def __getattr__(name: str):  # PEP 562: the trainer (and torch) load when first asked for
    if name in _TRAINER_NAMES:
        from models.training import trainer

        return getattr(trainer, name)
    if name in _DEVICE_NAMES:
        from models.training import devices

        return getattr(devices, name)
    raise AttributeError(f"module 'models.training' has no attribute {name!r}")
