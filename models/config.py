"""Typed run configuration, saved as JSON beside the weights (in the run file).

Three parts: the model (architecture and likelihood), the objective (beta, warm-up, free bits)
and the optimisation/data settings. Each is a dataclass with ``Literal`` choices and
``to_dict``/``from_dict``; ``RunConfig.to_json``/``from_json`` round-trip the lot.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin

Arch = Literal["mlp", "conv"]
Likelihood = Literal["bernoulli", "gaussian"]
Binarize = Literal["dynamic", "threshold"]
Device = Literal["cpu", "cuda"]
#: The choices of each typed setting, in order (the first is the default), for checks and the CLI.
ARCHS: tuple[str, ...] = get_args(Arch)
LIKELIHOODS: tuple[str, ...] = get_args(Likelihood)
BINARIZATIONS: tuple[str, ...] = get_args(Binarize)
DEVICES: tuple[str, ...] = get_args(Device)
#: Hidden widths of each architecture when none are given (conv: stage channels, then dense).
DEFAULT_HIDDEN: dict[str, tuple[int, ...]] = {"mlp": (512, 256), "conv": (32, 64, 256)}

CONV_SIZES = (28, 32, 64)
#: Seeds are whole numbers 0 <= S < SEED_LIMIT (torch's manual_seed takes a signed 64-bit int).
SEED_LIMIT = 2**63
#: The Gaussian likelihood's log-std is floored here (models.nn.likelihoods); the smallest
#: fixed obs_std is exp of it.
LOG_STD_FLOOR = -7.0
MIN_OBS_STD = math.exp(LOG_STD_FLOOR)


from models.errors import ConfigError  # noqa: E402  (re-exported: models.config.ConfigError)


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, choices))}, not {value!r}")


def check_seed(seed: Any) -> None:
    """ConfigError unless ``seed`` is a whole number in [0, SEED_LIMIT)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < SEED_LIMIT:
        raise ConfigError(f"seed must be a whole number from 0 to 2**63 - 1, not {seed!r}")


@dataclass
class ModelConfig:
    """The VAE: encoder q(z|x) diagonal Gaussian, prior N(0, I), decoder p(x|z).

    ``data_shape`` is one sample's shape: ``(D,)`` for flat data or ``(C, H, W)`` for images.
    ``hidden`` are the MLP's hidden widths (encoder order; the decoder mirrors them) or, for the
    convolutional model, the channels of each stride-2 stage followed by the fully connected width.
    ``obs_std`` fixes the Gaussian likelihood's standard deviation; ``None`` learns it (one
    shared scalar, as in sigma-VAE, Rybkin et al. 2021).
    """

    arch: Arch = "mlp"
    data_shape: tuple[int, ...] = (1, 28, 28)
    latent_dim: int = 10
    hidden: tuple[int, ...] = (512, 256)
    likelihood: Likelihood = "bernoulli"
    obs_std: float | None = None

    def __post_init__(self) -> None:
        self.data_shape = tuple(int(s) for s in self.data_shape)
        self.hidden = tuple(int(h) for h in self.hidden)
        self.validate()

    @property
    def data_dim(self) -> int:
        n = 1
        for s in self.data_shape:
            n *= s
        return n

    def validate(self) -> None:
        _check_choice("arch", self.arch, ARCHS)
        _check_choice("likelihood", self.likelihood, LIKELIHOODS)
        if self.latent_dim < 1:
            raise ConfigError(f"latent_dim must be at least 1, not {self.latent_dim}")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ConfigError(f"hidden widths must be positive, not {self.hidden}")
        if any(s < 1 for s in self.data_shape) or not self.data_shape:
            raise ConfigError(f"data_shape must be positive, not {self.data_shape}")
        if self.obs_std is not None and not self.obs_std > 0:
            raise ConfigError(f"obs_std must be positive, not {self.obs_std}")
        if self.obs_std is not None and not self.obs_std >= MIN_OBS_STD:
            raise ConfigError(
                f"obs_std must be at least exp(-7) = {MIN_OBS_STD:.3g} (the smallest standard "
                f"deviation the Gaussian likelihood uses), not {self.obs_std:g}; rescale the data "
                "instead"
            )
        if self.arch == "conv":
            if len(self.data_shape) != 3:
                raise ConfigError(
                    f"the conv architecture needs images (C, H, W); data shape is {self.data_shape}"
                )
            c, h, w = self.data_shape
            if c not in (1, 3) or h != w or h not in CONV_SIZES:
                raise ConfigError(
                    "the conv architecture takes square images of 28, 32 or 64 pixels with 1 or 3 "
                    f"channels; data shape is {self.data_shape}"
                )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["data_shape"] = list(self.data_shape)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        return cls(**_known(cls, d))


