"""``gluon-inception train``: the training engine on the command line (same flags as the example)."""

from .training.config import add_arguments


def configure_parser(parser):
    add_arguments(parser)


def main(args):
    from . import training

    if args.list_recipes:
        print(training.format_recipes())
        return 0

    def train():
        training.run_training(training.config_from_args(args))

    return training.run_cli(train)
