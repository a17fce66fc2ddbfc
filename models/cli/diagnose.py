"""``latent-explorer diagnose RUN.h5 [--data SPEC] [--iw-samples K] [--json] [--max-samples N]``.

Diagnoses a trained run on its validation rows (the data set and indices recorded in the run file)
or on the data named with ``--data``: ELBO, distortion, rate, the IWAE estimate of log p(x), the
ELBO gap, bits/dim, I(X;Z), marginal KL, active units, per-dimension KL and activity, and a
verdict. ``--json`` prints one JSON object with the stable keys of
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
from models.cli import diagnose_pair  # byo
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
        "run_file", metavar="RUN.h5", nargs="?",  # byo: optional, a pair of ONNX files instead
        help="a run file written by `latent-explorer train` (or --encoder/--decoder instead)",
    )
    p.add_argument(
        "--data",
        metavar="SPEC",
        help="diagnose on this data set instead of the run's validation rows: mnist, shapes, "
        "shapes:32, FILE.h5[:path/to/array], FILE.npy, FILE.npz[:array] or an image folder",
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
    diagnose_pair.add_arguments(p)  # byo: --encoder/--decoder and their options
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
    if diagnose_pair.wanted(args):  # byo: a model given as two ONNX files, torch-free
        return diagnose_pair.run(args)
    import torch

    from models.diagnostics import NonFiniteModelError, diagnose
    from models.io.runfile import RunReader

    device = "cuda" if torch.cuda.is_available() else "cpu"
    with RunReader(args.run_file) as reader:
        config = reader.config
        model = reader.load_model(device=device)
        x, source = _diagnosis_data(args, reader)
        status, message = reader.status, reader.message
    try:
        with np.errstate(all="ignore"):
            diagnosis = diagnose(
                model, x, config.objective, iw_samples=args.iw_samples,
                batch_size=args.batch_size, seed=args.seed,
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
        x = _model_ready(dataset.read(rows).reshape(len(rows), *want), cfg)
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
    x = _model_ready(dataset.read(rows).reshape(len(rows), *want), cfg)
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


def _model_ready(x: np.ndarray, cfg: Any) -> np.ndarray:
    """Binarise for a Bernoulli likelihood exactly as the trainer binarises its validation set."""
    if cfg.model.likelihood != "bernoulli":
        return x
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


# --------------------------------------------------------------------------- the report
def format_report(d: Any, run_file: str, source: str, data_dim: int, config: Any) -> str:
    """The human-readable text ``diagnose`` prints."""
    obj = config.objective
    lines = [
        f"{run_file}: {source}",
        f"  objective: beta {obj.beta:g}, KL warm-up {obj.warmup_steps} steps, "
        f"free bits {obj.free_bits:g} nats; likelihood {config.model.likelihood}; "
        f"all values nats per sample",
    ]
    return "\n".join(lines + report_body(d, data_dim))


def report_body(d: Any, data_dim: int) -> list[str]:  # byo: shared with diagnose_pair
    """The figures, the table per dimension and the verdict, as lines (after a blank one)."""
    log2 = math.log(2.0)
    lines = [
        "",
        f"  ELBO                 {d.elbo:12.4f}   = -(distortion + rate)",
        f"  distortion D         {d.distortion:12.4f}   -E_q[log p(x|z)], "
        f"{d.iw_samples} draws of z",
        f"  rate R               {d.rate:12.4f}   KL(q(z|x) || p(z)), exact",
        f"  IWAE log p(x) >=     {d.iwae:12.4f}   K = {d.iw_samples}",
        f"  ELBO gap             {d.elbo_gap:12.4f}   IWAE - ELBO",
        f"  bits/dim             {-d.iwae / (data_dim * log2):12.4f}   from IWAE "
        f"(ELBO: {-d.elbo / (data_dim * log2):.4f}), {data_dim} dimensions",
        f"  I(X;Z)               {d.mutual_info:12.4f}   mixture estimate, at most "
        f"log N = {math.log(max(d.n_samples, 1)):.2f}",
        f"  marginal KL          {d.marginal_kl:12.4f}   KL(q(z) || p(z)) = R - I(X;Z)",
        f"  active units         {d.active_units:>5d} of {len(d.kl_per_dim)}"
        "   variance of the posterior mean over the data > 0.01",
        "",
        "  dim   KL (nats)   activity   state",
    ]
    collapsed = set(d.collapsed_dims)
    for i, (kl, act) in enumerate(zip(d.kl_per_dim, d.activity_per_dim)):
        state = "collapsed" if i in collapsed else "active"
        lines.append(f"  {i:>3d}  {kl:10.4f}  {act:9.4f}   {state}")
    lines += ["", "verdict: " + d.verdict]
    return lines
