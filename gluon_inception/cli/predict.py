"""``gluon-inception predict``: top-k class names and probabilities for images and folders."""
import json
import sys

from ..deploy.predict import format_predictions, predict_images
from ..errors import UsageError
from ._common import add_model_arguments, count, load_model_from_args


def configure_parser(parser):
    parser.add_argument("paths", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files and folders of images")
    add_model_arguments(parser, exported=True)
    parser.add_argument("--topk", type=count, default=5, help="classes per image (default 5)")
    parser.add_argument("--batch-size", type=count, default=16, help="images per forward pass (default 16)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def main(args):
    loaded = load_model_from_args(args)
    if args.model is not None:
        net, names = loaded, loaded.classes
    else:
        loaded.net.hybridize(static_alloc=True)
        net, names = loaded.net, loaded.class_names
    predictions, failures = predict_images(net, args.paths, loaded.preprocessing, names, topk=args.topk,
                                           batch_size=args.batch_size)
    if args.json:
        print(json.dumps({"predictions": [p.to_dict() for p in predictions],
                          "skipped": [f.to_dict() for f in failures]}, indent=2))
    elif predictions:
        print(format_predictions(predictions, []))
        skipped = format_predictions([], failures)
        if skipped:
            print(skipped, file=sys.stderr)
        print("%d image(s) predicted, %d file(s) skipped" % (len(predictions), len(failures)), file=sys.stderr)
    if not predictions:
        raise UsageError(_nothing_read(args.paths, failures))
    return 0


def _nothing_read(paths, failures):
    """The one error line of a run that predicted nothing."""
    if not failures:
        return "no files in %s: give image files or folders that hold images" % ", ".join(paths)
    first = failures[0]
    others = " (and %d other file(s): --json lists them)" % (len(failures) - 1) if len(failures) > 1 else ""
    return "no image could be read: %s: %s%s" % (first.path, first.reason, others)
