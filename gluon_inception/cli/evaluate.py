"""``gluon-inception evaluate``: rank-1/rank-5 accuracy and cross-entropy on a record file."""
import logging
import os

from .. import dist
from ..data import build_val_iter, load_dataset
from ..deploy.evaluate import evaluate, format_table, write_report
from ..deploy.quantize import quantize_int8, to_bfloat16
from ..errors import UsageError
from ._common import add_model_arguments, check_classes, load_model_from_args

PRECISIONS = ("float32", "int8", "bfloat16")


def configure_parser(parser):
    add_model_arguments(parser)
    data = parser.add_argument_group("data (one of)")
    where = data.add_mutually_exclusive_group(required=True)
    where.add_argument("--data", metavar="ROOT", help="a prepared dataset folder (gluon-inception prepare)")
    where.add_argument("--rec", metavar="FILE", help="a .rec file (its .idx beside it)")
    data.add_argument("--split", default=None,
                      help="split of --data to evaluate (default: val, or test when there is no val)")
    parser.add_argument("--crops", type=int, nargs="+", choices=(1, 10), default=[1],
                        help="1 = centre crop, 10 = corners + centre and their mirrors (default: 1; '1 10' for both)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass per rank (default 32)")
    parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help="evaluate the INT8 (oneDNN) or bfloat16 conversion instead of float32 (CPU)")
    parser.add_argument("--calib-data", metavar="REC",
                        help="record file to calibrate INT8 on (default: the train split of --data)")
    parser.add_argument("--calib-batches", type=int, default=4, help="batches used for calibration (default 4)")
    parser.add_argument("--report", metavar="JSON", help="write the results here (rank 0, atomically)")
    parser.add_argument("--threads", type=int, default=None, help="decoding threads per rank")


def _resolve_split(args):
    if args.rec is not None:
        if args.split is not None:
            raise UsageError("--split chooses a split of --data; with --rec the file itself is evaluated")
        return args.rec, None
    info = load_dataset(args.data)
    name = args.split or ("val" if info.has_split("val") else "test")
    return info.split(name), info


def _calibration_source(args, info):
    if args.calib_data:
        return args.calib_data
    if info is not None and info.has_split("train"):
        return info.split("train")
    raise UsageError("--precision int8 needs calibration images: give --calib-data REC (a few hundred images "
                     "of the training distribution), or --data ROOT with a train split")


def convert_precision(loaded, precision, calib_source, calib_batches, batch_size, threads=None):
    """Return the float32, INT8 or bfloat16 version of ``loaded.net``."""
    pre = loaded.preprocessing
    if precision == "int8":
        it = build_val_iter(calib_source, batch_size, preprocessing=pre, num_threads=threads)
        return quantize_int8(loaded.net, it, num_calib_batches=calib_batches, batch_size=batch_size)
    if precision == "bfloat16":
        return to_bfloat16(loaded.net, input_shape=(1,) + pre.data_shape)
    loaded.net.hybridize(static_alloc=True, static_shape=True)
    return loaded.net


def main(args):
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    d = dist.get(use_horovod=dist.launched_by_horovod())
    if args.precision != "float32" and d.context().device_type != "cpu":
        raise UsageError("--precision %s runs on the CPU only" % args.precision)
    split, info = _resolve_split(args)
    loaded = load_model_from_args(args, ctx=d.context())
    if info is not None and loaded.class_ids is not None:
        check_classes("the weights'", loaded.class_ids, "the dataset's", info.classes)
    calib = _calibration_source(args, info) if args.precision == "int8" else None
    net = convert_precision(loaded, args.precision, calib, args.calib_batches, args.batch_size, args.threads)
    results = evaluate(net, split, loaded.preprocessing, crops=tuple(dict.fromkeys(args.crops)),
                       batch_size=args.batch_size, dist=d, ctx=d.context(), num_threads=args.threads)
    rec = getattr(split, "rec", split)
    if d.is_root:
        title = "%s on %s (%s, %d rank%s)" % (_describe(loaded.source), os.path.basename(rec), args.precision,
                                            d.size, "s" if d.size > 1 else "")
        print(format_table(results, title=title))
        if args.report:
            extra = {"source": loaded.source, "data": os.path.abspath(rec), "precision": args.precision,
                     "ranks": d.size, "preprocessing": loaded.preprocessing.to_dict()}
            write_report(args.report, results, extra=extra, dist=d)
            print("report written to %s" % args.report)
    return 0


def _describe(source):
    if "checkpoint" in source:
        return "checkpoint %s" % os.path.basename(source["checkpoint"])
    return "pretrained %s" % source.get("pretrained")
