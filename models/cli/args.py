"""Argument types shared by the subcommands (the seed, checked against the config's limit)."""

from __future__ import annotations

import argparse

from models.config import SEED_LIMIT


def seed_arg(text: str) -> int:
    """argparse type of --seed: a whole number in [0, 2**63)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"{value} is not in 0 .. 2**63 - 1")
    return value
