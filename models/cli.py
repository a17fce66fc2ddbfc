"""The headless command line: ``latent-explorer train | diagnose | export | inspect | decode``.

Each subcommand lives in ``models/commands/<name>.py`` with ``add_parser(subparsers)`` and
``run(args) -> int``. Errors a user causes (``LatentExplorerError``, a missing file) end the
program with exit status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import LatentExplorerError

COMMANDS = ("train", "diagnose", "export", "inspect", "decode")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other input error
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="latent-explorer",
        description="Train, diagnose and export variational autoencoders. "
        "With no subcommand, opens the desktop app.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"models.commands.{name}")
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except LatentExplorerError as exc:
        print(f"latent-explorer {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        name = exc.filename if exc.filename is not None else ""
        print(f"latent-explorer {args.command}: error: {name}: {exc.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"latent-explorer {args.command}: interrupted", file=sys.stderr)
        return 130
