"""Where a run trains: the default device, a user's device name checked, finiteness on the device."""

from __future__ import annotations

import torch

from models.config import DEVICES
from models.errors import ConfigError

_CHOICES = " or ".join(DEVICES)


def default_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The device a name asks for (None: :func:`default_device`); ConfigError for an unknown
    name, for anything but cpu and cuda, and for cuda on a machine without it."""
    if device is None:
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r}: use {_CHOICES}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda was asked for, but CUDA is not available on this machine")
    if dev.type not in DEVICES:
        raise ConfigError(f"unsupported device {device!r}: use {_CHOICES}")
    return dev


def all_finite(tensors: list[torch.Tensor]) -> bool:
    """Whether every element of the tensors is finite (up to overflow of huge values, which
    counts as divergence too): one host sync, for the sum of their sums."""
    return bool(torch.isfinite(torch.stack([t.detach().sum() for t in tensors]).sum()))
