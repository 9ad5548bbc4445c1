"""``gluon-inception evaluate``: rank-1/rank-5 accuracy and cross-entropy on a record file."""
import logging
import os

from .. import dist
from ..checkpoint import best_checkpoint
from ..data import load_dataset
from ..deploy.evaluate import evaluate, format_table, write_report
from ..errors import UsageError
from ._common import (
    add_model_arguments,
    add_precision_argument,
    check_classes,
    check_precision_option,
    convert_loaded,
    count,
    load_model_from_args,
)


def configure_parser(parser):
    add_model_arguments(parser, exported=True)
    data = parser.add_argument_group("data (one of)")
    where = data.add_mutually_exclusive_group(required=True)
    where.add_argument("--data", metavar="ROOT", help="a prepared dataset folder (gluon-inception prepare)")
    where.add_argument("--rec", metavar="FILE", help="a .rec file (its .idx beside it)")
    data.add_argument("--split", default=None,
                      help="split of --data to evaluate (default: val, or test when there is no val)")
    parser.add_argument("--crops", type=int, nargs="+", choices=(1, 10), default=[1],
                        help="1 = centre crop, 10 = corners + centre and their mirrors (default: 1; '1 10' for both)")
    parser.add_argument("--batch-size", type=count, default=32, help="images per forward pass per rank (default 32)")
    add_precision_argument(parser, "evaluate this conversion of the network: int8 (oneDNN; calibrated on "
                           "--calib-data) or bfloat16 (AVX-512 BF16 or AMX) on CPUs, float16 on GPUs (default: "
                           "float32). With --model: the file as exported, or bfloat16 in OpenVINO", default=None)
    parser.add_argument("--calib-data", metavar="REC",
                        help="record file to calibrate INT8 on (default: the train split of --data)")
    parser.add_argument("--calib-batches", type=count, default=4, help="batches used for calibration (default 4)")
    parser.add_argument("--best", action="store_true",
                        help="with --checkpoint DIR: the run's best checkpoint (PREFIX-best, best validation top-1)")
    parser.add_argument("--report", metavar="JSON", help="write the results here (rank 0, atomically)")
    parser.add_argument("--threads", type=count, default=None, help="decoding threads per rank")


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


def main(args):
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    d = dist.get(use_horovod=dist.launched_by_horovod())
    if args.model is None:
        args.precision = args.precision or "float32"
        check_precision_option(args.precision, d.context())
    split, info = _resolve_split(args)
    calib = _calibration_source(args, info) if args.precision == "int8" and args.model is None else None
    if args.best:
        args.checkpoint = _best_checkpoint(args.checkpoint)
    loaded = load_model_from_args(args, ctx=d.context())
    if args.model is not None:
        net, precision = loaded, loaded.precision
        source = {"exported": os.path.abspath(args.model), "runtime": loaded.runtime}
        if info is not None and loaded.classes is not None:
            check_classes("%s's" % args.model, loaded.classes, "the dataset's", [str(c) for c in info.classes])
    else:
        if info is not None and loaded.class_ids is not None:
            check_classes("the weights'", loaded.class_ids, "the dataset's", info.classes)
        net = convert_loaded(loaded, args.precision, calib, args.calib_batches, args.batch_size, args.threads,
                             ctx=d.context())  # fmt: skip
        source, precision = loaded.source, args.precision
    results = evaluate(net, split, loaded.preprocessing, crops=tuple(dict.fromkeys(args.crops)),
                       batch_size=args.batch_size, dist=d, ctx=d.context(), num_threads=args.threads)
    rec = getattr(split, "rec", split)
    if d.is_root:
        title = "%s on %s (%s, %d rank%s)" % (_describe(source), os.path.basename(rec), precision,
                                            d.size, "s" if d.size > 1 else "")
        print(format_table(results, title=title))
        if args.report:
            extra = {"source": source, "data": os.path.abspath(rec), "precision": precision,
                     "ranks": d.size, "preprocessing": loaded.preprocessing.to_dict()}
            write_report(args.report, results, extra=extra, dist=d)
            print("report written to %s" % args.report)
    return 0


def _best_checkpoint(folder):
    if folder is None or not os.path.isdir(folder):
        raise UsageError("--best picks the best checkpoint of a run: give its folder with --checkpoint DIR")
    path = best_checkpoint(folder)
    if path is None:
        raise UsageError("%s holds no best checkpoint (PREFIX-best.json + .params): it is written when a run "
                         "validates; drop --best to evaluate the latest checkpoint" % os.path.abspath(folder))
    return path


def _describe(source):
    if "exported" in source:
        return "%s in %s" % (os.path.basename(source["exported"]), source["runtime"])
    if "checkpoint" in source:
        return "checkpoint %s" % os.path.basename(source["checkpoint"])
    return "pretrained %s" % source.get("pretrained")
