"""``latent-explorer export RUN.h5 --decoder DEC.onnx [--encoder ENC.onnx] [--force]``.

Exports a run's decoder (and optionally its encoder) to ONNX with metadata, verifies each file in
onnxruntime against torch, and writes the files atomically and together: both are exported and
verified into temporary files before either is renamed into place. torch is imported only when
the command runs, so building the CLI's parser stays torch-free.
"""

from __future__ import annotations

import argparse
import os

from models.errors import ConfigError, ExportError, file_exists


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export",
        help="export a run's decoder (and encoder) to ONNX",
        description="Export a trained run's decoder, z -> mean of p(x|z), and optionally its "
        "encoder, x -> (mu, logvar), to ONNX with metadata. Each file is checked in onnxruntime "
        "against torch before it is kept; a failed export leaves no file, and with --encoder "
        "the two files are written together or not at all.",
    )
    p.add_argument("run_file", metavar="RUN.h5", help="a run file written by `latent-explorer train`")
    p.add_argument("--decoder", metavar="DEC.onnx", required=True, help="where to write the decoder")
    p.add_argument("--encoder", metavar="ENC.onnx", help="also write the encoder here")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    targets = [args.decoder] + ([args.encoder] if args.encoder else [])
    if args.encoder and os.path.abspath(args.encoder) == os.path.abspath(args.decoder):
        raise ConfigError(f"{args.encoder}: --decoder and --encoder name the same file")
    for path in targets:  # refuse before any work, so no file is written when one would clash
        if not path.endswith(".onnx"):
            raise ConfigError(f"{path}: an ONNX file name should end in .onnx")
        if os.path.exists(path) and not args.force:
            raise file_exists(path, ExportError)

    from models.io.onnx_export import check_target, commit_exports, prepare_export
    from models.io.onnx_metadata import metadata_from_run
    from models.io.runfile import RunReader

    for path in targets:  # directory there and writable, name not too long: before the slow part
        check_target(path, args.force)
    reader = RunReader(args.run_file)
    try:
        model = reader.load_model(device="cpu")
        metadata = metadata_from_run(reader)
        metadata["run_file"] = os.path.basename(args.run_file)
    finally:
        reader.close()
    # All or nothing: both files are exported and verified into temporary files first, then
    # renamed into place together; a failure on either leaves every existing file as it was.
    pending = []
    try:
        for path, role in zip(targets, ("decoder", "encoder")):
            pending.append(prepare_export(model, path, metadata, role, overwrite=args.force))
        reports = commit_exports(pending)
    finally:
        for item in pending:
            item.discard()
    for report in reports:
        print(report.summary())
    return 0
