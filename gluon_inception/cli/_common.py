"""Arguments and checks that several subcommands share."""
from ..errors import UsageError
from ..models.googlenet import TOPOLOGIES
from ..zoo.sources import load_checkpoint_model, load_pretrained_model


def add_model_arguments(parser):
    """``--checkpoint PATH | --pretrained [NAME]`` and the architecture checks, for CLI commands."""
    group = parser.add_argument_group("weights (one of)")
    source = group.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", metavar="PATH",
                        help="a training checkpoint (.params file, or the checkpoint folder for its latest)")
    source.add_argument("--pretrained", metavar="NAME", nargs="?", const="",
                        help="pretrained ImageNet weights: an entry name or a weight file (without NAME: the most "
                             "accurate entry; then put it after any positional arguments)")
    group.add_argument("--topology", choices=sorted(TOPOLOGIES),
                       help="expected topology; an error says so when the weights differ")
    group.add_argument("--classes", type=int, metavar="N",
                       help="expected number of classes; an error says so when the weights differ")


def load_model_from_args(args, ctx=None):
    """Load what :func:`add_model_arguments` asked for; returns a :class:`LoadedModel`."""
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
