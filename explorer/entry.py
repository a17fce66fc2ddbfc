"""The ``latent-explorer`` entry point: no arguments opens the GUI, a subcommand runs the CLI.

The CLI path imports no Qt, so it works on a server without a display.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and not argv[0].startswith("-") and not argv[0].endswith((".h5", ".hdf5", ".onnx")):
        from models.cli import main as cli_main

        sys.exit(cli_main(argv))
    if argv and argv[0] in ("-h", "--help"):
        from models.cli import main as cli_main

        sys.exit(cli_main(argv))
    from explorer.app import main as gui_main

    sys.exit(gui_main(argv))
