"""``latent-explorer diagnose --encoder ENC.onnx --decoder DEC.onnx --data SPEC [options]``.

A model trained elsewhere, given as two ONNX files, diagnosed with onnxruntime and numpy only
(torch is never imported): the report and the JSON keys of ``diagnose RUN.h5``. A pair we
exported needs only one of the two files (the other is found beside it) and no options.
Progress goes to stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import json
import sys

from models.errors import ConfigError


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The pair's options of the ``diagnose`` parser."""
    g = p.add_argument_group("a model given as two ONNX files (instead of RUN.h5)")
    g.add_argument("--encoder", metavar="ENC.onnx",
                   help="encoder x -> (mu, logvar); a file we exported finds its decoder itself")
    g.add_argument("--decoder", metavar="DEC.onnx",
                   help="decoder z -> logits, probabilities or the mean of p(x|z)")
    g.add_argument("--likelihood", choices=("bernoulli", "gaussian"),
                   help="p(x|z) of a pair without our metadata")
    g.add_argument("--decoder-output", choices=("logits", "probabilities", "mean"),
                   help="what a Bernoulli decoder outputs (logits are the numerically sound "
                   "choice); default: from the metadata or the output's name")
    g.add_argument("--encoder-scale", choices=("logvar", "log_std", "std"),
                   help="what the encoder's second output is (default: its name says, else logvar)")
    g.add_argument("--obs-std", type=float, metavar="S",
                   help="sigma of a Gaussian likelihood (else a second decoder output or metadata)")
    g.add_argument("--labels", metavar="LABELS",
                   help="labels of a .npy/.npz data set: an array of the .npz, or a .npy file")


def wanted(args: argparse.Namespace) -> bool:
    """True when the command names a pair; a command naming neither a run nor a pair is refused."""
    pair = bool(args.encoder or args.decoder)
    if pair and args.run_file:
        raise ConfigError(f"{args.run_file}: give a run file or --encoder/--decoder, not both")
    if not pair and not args.run_file:
        raise ConfigError("name a run file (RUN.h5), or a model as --encoder ENC.onnx "
                          "--decoder DEC.onnx with --data SPEC")
    if not pair and (args.labels or args.likelihood or args.decoder_output or args.encoder_scale
                     or args.obs_std is not None):
        raise ConfigError("--labels, --likelihood, --decoder-output, --encoder-scale and "
                          "--obs-std apply to --encoder/--decoder only")
    return pair


def _progress():
    stream = sys.stderr  # looked up now: tests and callers may have replaced it
    if not stream.isatty():
        return None

    def show(done: int, total: int) -> None:
        end = "\n" if done >= total else ""
        stream.write(f"\r  diagnosing: {done} of {total} rows{end}")
        stream.flush()

    return show


def run(args: argparse.Namespace) -> int:
    from models.diagnostics.report import kind_words, report_body
    from models.data import load_dataset
    from models.io.onnx_pair import PairOptions
    from models.io.onnx_partner import open_pair
    from models.io.pair_diagnosis import (
        MAX_ROWS, dequantizes, diagnose_pair, diagnosis_json, prepare_rows,
    )

    if not args.data:
        raise ConfigError("--data SPEC is needed with --encoder/--decoder (the rows to diagnose)")
    options = PairOptions(likelihood=args.likelihood, decoder_output=args.decoder_output,
                          encoder_scale=args.encoder_scale, obs_std=args.obs_std)
    pair = open_pair(args.encoder, args.decoder, options)
    dataset = load_dataset(args.data, labels=args.labels)
    limit = MAX_ROWS if args.max_samples is None else args.max_samples
    x, _, source = prepare_rows(pair, dataset, max_samples=limit, seed=args.seed)
    d = diagnose_pair(pair, x, iw_samples=args.iw_samples, batch_size=args.batch_size,
                      seed=args.seed, progress=_progress(), dequantized=dequantizes(pair, dataset))
    if args.json:
        print(json.dumps(diagnosis_json(d), allow_nan=False))
        return 0
    sigma = f", sigma from {pair.sigma_source}" if pair.sigma_source else ""
    head = [
        f"{pair.encoder_path} + {pair.decoder_path}: {source}",
        f"  a model trained elsewhere (objective unknown); likelihood {pair.likelihood} "
        f"({pair.decoder_output}{sigma}); {d.likelihood_kind} data: all values nats per sample, "
        f"{kind_words(d.likelihood_kind)}",
    ]
    print("\n".join(head + report_body(d, len(x[0].reshape(-1)))))
    return 0
