"""The ``gluon-inception`` console script.

Each subcommand lives in its own module that defines ``configure_parser(parser)`` and
``main(args) -> int``; a module is imported only when its subcommand runs or shows its help
(the program's own ``--help`` imports none of them).

Errors end here, in one place (:func:`run`): a library error
(:class:`~gluon_inception.errors.GluonInceptionError`) or an operating-system error becomes one
``error: ...`` line on stderr, printed by rank 0 only in a multi-rank run, and an exit status:

====  ================================================================================
0     success
1     a failure at run time (download, export, full disk, another OS error)
2     a usage error: bad option, missing or invalid data, checkpoint or weights
3     training stopped on purpose (a NaN/inf loss); the last good checkpoint is intact
75    training stopped by SIGTERM/SIGUSR1 after writing a checkpoint of that step; continue with --resume
130   interrupted (Ctrl-C); training first writes a checkpoint of the step it stopped at
141   the output was closed early (``gluon-inception ... | head``)
====  ================================================================================

Set ``GLUON_INCEPTION_TRACEBACK=1`` to get the full traceback instead of the one line.
"""
import argparse
import importlib
import os
import sys
import time

from .. import dist
from .._version import __version__
from ..errors import GluonInceptionError

#: What Horovod's collectives raise on every rank once one rank has ended the job.
HOROVOD_SHUT_DOWN = "Horovod has been shut down"

# name -> (module, one-line help). Later features add their subcommand here.
#: Subcommand name -> (module that implements it, one-line help).
COMMANDS = {
    "info": ("gluon_inception.cli.info", "show versions, models and the devices this install can use"),
    "prepare": ("gluon_inception.cli.prepare", "turn image folders (or the demo digits) into record files"),
    "check": ("gluon_inception.cli.check", "verify a prepared dataset's record files against their checksums"),
    "train": ("gluon_inception.cli.train", "train GoogLeNet (Horovod or one process) with checkpoints and logs"),
    "evaluate": ("gluon_inception.cli.evaluate", "rank-1/rank-5 accuracy and cross-entropy on a record file"),
    "predict": ("gluon_inception.cli.predict", "top-k classes of image files and folders"),
    "export": ("gluon_inception.cli.export", "write MXNet (symbol+params) or ONNX files, optionally --precision int8"),
    "convert": ("gluon_inception.cli.convert", "convert GluonCV or torchvision GoogLeNet weights to ours"),
    "pretrained": ("gluon_inception.cli.pretrained", "list, fetch or purge pretrained weights"),
    "plot": ("gluon_inception.cli.plot", "draw a run's loss/accuracy per epoch (lr changes marked) to a PNG"),
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, but a multi-rank run prints a bad command line once: rank 0 prints the usage
    and the error, the other ranks exit with the same status (2) in silence. Subparsers are of this
    class too."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _SubParsers)

    def _print_message(self, message, file=None):
        if dist.is_root_process():
            super()._print_message(message, file)

    def error(self, message):
        if not dist.is_root_process():
            # Under horovodrun the first rank to exit non-zero gets the others killed: leave that to
            # rank 0, which prints the error (it may still be importing), and wait to be stopped.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                time.sleep(0.5)
        super().error(message)


class _SubParsers(argparse._SubParsersAction):
    def __init__(self, *args, **kwargs):
        kwargs["parser_class"] = ArgumentParser
        super().__init__(*args, **kwargs)


def build_parser(only=None):
    """The ``gluon-inception`` argument parser, with one subparser per entry of :data:`COMMANDS`.

    Parameters
    ----------
    only : str, optional
        Configure (and import the module of) this subcommand only; the others stay listed.

    Returns
    -------
    argparse.ArgumentParser

    Examples
    --------
    >>> from gluon_inception.cli import build_parser
    >>> build_parser().parse_args(["info", "--json"]).json
    True
    """
    parser = ArgumentParser(
        prog="gluon-inception",
        description="GoogLeNet (Inception v1) for Apache MXNet Gluon.",
    )

    parser.add_argument("--version", action="version", version="gluon-inception " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(_module=module_name)
        if only in (None, name):
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
        The exit status (see the module's table): 2 also without a subcommand.

    Examples
    --------
    >>> from gluon_inception.cli import main
    >>> main(["info"])  # doctest: +SKIP
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((arg for arg in argv if not arg.startswith("-")), "")
    parser = build_parser(only=command)
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    return run(importlib.import_module(args._module).main, args)


def run(main, *args):
    """Call ``main(*args)`` and turn what ends it into the documented exit status.

    The one place where errors become an ``error:`` line (see the module's docstring); also
    used by ``examples/train_imagenet.py``.

    Returns
    -------
    int
        ``main``'s result (0 when it returns None), or the status of the error that ended it.
    """
    try:
        status = main(*args) or 0
        sys.stdout.flush()  # a closed pipe shows here, not in Python's shutdown
        return status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (``head``) is gone: send what is left of stdout nowhere, quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (GluonInceptionError, OSError) as err:
        if os.environ.get("GLUON_INCEPTION_TRACEBACK"):
            raise
        if dist.is_root_process():  # every rank hits the same error; one line is enough
            print("error: %s" % err, file=sys.stderr, flush=True)
        dist.settle()
        status = getattr(err, "exit_code", 1)
        return status if getattr(err, "normal_teardown", False) else dist.leave(status)
    except Exception as err:
        # Another rank ended the job (its own line and status say why): Horovod fails this rank's next
        # collective. Nothing more to say here than that, once.
        if HOROVOD_SHUT_DOWN not in str(err) or os.environ.get("GLUON_INCEPTION_TRACEBACK"):
            raise
        if dist.is_root_process():
            print("error: another rank ended the job (%s); its output says why" % HOROVOD_SHUT_DOWN, file=sys.stderr,
                  flush=True)  # fmt: skip
        return dist.leave(1)


if __name__ == "__main__":
    sys.exit(main())
