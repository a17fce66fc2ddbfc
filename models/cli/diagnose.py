"""``latent-explorer diagnose RUN.h5 [--data SPEC] [--iw-samples K] [--json] [--max-samples N]``.

Diagnoses a trained run on its validation rows (the data set and indices recorded in the run file)
or on the data named with ``--data``: ELBO, distortion, rate, the IWAE estimate of log p(x), the
ELBO gap, bits/dim (discrete data only: see ``models.latent.discrete``), I(X;Z) with its ceiling,
marginal KL, active units, per-dimension KL and activity, and a verdict. ``--json`` prints one JSON object with the stable keys of
``models.diagnostics.JSON_KEYS`` and nothing else on stdout. torch is imported only when the
command runs, so building the CLI's parser stays torch-free.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

import numpy as np

from models.errors import ConfigError, DataError
from models.cli.args import seed_arg


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "diagnose",
        help="rate, distortion, IWAE log-likelihood, active units and collapse of a trained run",
        description="Diagnose a trained run on its validation data (or the data named): ELBO = "
        "-(distortion + rate), the importance-weighted (IWAE) estimate of log p(x) and the ELBO "
        "gap, I(X;Z) and marginal KL, active units, per-dimension KL and activity, and a verdict "
        "in plain words. All values are nats per sample.",
    )
    p.add_argument(
        "run_file", metavar="RUN.h5", help="a run file written by `latent-explorer train`"
    )
    p.add_argument(
        "--data",
        metavar="SPEC",
        help="diagnose on this data set instead of the run's validation rows: mnist, shapes, "
        "shapes:32 or FILE.h5[:path/to/array]",
    )
    p.add_argument(
        "--iw-samples", type=int, default=100, metavar="K",
        help="importance samples per data point for the IWAE bound (default 100)",
    )
    p.add_argument(
        "--max-samples", type=int, metavar="N",
        help="use at most N data rows, drawn at random with --seed (default: all the run's "
        "validation rows; 10000 of a --data set)",
    )
    p.add_argument(
        "--batch-size", type=int, default=128, metavar="N",
        help="data rows per batch (default 128; each is decoded K times)",
    )
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of every random draw, 0 to 2**63 - 1 "
                   "(default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.set_defaults(handler=run)
    return p


def _check_args(args: argparse.Namespace) -> None:
    if args.iw_samples < 1:
        raise ConfigError(f"--iw-samples must be at least 1, not {args.iw_samples}")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, not {args.batch_size}")
    if args.max_samples is not None and args.max_samples < 1:
        raise ConfigError(f"--max-samples must be at least 1, not {args.max_samples}")


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    import torch

    from models.diagnostics import NonFiniteModelError, diagnose, format_report
    from models.io.runfile import RunReader

    device = "cuda" if torch.cuda.is_available() else "cpu"
    with RunReader(args.run_file) as reader:
        config = reader.config
        model = reader.load_model(device=device)
        x, source = _diagnosis_data(args, reader)
        status, message = reader.status, reader.message
        kind = reader.dataset_info.get("likelihood_kind")
        val_elbos = reader.epochs().get("val_elbo")
    try:
        with np.errstate(all="ignore"):
            diagnosis = diagnose(
                model, x, config.objective, iw_samples=args.iw_samples,
                batch_size=args.batch_size, seed=args.seed, likelihood_kind=kind,
                val_elbos=val_elbos,
            )
    except NonFiniteModelError as exc:
        raise NonFiniteModelError(_non_finite_line(args.run_file, str(exc), status, message)) from None
    if args.json:
        try:
            text = json.dumps(diagnosis.to_json_dict(), allow_nan=False)
        except ValueError:  # never print NaN or Infinity, which are not JSON
            raise NonFiniteModelError(
                _non_finite_line(args.run_file, "a diagnosed value was not finite", status, message)
            ) from None
        print(text)
    else:
        print(format_report(diagnosis, args.run_file, source, config.model.data_dim, config))
    return 0


def _non_finite_line(run_file: str, what: str, status: str, message: str) -> str:
    """One line: the weights give non-finite values, and where the run diverged if it did."""
    why = f"{what}"
    if status == "diverged":
        at = message.split(":", 1)[0].replace("training diverged", "the run diverged").strip()
        why += f"; {at}" if at.startswith("the run diverged") else "; the run diverged"
    return f"{run_file}: the model's weights give non-finite values ({why}); nothing to diagnose"


# --------------------------------------------------------------------------- the data
def _diagnosis_data(args: argparse.Namespace, reader: Any) -> tuple[np.ndarray, str]:
    """The model-ready rows to diagnose on, and a line saying what they are.

    The run's validation rows are read as the trainer read them and binarised (Bernoulli
    likelihood) by the trainer's own rule, all of them at once with its fixed seed, so the
    numbers are on the very images the run was validated on; ``--max-samples`` then picks a
    seeded subset. Rows of ``--data`` are subsampled first (at most ``MAX_VAL_SAMPLES`` unless
    ``--max-samples`` says otherwise), then binarised by the same rule.
    """
    from models.data import load_dataset
    from models.training import MAX_VAL_SAMPLES

    cfg = reader.config
    want = tuple(cfg.model.data_shape)
    if args.data:
        dataset = load_dataset(args.data)
        _check_shape(dataset, want)
        limit = MAX_VAL_SAMPLES if args.max_samples is None else args.max_samples
        rows, note = _subset(np.arange(len(dataset)), limit, args.seed)
        x = _model_ready(dataset.read(rows).reshape(len(rows), *want), cfg, reader, dataset)
        return x, f"{note}{len(dataset)} rows of {dataset.name}"
    from models.io.runfile import data_spec

    info = reader.dataset_info
    spec = data_spec(reader)  # absolute for HDF5 files: diagnose works from any directory
    n_stored = info.get("n")
    dataset = load_dataset(spec, max_samples=info.get("max_samples"))
    if n_stored is not None and len(dataset) != int(n_stored):
        raise DataError(
            f"{spec}: has {len(dataset)} rows but had {n_stored} in training; the data "
            "changed since (use --data)"
        )
    _check_shape(dataset, want)
    rows = np.asarray(reader.val_indices, dtype=np.int64)
    if rows.size == 0:
        raise DataError(f"{args.run_file}: the run file records no validation rows; use --data")
    if rows.max() >= len(dataset):
        raise DataError(
            f"{spec}: has {len(dataset)} rows but the run's validation rows go up to "
            f"{int(rows.max())}; the data changed since training (use --data)"
        )
    x = _model_ready(dataset.read(rows).reshape(len(rows), *want), cfg, reader, dataset)
    limit = len(rows) if args.max_samples is None else args.max_samples
    pick, note = _subset(np.arange(len(rows)), limit, args.seed)
    return x[pick], f"{note}{len(rows)} validation rows of {dataset.name}"


def _check_shape(dataset: Any, want: tuple[int, ...]) -> None:
    if math.prod(dataset.sample_shape) != math.prod(want):
        raise DataError(
            f"{dataset.name}: samples of shape {tuple(dataset.sample_shape)} do not fit the "
            f"model's data shape {want}"
        )


def _subset(rows: np.ndarray, limit: int, seed: int) -> tuple[np.ndarray, str]:
    """At most ``limit`` of ``rows``, a sorted seeded random choice; and the words for it."""
    if limit >= len(rows):
        return rows, "all "
    pick = np.random.default_rng(seed).choice(len(rows), size=limit, replace=False)
    return np.sort(rows[pick]), f"{limit} (random, seed {seed}) of "


def _model_ready(x: np.ndarray, cfg: Any, reader: Any, dataset: Any) -> np.ndarray:
    """Binarise for a Bernoulli likelihood, or dequantise 8-bit data for a Gaussian trained on
    dequantised data, exactly as the trainer prepares its validation set."""
    if cfg.model.likelihood != "bernoulli":
        return _dequantized(x, reader, dataset)
    from models.training import VAL_BINARIZE_SEED

    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise DataError(
            f"the data range over [{lo:g}, {hi:g}], but the model's Bernoulli likelihood needs "
            "values in [0, 1]"
        )
    if cfg.train.binarize == "threshold":
        return (x > 0.5).astype(np.float32)
    rng = np.random.default_rng(VAL_BINARIZE_SEED)
    return (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)


def _dequantized(x: np.ndarray, reader: Any, dataset: Any) -> np.ndarray:
    """(k + u) / 256 with the evaluation seed when the run was trained on dequantised bytes."""
    from models.latent.discrete import (
        BYTE_SCALING, LikelihoodKind, dequantize_uint8, unit_to_bytes,
    )

    if reader.dataset_info.get("likelihood_kind") != LikelihoodKind.DISCRETE:
        return x
    if dataset.scaling != BYTE_SCALING:
        raise DataError(
            f"{dataset.name}: holds float values, but the model was trained on dequantised 8-bit "
            "data; diagnose it on 8-bit data"
        )
    return dequantize_uint8(unit_to_bytes(x))
