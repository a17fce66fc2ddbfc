"""The headless command line: ``latent-explorer train | diagnose | export | inspect | decode``.

Each subcommand lives in ``models/cli/<name>.py`` with ``add_parser(subparsers)`` and
``run(args) -> int``. Errors a user causes (``LatentExplorerError``, a missing file) end the
program with exit status 2 and one line on stderr, never a traceback; so does any OSError (a
full disk, a file name too long, a read-only file system), named by its file. When stdout is a
pipe that closes early (``inspect X | head``), the command stops quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from models.errors import LatentExplorerError, error_line

COMMANDS = ("train", "diagnose", "export", "inspect", "decode", "recover", "sweep")


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
        module = importlib.import_module(f"models.cli.{name}")
        module.add_parser(sub)
    return parser


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush of a closed pipe stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured in a test): nothing to do
        pass
    finally:
        os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # a closed pipe (`inspect X | head`) shows up here, not at exit
        return code
    except LatentExplorerError as exc:
        print(f"latent-explorer {args.command}: error: {error_line(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`... | head`): what it did not read is not wanted. Exit quietly,
        # with the status of a program ended by SIGPIPE, as other command-line tools do.
        _quiet_stdout()
        return 128 + 13
    except OSError as exc:  # a missing file, a full disk, a name too long, a read-only file system
        print(f"latent-explorer {args.command}: error: {error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"latent-explorer {args.command}: interrupted", file=sys.stderr)
        return 130
