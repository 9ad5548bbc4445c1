"""Training GoogLeNet with Horovod: configuration, recipes, schedules and the engine.

The engine (:class:`Training`) is shared by ``examples/train_imagenet.py`` and
``gluon-inception train``. See ``docs/training.rst`` for the recipes and the reasoning behind them.
"""

from .config import (
    ConfigError,
    TrainConfig,
    add_arguments,
    config_from_args,
    list_recipes,
    load_recipe,
    merge_for_resume,
)
from .engine import NonFiniteLoss, Training, run_training
from .hooks import TrainingHooks
from .preemption import TrainingInterrupted, TrainingStopped
from .schedules import LRSchedule, lr_scale_factor

__all__ = [
    "ConfigError",
    "LRSchedule",
    "NonFiniteLoss",
    "TrainConfig",
    "Training",
    "TrainingHooks",
    "TrainingInterrupted",
    "TrainingStopped",
    "add_arguments",
    "config_from_args",
    "list_recipes",
    "load_recipe",
    "lr_scale_factor",
    "merge_for_resume",
    "run_training",
]
