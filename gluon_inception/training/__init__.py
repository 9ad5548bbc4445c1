"""Training GoogLeNet with Horovod: configuration, recipes, schedules, metrics and the engine.

The engine (:class:`Training`) is shared by ``examples/train_imagenet.py`` and
``gluon-inception train``. See ``docs/training.md`` for the recipes and the reasoning behind them.
"""

import argparse
import os
import sys

from .config import (
    ConfigError,
    TrainConfig,
    add_arguments,
    config_from_args,
    list_recipes,
    load_recipe,
    merge_for_resume,
)
from .engine import DatasetSource, NonFiniteLoss, Training, TrainingStopped, run_training
from .metrics import MetricSums, batch_stats
from .schedules import LRSchedule, lr_scale_factor

__all__ = [
    "ConfigError",
    "DatasetSource",
    "LRSchedule",
    "MetricSums",
    "NonFiniteLoss",
    "TrainConfig",
    "Training",
    "TrainingStopped",
    "add_arguments",
    "batch_stats",
    "config_from_args",
    "format_recipes",
    "list_recipes",
    "load_recipe",
    "lr_scale_factor",
    "merge_for_resume",
    "parse_args",
    "run_cli",
    "run_training",
]


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
    from ..checkpoint import CheckpointError
    from ..data import PrepareError, RecordFileError

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
