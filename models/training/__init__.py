"""Training: the events a run reports (and its status), the trainer, its devices and batch sources.

The events are torch-free; the trainer's names are imported from ``models.training.trainer`` on
first use, so code that only listens to events (the app's views, a sweep's driver) loads no torch.
"""

from models.training.events import (
    Callback, CheckpointEvent, EpochEvent, Event, FinishedEvent, PauseEvent, RunStatus, StartEvent,
    StepEvent,
)

_LAZY = {  # name -> the module of this package that defines it (each loads torch)
    "Trainer": "trainer", "prepare_run": "trainer",
    "EVAL_BATCH": "validation", "VAL_NOISE_SEED": "validation",
    "default_device": "devices", "resolve_device": "devices",
}

__all__ = [
    "Callback", "CheckpointEvent", "EpochEvent", "Event", "FinishedEvent", "PauseEvent",
    "RunStatus", "StartEvent", "StepEvent", *_LAZY,
]


def __getattr__(name: str):  # PEP 562: the trainer (and torch) load when first asked for
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"models.training.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'models.training' has no attribute {name!r}")
