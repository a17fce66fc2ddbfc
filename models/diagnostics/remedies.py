"""The collapse remedies a user can try in one click: each one a change of the objective.

:data:`REMEDIES` names them in the order a menu lists them; :func:`apply_remedy` is the one
mapping from a remedy to the configuration of the run that tries it: the parent's configuration,
same seed, with one change of its ``ObjectiveConfig`` (docs/remedies.md):

- ``warmup``: KL warm-up over two epochs (``warmup_steps`` = 2 x steps per epoch; any cyclical
  schedule is dropped, the two schedules exclude each other);
- ``free_bits``: a floor of 0.25 nats per latent dimension;
- ``beta_quarter``: beta / 4;
- ``cyclical``: cyclical annealing with ``kl_cycles`` = 4 (any warm-up is dropped);
- ``aggressive``: aggressive encoder training (He et al. 2019).

Torch-free: the app calls it on the GUI thread.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from models.config import RunConfig
from models.errors import ConfigError

#: Warm-up length of the ``warmup`` remedy, in epochs.
WARMUP_EPOCHS = 2
#: The ``free_bits`` remedy's floor, nats per dimension.
FREE_BITS = 0.25
#: The ``beta_quarter`` remedy divides beta by this.
BETA_DIVISOR = 4.0
#: Cycles of the ``cyclical`` remedy.
KL_CYCLES = 4


@dataclass(frozen=True)
class Remedy:
    """A remedy: its key, the words a menu shows, and what it changes, for a run's label."""

    key: str
    text: str
    change: str


REMEDIES: dict[str, Remedy] = {
    r.key: r
    for r in (
        Remedy("warmup", f"KL warm-up over {WARMUP_EPOCHS} epochs", f"warm-up {WARMUP_EPOCHS} epochs"),
        Remedy("free_bits", f"Free bits {FREE_BITS:g} nats", f"free bits {FREE_BITS:g}"),
        Remedy("beta_quarter", f"Beta / {BETA_DIVISOR:g}", f"beta / {BETA_DIVISOR:g}"),
        Remedy("cyclical", f"Cyclical KL annealing ({KL_CYCLES} cycles)", f"{KL_CYCLES} KL cycles"),
        Remedy("aggressive", "Aggressive encoder training", "aggressive encoder"),
    )
}


def apply_remedy(config: RunConfig, key: str, steps_per_epoch: int) -> RunConfig:
    """``config`` with the remedy ``key`` applied to its objective (everything else, the seed
    included, unchanged). ``steps_per_epoch`` (at least 1) sizes the warm-up."""
    if key not in REMEDIES:
        raise ConfigError(f"unknown remedy {key!r}: one of {', '.join(REMEDIES)}")
    obj = config.objective
    if key == "warmup":
        obj = dataclasses.replace(obj, warmup_steps=WARMUP_EPOCHS * max(1, int(steps_per_epoch)),
                                  kl_cycles=0)
    elif key == "free_bits":
        obj = dataclasses.replace(obj, free_bits=FREE_BITS)
    elif key == "beta_quarter":
        obj = dataclasses.replace(obj, beta=obj.beta / BETA_DIVISOR)
    elif key == "cyclical":
        obj = dataclasses.replace(obj, kl_cycles=KL_CYCLES, warmup_steps=0)
    else:
        obj = dataclasses.replace(obj, aggressive=True)
    return dataclasses.replace(config, objective=obj)
