"""Arguments and checks that several subcommands share."""
import argparse

from ..data import build_val_iter
from ..deploy import PRECISIONS, PrecisionError, check_precision, convert
from ..deploy.runtimes import RUNTIMES, load_model_file
from ..errors import UsageError
from ..models.googlenet import TOPOLOGIES
from ..zoo.sources import load_checkpoint_model, load_pretrained_model


def add_model_arguments(parser, exported=False):
    """``--checkpoint PATH | --pretrained [NAME]`` (and with ``exported``, ``--model FILE --runtime R``) and the
    architecture checks, for CLI commands."""
    group = parser.add_argument_group("weights (one of)" if not exported else "network (one of)")
    source = group.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", metavar="PATH",
                        help="a training checkpoint (.params file, or the checkpoint folder for its latest)")
    source.add_argument("--pretrained", metavar="NAME", nargs="?", const="",
                        help="pretrained ImageNet weights: an entry name or a weight file (without NAME: the most "
                             "accurate entry; then put it after any positional arguments)")
    if exported:
        source.add_argument("--model", metavar="FILE",
                            help="an exported file (gluon-inception export): an MXNet prefix, .onnx or OpenVINO .xml")
        group.add_argument("--runtime", choices=RUNTIMES,
                           help="what runs --model (default: the file's own; an .onnx file needs onnxruntime or "
                                "openvino)")
    group.add_argument("--topology", choices=sorted(TOPOLOGIES),
                       help="expected topology; an error says so when the weights differ")
    group.add_argument("--classes", type=count, metavar="N",
                       help="expected number of classes; an error says so when the weights differ")


def count(text):
    """argparse type of a count (a batch size, a number of batches, classes or threads): an integer >= 1."""
    value = int(text)  # argparse reports a ValueError as "invalid count value"
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer, got %s" % text)
    return value


def load_model_from_args(args, ctx=None):
    """Load what :func:`add_model_arguments` asked for: a :class:`LoadedModel`, or for ``--model`` an
    :class:`~gluon_inception.deploy.runtimes.ExportedModel` checked against ``--classes``."""
    if getattr(args, "model", None) is not None:
        model = load_model_file(args.model, args.runtime, precision=getattr(args, "precision", None), ctx=ctx)
        if args.topology is not None:
            raise UsageError("--topology checks weights: an exported file's graph is fixed (drop --topology)")
        if args.classes is not None and model.num_classes is not None and model.num_classes != args.classes:
            raise UsageError("%s has %d classes, not the %d --classes asks for" % (args.model, model.num_classes,
                                                                                   args.classes))
        return model
    if getattr(args, "runtime", None) is not None:
        raise UsageError("--runtime chooses what runs an exported --model file; checkpoints and pretrained "
                         "weights run in MXNet")
    if args.checkpoint is not None:
        return load_checkpoint_model(args.checkpoint, topology=args.topology, classes=args.classes, ctx=ctx)
    return load_pretrained_model(args.pretrained or None, topology=args.topology, classes=args.classes, ctx=ctx)


def check_classes(what, names, other, other_names):
    """Raise a :class:`UsageError` giving both counts and the first differing name when two class lists differ.

    >>> check_classes("A's", ["cat", "dog", "cow", "pig"], "B's", ["cat", "dog", "hen"])
    Traceback (most recent call last):
    gluon_inception.errors.UsageError: A's classes (4) are not B's (3); the first difference is class 2: 'cow' ...
    """
    names, other_names = [str(n) for n in names], [str(n) for n in other_names]
    if names == other_names:
        return
    i = next((i for i, (a, b) in enumerate(zip(names, other_names)) if a != b), min(len(names), len(other_names)))
    at = lambda items: repr(items[i]) if i < len(items) else "missing"  # noqa: E731
    raise UsageError(
        "%s classes (%d) are not %s (%d); the first difference is class %d: %s vs %s. Labels would be compared "
        "with the wrong outputs: use data prepared with the same classes in the same order."
        % (what, len(names), other, len(other_names), i, at(names), at(other_names))
    )


def add_precision_argument(parser, help, default="float32"):
    """``--precision``, with the package's whole vocabulary as its choices: a command refuses what it
    cannot do with one line that says why (:func:`check_precision_option`), not with argparse's usage."""
    parser.add_argument("--precision", choices=PRECISIONS, default=default,
                        help=help + (" (default: float32)" if default else ""))


def check_precision_option(precision, ctx=None):
    """Raise a :class:`UsageError` naming ``--precision`` when it cannot run on ``ctx`` (default CPU)."""
    try:
        check_precision(precision, ctx)
    except PrecisionError as err:
        raise UsageError("--precision %s" % err) from None


def convert_loaded(loaded, precision, calib_source=None, calib_batches=4, batch_size=32, threads=None, ctx=None):
    """``loaded.net`` in ``precision`` (:func:`gluon_inception.deploy.convert`), int8 calibrated on the images of
    ``calib_source`` (a record file or split) preprocessed as the weights expect."""
    pre = loaded.preprocessing
    calib = None
    if precision == "int8":
        calib = build_val_iter(calib_source, batch_size, preprocessing=pre, num_threads=threads)
    return convert(loaded.net, precision, calib_data=calib, input_shape=(1,) + pre.data_shape, ctx=ctx,
                   num_calib_batches=calib_batches, batch_size=batch_size)  # fmt: skip
