"""``gluon-inception export``: MXNet symbol + params or ONNX, optionally INT8 or with preprocessing baked in."""
import os

from ..data import load_dataset
from ..deploy.export import bake_preprocessing, export_mxnet, export_onnx, require_onnx
from ..errors import UsageError
from ._common import (
    add_model_arguments,
    add_precision_argument,
    convert_loaded,
    load_model_from_args,
)

#: What ``--precision`` cannot export, and why (one line each, with what to do instead).
NOT_EXPORTED = {
    "float16": "export writes float32 or int8 only: MXNet 1.9.1 has no float16 CPU kernels to trace a float16 graph "
    "with. Export float32 and convert it on the GPU that runs it (gluon_inception.deploy.convert(net, 'float16', "
    "ctx=mx.gpu())) or use your runtime's float16 mode",
    "bfloat16": "export writes float32 or int8 only: the bfloat16 graph MXNet 1.9.1 exports does not load back (its "
    "type check rejects the bfloat16 weights). Export float32 and convert after loading with "
    "gluon_inception.deploy.convert(net, 'bfloat16'); gluon-inception evaluate --precision bfloat16 measures it",
}


def configure_parser(parser):
    add_model_arguments(parser)
    parser.add_argument("--format", choices=("mxnet", "onnx"), default="mxnet",
                        help="mxnet: PREFIX-symbol.json + PREFIX-0000.params + PREFIX-meta.json; onnx: one .onnx file")
    parser.add_argument("-o", "--output", required=True,
                        help="file prefix for --format mxnet, .onnx file for --format onnx")
    parser.add_argument("--bake-preprocessing", action="store_true",
                        help="put mean/std normalisation in the graph: it then takes RGB pixels 0-255 (NCHW, "
                             "resized and centre-cropped)")
    add_precision_argument(parser, "int8: quantize with oneDNN for CPUs, calibrated on --calib-data (--format mxnet); "
                           "float16 and bfloat16 are converted after loading, not exported")
    parser.add_argument("--calib-data", metavar="REC",
                        help="record file (or prepared dataset folder, train split) to calibrate --precision int8 on")
    parser.add_argument("--calib-batches", type=int, default=4, help="calibration batches (default 4)")
    parser.add_argument("--batch-size", type=int, default=32, help="calibration batch size (default 32)")
    parser.add_argument("--no-check", action="store_true", help="skip the onnxruntime check of --format onnx")


def main(args):
    if args.precision in NOT_EXPORTED:
        raise UsageError("--precision %s: %s" % (args.precision, NOT_EXPORTED[args.precision]))
    if args.precision == "int8" and args.format == "onnx":
        raise UsageError("--precision int8 exports to --format mxnet only: MXNet's INT8 operators have no ONNX form")
    if args.precision == "int8" and not args.calib_data:
        raise UsageError("--precision int8 needs --calib-data REC: a few hundred images to calibrate the INT8 "
                         "ranges on")  # fmt: skip
    if args.format == "onnx":
        require_onnx()  # fail before loading weights when onnx is missing
    loaded = load_model_from_args(args)
    pre = loaded.preprocessing
    net = loaded.net
    if args.precision == "int8":
        net = convert_loaded(loaded, "int8", _calib_source(args.calib_data), args.calib_batches, args.batch_size)
    if args.bake_preprocessing:
        net = bake_preprocessing(net, pre)
    metadata = {"source": loaded.source, "precision": args.precision}
    if args.format == "mxnet":
        files = export_mxnet(net, args.output, preprocessing=pre, classes=loaded.class_names, metadata=metadata)
        for key in ("symbol", "params", "meta"):
            print("%-7s %s" % (key, files[key]))
    else:
        result = export_onnx(net, args.output, preprocessing=pre, classes=loaded.class_names, metadata=metadata,
                             check=not args.no_check)
        print("onnx    %s" % result["path"])
        if result["max_abs_diff"] is not None:
            print("checked in onnxruntime: largest logit difference from MXNet %.2g" % result["max_abs_diff"])
    return 0


def _calib_source(path):
    if os.path.isdir(path):
        return load_dataset(path).split("train")
    return path
