"""``gluon-inception train`` and ``examples/train_imagenet.py``: the training engine on the command line.

Both take the same flags (:func:`gluon_inception.training.config.add_arguments`).
"""
import argparse
import os
import sys

from ..checkpoint import CheckpointError
from ..data import PrepareError, RecordFileError
from ..training import ConfigError, TrainingStopped, config_from_args, list_recipes, run_training
from ..training.config import add_arguments


def configure_parser(parser):
    add_arguments(parser)


def main(args):
    if args.list_recipes:
        print(format_recipes())
        return 0
    # run_training returns the final evaluation, not an exit status (sys.exit(dict) would print it, exit 1).
    return run_cli(lambda: run_training(config_from_args(args)) and 0)


def format_recipes():
    """The shipped recipes, one per line, for ``--list-recipes``."""
    recipes = list_recipes()
    width = max(len(name) for name in recipes)
    return "\n".join("%-*s  %s" % (width, name, text) for name, text in recipes.items())


def parse_args(argv=None, prog=None):
    """Parse a training command line into a finalized :class:`TrainConfig`.

    ``--list-recipes`` prints the recipes and exits.
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train GoogLeNet with Horovod (horovodrun -np N ...) or in a single process.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.list_recipes:
        print(format_recipes())
        sys.exit(0)
    return config_from_args(args)


def run_cli(main, *args):
    """Call ``main(*args)`` and turn the errors a user can fix into a message and an exit status.

    Returns
    -------
    int
        ``main``'s result (0 when it returns None); 2 for a bad option, missing data or checkpoint;
        3 when training stopped on purpose (:class:`TrainingStopped`, e.g. a NaN loss).
    """
    # Every rank hits the same error; one copy of the message is enough.
    loud = os.environ.get("HOROVOD_RANK", "0") == "0"
    try:
        return main(*args) or 0
    except TrainingStopped as err:
        if loud:
            print("error: %s" % err, file=sys.stderr, flush=True)
        return err.exit_code
    except (ConfigError, CheckpointError, PrepareError, RecordFileError) as err:
        if loud:
            print("error: %s" % err, file=sys.stderr, flush=True)
        return 2
