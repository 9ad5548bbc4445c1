"""The ``gluon-inception`` console script.

Each subcommand lives in its own module that defines ``configure_parser(parser)`` and
``main(args) -> int``; modules are imported only when their subcommand runs, so
``gluon-inception --help`` stays fast.
"""
import argparse
import importlib
import sys

from .._version import __version__

# name -> (module, one-line help). Later features add their subcommand here.
#: Subcommand name -> (module that implements it, one-line help).
COMMANDS = {
    "info": ("gluon_inception.cli.info", "show versions, models and the devices this install can use"),
    "prepare": ("gluon_inception.cli.prepare", "turn image folders (or the demo digits) into record files"),
    "check": ("gluon_inception.cli.check", "verify a prepared dataset's record files against their checksums"),
    "train": ("gluon_inception.cli.train", "train GoogLeNet (Horovod or one process) with checkpoints and logs"),
    "evaluate": ("gluon_inception.cli.evaluate", "rank-1/rank-5 accuracy and cross-entropy on a record file"),
    "predict": ("gluon_inception.cli.predict", "top-k classes of image files and folders"),
    "export": ("gluon_inception.cli.export", "write MXNet (symbol+params) or ONNX files, optionally INT8"),
    "convert": ("gluon_inception.cli.convert", "convert GluonCV or torchvision GoogLeNet weights to ours"),
    "pretrained": ("gluon_inception.cli.pretrained", "list, fetch or purge pretrained weights"),
    "plot": ("gluon_inception.cli.plot", "draw a run's loss/accuracy per epoch (lr changes marked) to a PNG"),
}


def build_parser():
    """The ``gluon-inception`` argument parser, with one subparser per entry of :data:`COMMANDS`.

    Returns
    -------
    argparse.ArgumentParser

    Examples
    --------
    >>> from gluon_inception.cli import build_parser
    >>> build_parser().parse_args(["info", "--json"]).json
    True
    """
    parser = argparse.ArgumentParser(
        prog="gluon-inception",
        description="GoogLeNet (Inception v1) for Apache MXNet Gluon.",
    )

    parser.add_argument("--version", action="version", version="gluon-inception " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(_module=module_name)
        importlib.import_module(module_name).configure_parser(sp)
    return parser


def main(argv=None):
    """Run the console script: parse ``argv`` and call the subcommand's ``main``.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status: 0 on success, 2 without a subcommand, 130 on Ctrl-C.

    Examples
    --------
    >>> from gluon_inception.cli import main
    >>> main(["info"])  # doctest: +SKIP
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    module = importlib.import_module(args._module)
    try:
        return module.main(args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