@dataclass
class ObjectiveConfig:
    """What is trained on. The ELBO reported is always the true bound, whatever these are.

    ``beta`` weights the KL; ``warmup_steps`` anneals that weight linearly from 0 to ``beta``;
    ``free_bits`` is the per-dimension KL floor lambda (nats) of Kingma et al. (2016), applied to
    the minibatch-mean KL of each dimension. ``kl_cycles`` M > 0 replaces the warm-up by cyclical
    annealing (Fu et al. 2019): the run's steps in M equal cycles, the weight ramping from 0 to
    ``beta`` over the first fraction ``kl_cycle_ramp`` of each. ``aggressive`` trains the encoder
    aggressively first (He et al. 2019): up to ``aggressive_inner_steps`` encoder updates per
    decoder update until the validation I(X;Z) stops climbing (``models.training.aggressive``).
    """

    beta: float = 1.0
    warmup_steps: int = 0
    free_bits: float = 0.0
    kl_cycles: int = 0
    kl_cycle_ramp: float = 0.5
    aggressive: bool = False
    aggressive_inner_steps: int = 50

    def __post_init__(self) -> None:
        if not self.beta >= 0:
            raise ConfigError(f"beta must be non-negative, not {self.beta}")
        if self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be non-negative, not {self.warmup_steps}")
        if not self.free_bits >= 0:
            raise ConfigError(f"free_bits must be non-negative, not {self.free_bits}")
        if self.kl_cycles < 0:
            raise ConfigError(f"kl_cycles must be non-negative, not {self.kl_cycles}")
        if not 0 < self.kl_cycle_ramp <= 1:
            raise ConfigError(f"kl_cycle_ramp must be in (0, 1], not {self.kl_cycle_ramp}")
        if self.kl_cycles > 0 and self.warmup_steps > 0:
            raise ConfigError(
                "warmup_steps and kl_cycles are two KL schedules; set one of them, not both"
            )
        if not isinstance(self.aggressive, bool):
            raise ConfigError(f"aggressive must be true or false, not {self.aggressive!r}")
        if self.aggressive_inner_steps < 1:
            raise ConfigError(
                f"aggressive_inner_steps must be at least 1, not {self.aggressive_inner_steps}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ObjectiveConfig":
        return cls(**_known(cls, d))


@dataclass
class TrainConfig:
    """Data and optimisation settings.

    ``data`` is ``"mnist"``, ``"shapes"`` or ``"FILE.h5[:path/to/array]"``; ``labels`` an optional
    array path in the same file. ``binarize`` applies to the Bernoulli likelihood only: "dynamic"
    samples x ~ Bernoulli(pixel) afresh for each training batch (and once, with a fixed seed, for the
    validation set), "threshold" uses pixel > 0.5. Either way the data are binary, so the reported
    log-likelihood is a true log-probability.
    """

    data: str = "mnist"
    labels: str | None = None
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    val_fraction: float = 0.1
    binarize: Binarize = "dynamic"
    log_every: int = 10
    max_train_samples: int | None = None

    def __post_init__(self) -> None:
        _check_choice("binarize", self.binarize, BINARIZATIONS)
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, not {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, not {self.batch_size}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, not {self.lr}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in (0, 1), not {self.val_fraction}")
        if self.log_every < 1:
            raise ConfigError(f"log_every must be at least 1, not {self.log_every}")
        check_seed(self.seed)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        return cls(**_known(cls, d))


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.to_dict(),
            "objective": self.objective.to_dict(),
            "train": self.train.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        if not isinstance(d, dict):
            raise ConfigError(f"the configuration must be an object, not {_kind(d)}")
        return cls(
            model=ModelConfig.from_dict(_part(d, "model")),
            objective=ObjectiveConfig.from_dict(_part(d, "objective")),
            train=TrainConfig.from_dict(_part(d, "train")),
        )

    def for_data(self, spec: str, sample_shape: tuple[int, ...]) -> RunConfig:
        """This configuration for a data set as it was opened: ``train.data`` its spec (absolute
        for a file), ``model.data_shape`` its sample shape."""
        cfg = self
        if spec != cfg.train.data:
            cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, data=spec))
        if tuple(sample_shape) != tuple(cfg.model.data_shape):
            model = dataclasses.replace(cfg.model, data_shape=tuple(sample_shape))
            cfg = dataclasses.replace(cfg, model=model)
        return cfg

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"the configuration is not valid JSON: {exc}") from None
        if not isinstance(d, dict):
            raise ConfigError("the configuration must be a JSON object")
        return cls.from_dict(d)


