"""``latent-explorer recover RUN.h5``: make a run file left open by a killed writer a normal HDF5
file (status ``interrupted``), atomically; a file that needs nothing is left alone."""

from __future__ import annotations

import argparse

from models.io.recover import recover


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "recover",
        help="make a run file left open by a killed training process readable by any HDF5 tool",
        description="A training run killed without closing its file (kill -9, a crash, a power "
        "cut) leaves it marked open for write: other HDF5 tools refuse it. recover rewrites it "
        "as a normal HDF5 file holding everything that was flushed, with status 'interrupted'. "
        "The original is replaced only once the copy is verified; a file whose writer still "
        "runs is refused; a file that needs nothing is left alone.",
    )
    p.add_argument("run", metavar="RUN.h5")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    print(recover(args.run).line)
    return 0
