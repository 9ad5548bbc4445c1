"""``gluon-inception train`` and ``examples/train_imagenet.py``: the training engine on the command line.

Both take the same flags (:func:`gluon_inception.training.config.add_arguments`).
"""
import sys

from ..training import config_from_args, list_recipes, run_training
from ..training.config import add_arguments
from .main import ArgumentParser


def configure_parser(parser):
    add_arguments(parser)


def main(args):
    if args.list_recipes:
        print(format_recipes())
        return 0
    run_training(config_from_args(args))  # returns the final evaluation, which is not an exit status
    return 0


def format_recipes():
    """The shipped recipes, one per line, for ``--list-recipes``."""
    recipes = list_recipes()
    width = max(len(name) for name in recipes)
    return "\n".join("%-*s  %s" % (width, name, text) for name, text in recipes.items())


def parse_args(argv=None, prog=None):
    """Parse a training command line into a finalized :class:`TrainConfig`.

    ``--list-recipes`` prints the recipes and exits.
    """
    parser = ArgumentParser(
        prog=prog,
        description="Train GoogLeNet with Horovod (horovodrun -np N ...) or in a single process.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.list_recipes:
        print(format_recipes())
        sys.exit(0)
    return config_from_args(args)

