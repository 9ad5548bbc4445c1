"""The ``gluon-inception`` console script: one module per subcommand, :func:`main` dispatches."""
from .main import COMMANDS, build_parser, main, run

__all__ = ["COMMANDS", "build_parser", "main", "run"]
