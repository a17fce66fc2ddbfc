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
from typing import Any

import numpy as np

from models.errors import ConfigError, DataError
from models.cli import diagnose_pair
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
        "run_file", metavar="RUN.h5", nargs="?",  # optional: a pair of ONNX files instead
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
    diagnose_pair.add_arguments(p)  # --encoder/--decoder and their options
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
    if diagnose_pair.wanted(args):  # a model given as two ONNX files, torch-free
        return diagnose_pair.run(args)
    from models.diagnostics import NonFiniteModelError, diagnose, format_report
    from models.io.runfile import RunReader
    from models.training.devices import default_device

    with RunReader(args.run_file) as reader:
        config = reader.config
        model = reader.load_model(device=default_device())
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

    The run's validation rows come from ``models.data.validation_rows`` (read and binarised as
    the trainer did, all at once with its fixed seed, then ``--max-samples`` picks a seeded
    subset). Rows of ``--data`` are subsampled first (at most ``MAX_VAL_SAMPLES`` unless
    ``--max-samples`` says otherwise), then binarised by the same rule.
    """
    from models.data import MAX_VAL_SAMPLES, load_dataset, model_ready, validation_rows
    from models.data.preprocessing import check_fits, subset

    cfg = reader.config
    if args.data:
        dataset = load_dataset(args.data)
        check_fits(dataset, cfg.model.data_shape)
        limit = MAX_VAL_SAMPLES if args.max_samples is None else args.max_samples
        rows, note = subset(len(dataset), limit, args.seed)
        x = dataset.read(rows).reshape(len(rows), *cfg.model.data_shape)
        return model_ready(x, cfg, dataset.name, dequantized=_dequantized(reader, dataset)), f"{note}{len(dataset)} rows of {dataset.name}"
    if np.asarray(reader.val_indices).size == 0:
        raise DataError(f"{args.run_file}: the run file records no validation rows; use --data")
    got = validation_rows(reader, max_samples=args.max_samples, seed=args.seed)
    return got.x, got.description


def _dequantized(reader: Any, dataset: Any) -> bool:
    """Whether rows of ``dataset`` must be dequantised for this run: it was trained on
    dequantised 8-bit data (a discrete Gaussian run), and then the data must be 8-bit too."""
    from models.data.preprocessing import trained_dequantized
    from models.latent.discrete import BYTE_SCALING

    if not trained_dequantized(reader):
        return False
    if dataset.scaling != BYTE_SCALING:
        raise DataError(
            f"{dataset.name}: holds float values, but the model was trained on dequantised 8-bit "
            "data; diagnose it on 8-bit data"
        )
    return True
