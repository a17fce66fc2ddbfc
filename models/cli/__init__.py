"""The headless command line: one module per subcommand, ``main`` dispatches to them."""

from models.cli.main import COMMANDS, build_parser, main

__all__ = ["COMMANDS", "build_parser", "main"]
