"""What a sweep is: a base configuration and one or two settings that vary, and the runs they make.

A *setting* is a named knob of :class:`~models.config.RunConfig` that a sweep may vary: ``beta``,
``latent_dim``, ``free_bits``, ``warmup`` (KL warm-up steps) or ``seed`` (see :data:`SETTINGS`).
:class:`SweepSpec` holds the base configuration and the values of each varied setting; its runs
are the product of those values, in the order given (the first setting outermost), each an
ordinary run configuration with a file name made of its settings (``beta0.25_seed1.h5``).

Everything a user can get wrong (an unknown setting, an empty or repeated list, a value the
configuration refuses, three settings) raises :class:`~models.errors.ConfigError` with one line.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from models.config import RunConfig
from models.errors import ConfigError, LatentExplorerError

#: A sweep varies at most this many settings (a frontier, optionally repeated over seeds).
MAX_VARIED = 2


def log_spaced(low: float, high: float, n: int) -> tuple[float, ...]:
    """``n`` values from ``low`` to ``high`` with equal ratios, rounded to 6 significant digits."""
    if not (0 < low <= high) or n < 1:
        raise ConfigError(f"log_spaced needs 0 < low <= high and n >= 1, not {low}, {high}, {n}")
    if n == 1:
        return (float(low),)
    ratio = (high / low) ** (1.0 / (n - 1))
    return tuple(float(f"{low * ratio**i:.6g}") for i in range(n))


#: The beta values of a sweep that names none: 0.25 to 16, a factor of 4 apart.
DEFAULT_BETAS = log_spaced(0.25, 16.0, 4)


def _objective(field: str) -> Callable[[RunConfig, Any], RunConfig]:
    def apply(config: RunConfig, value: Any) -> RunConfig:
        return dataclasses.replace(config, objective=dataclasses.replace(config.objective, **{field: value}))

    return apply


def _model(field: str) -> Callable[[RunConfig, Any], RunConfig]:
    def apply(config: RunConfig, value: Any) -> RunConfig:
        return dataclasses.replace(config, model=dataclasses.replace(config.model, **{field: value}))

    return apply


def _train(field: str) -> Callable[[RunConfig, Any], RunConfig]:
    def apply(config: RunConfig, value: Any) -> RunConfig:
        return dataclasses.replace(config, train=dataclasses.replace(config.train, **{field: value}))

    return apply


@dataclass(frozen=True)
class Setting:
    """A setting a sweep can vary: its name, the type of its values, how it changes a config, and
    how to read it back from one (``read``)."""

    name: str
    kind: type
    apply: Callable[[RunConfig, Any], RunConfig]
    read: Callable[[RunConfig], Any]
    description: str


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("beta", float, _objective("beta"), lambda c: c.objective.beta, "weight of the KL term"),
        Setting("latent_dim", int, _model("latent_dim"), lambda c: c.model.latent_dim, "latent size"),
        Setting("free_bits", float, _objective("free_bits"), lambda c: c.objective.free_bits,
                "per-dimension KL floor (nats)"),
        Setting("warmup", int, _objective("warmup_steps"), lambda c: c.objective.warmup_steps,
                "KL warm-up steps"),
        Setting("seed", int, _train("seed"), lambda c: c.train.seed, "random seed"),
    )
}


def format_value(value: Any) -> str:
    """A setting's value as written in names and tables: ``0.25``, ``16``, ``1e-05``."""
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: ``settings`` maps each varied setting to its value here."""

    name: str  # "beta=0.25 seed=1": for people
    file: str  # "beta0.25_seed1.h5": in the sweep's folder
    settings: dict[str, Any]
    config: RunConfig


class SweepSpec:
    """A base configuration and the values of the one or two settings that vary.

    Parameters
    ----------
    base
        The configuration every run starts from.
    varied
        Setting name -> values, e.g. ``{"beta": [0.25, 1, 4, 16], "seed": [0, 1]}``; names from
        :data:`SETTINGS`, each list non-empty and without repeats. Empty: beta over
        :data:`DEFAULT_BETAS`.
    """

    def __init__(self, base: RunConfig, varied: Mapping[str, Sequence[Any]] | None = None) -> None:
        varied = dict(varied or {}) or {"beta": DEFAULT_BETAS}
        unknown = [name for name in varied if name not in SETTINGS]
        if unknown:
            raise ConfigError(
                f"unknown sweep setting {unknown[0]!r}: a sweep varies {', '.join(SETTINGS)}"
            )
        if len(varied) > MAX_VARIED:
            raise ConfigError(
                f"a sweep varies one or two settings, not {len(varied)} ({', '.join(varied)})"
            )
        self.base = base
        self.varied: dict[str, tuple[Any, ...]] = {}
        for name, values in varied.items():
            self.varied[name] = _checked_values(SETTINGS[name], values)
        self._runs = [self._plan(combo) for combo in itertools.product(*self.varied.values())]

    def _plan(self, combo: tuple[Any, ...]) -> PlannedRun:
        config = self.base
        settings = dict(zip(self.varied, combo))
        for name, value in settings.items():
            try:
                config = SETTINGS[name].apply(config, value)
            except LatentExplorerError as exc:
                raise ConfigError(f"{name} = {format_value(value)}: {exc}") from None
        label = " ".join(f"{n}={format_value(v)}" for n, v in settings.items())
        file = "_".join(f"{n}{format_value(v)}" for n, v in settings.items()) + ".h5"
        return PlannedRun(name=label, file=file, settings=settings, config=config)

    @property
    def runs(self) -> list[PlannedRun]:
        """The runs, the first varied setting outermost."""
        return list(self._runs)

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base.to_dict(), "varied": {k: list(v) for k, v in self.varied.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SweepSpec:
        try:
            return cls(RunConfig.from_dict(d["base"]), d["varied"])
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"not a sweep description ({type(exc).__name__}: {exc})") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SweepSpec) and self.to_dict() == other.to_dict()

    def describe(self) -> str:
        """``beta 0.25, 1, 4, 16 x seed 0, 1``: the varied settings, for messages."""
        return " x ".join(f"{n} {', '.join(map(format_value, v))}" for n, v in self.varied.items())


def _checked_values(setting: Setting, values: Sequence[Any]) -> tuple[Any, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ConfigError(f"{setting.name}: expected a list of values, not {values!r}")
    if len(values) == 0:
        raise ConfigError(f"{setting.name}: the list of values is empty")
    out: list[Any] = []
    for v in values:
        if setting.kind is int:
            if isinstance(v, bool) or not isinstance(v, int | float) or v != int(v):
                raise ConfigError(f"{setting.name}: {v!r} is not a whole number")
            v = int(v)
        else:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ConfigError(f"{setting.name}: {v!r} is not a finite number")
            v = float(v)
        if v in out:
            raise ConfigError(f"{setting.name}: {format_value(v)} is listed twice")
        out.append(v)
    return tuple(out)