#: Each entry of a list of sizes read from a file (hidden widths, a sample's shape) is at most
#: MAX_SIZE, and the list holds at most MAX_LIST entries: anything larger is not a configuration
#: this program wrote. (The model's parameter count is bounded where it is built from a file.)
MAX_SIZE = 2**31 - 1
MAX_LIST = 64


def _part(d: dict[str, Any], key: str) -> dict[str, Any]:
    value = d.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"the configuration's '{key}' must be an object, not {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return "null" if value is None else f"{type(value).__name__} {value!r}"[:80]


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value has the type a field declares: ints are whole numbers (not booleans)
    that fit 64 bits, floats finite numbers, tuples lists of at most MAX_LIST ints from 1 to
    MAX_SIZE."""
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in get_args(hint))
    if hint is type(None):
        return value is None
    if origin is Literal:
        return isinstance(value, str) and value in get_args(hint)
    if hint is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if hint is int:  # a signed 64-bit integer (a seed may use all of it)
        return isinstance(value, numbers.Integral) and -SEED_LIMIT <= value < SEED_LIMIT
    if hint is float:
        return isinstance(value, numbers.Real) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple:
        return (isinstance(value, list | tuple) and len(value) <= MAX_LIST
                and all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                        and 1 <= v <= MAX_SIZE for v in value))
    return True  # a type this check does not know: the dataclass's own validation decides


def _known(cls: type, d: dict[str, Any]) -> dict[str, Any]:
    """The keys the dataclass knows, each of the type its field declares (ConfigError with one
    line naming the first that is not); a newer file's extra keys are ignored, not fatal."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if f.name not in d:
            continue
        value = d[f.name]
        if not _matches(value, hints[f.name]):
            raise ConfigError(f"{f.name} must be {_type_name(hints[f.name])}, not {_kind(value)}")
        out[f.name] = value
    return out


def _type_name(hint: Any) -> str:
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(h) for h in get_args(hint))
    if origin is tuple:
        return f"a list of at most {MAX_LIST} whole numbers from 1 to {MAX_SIZE}"
    if origin is Literal:
        return "one of " + ", ".join(map(str, get_args(hint)))
    names = {int: "a whole number (64-bit)", float: "a finite number", str: "a string",
             bool: "true or false", type(None): "null"}
    return names.get(hint, str(hint))
