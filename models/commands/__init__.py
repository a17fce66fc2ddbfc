"""One module per CLI subcommand: ``add_parser(subparsers)`` sets ``handler=run``."""
