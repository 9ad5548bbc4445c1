"""``gluon-inception export``: MXNet symbol + params, ONNX or OpenVINO IR; optionally INT8 or with preprocessing."""
import os
import tempfile

from ..data import build_val_iter, load_dataset
from ..deploy.export import bake_preprocessing, export_mxnet, export_onnx, require_onnx
from ..deploy.runtimes import export_openvino, quantize_file
from ..errors import UsageError
from ._common import (
    add_model_arguments,
    add_precision_argument,
    convert_loaded,
    count,
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
    parser.add_argument("--format", choices=("mxnet", "onnx", "openvino"), default="mxnet",
                        help="mxnet: PREFIX-symbol.json + PREFIX-0000.params + PREFIX-meta.json; onnx: one .onnx file; "
                             "openvino: OpenVINO IR, an .xml file and the .bin beside it")
    parser.add_argument("-o", "--output", required=True,
                        help="file prefix for --format mxnet, .onnx file for onnx, .xml file for openvino")
    parser.add_argument("--bake-preprocessing", action="store_true",
                        help="put mean/std normalisation in the graph: it then takes RGB pixels 0-255 (NCHW, "
                             "resized and centre-cropped)")
    add_precision_argument(parser, "int8: calibrated on --calib-data; MXNet's oneDNN INT8 for --format mxnet, ONNX "
                           "Runtime's quantizer for onnx, NNCF's for openvino. float16 and bfloat16 are chosen when "
                           "the file is run, not exported")
    parser.add_argument("--calib-data", metavar="REC",
                        help="record file (or prepared dataset folder, train split) to calibrate --precision int8 on")
    parser.add_argument("--calib-batches", type=count, default=4, help="calibration batches (default 4)")
    parser.add_argument("--batch-size", type=count, default=32, help="calibration batch size (default 32)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip comparing the file's output with MXNet's (onnx: in onnxruntime; openvino: OpenVINO)")


def main(args):
    if args.precision in NOT_EXPORTED:
        raise UsageError("--precision %s: %s" % (args.precision, NOT_EXPORTED[args.precision]))
    if args.precision == "int8" and not args.calib_data:
        raise UsageError("--precision int8 needs --calib-data REC: a few hundred images to calibrate the INT8 "
                         "ranges on")  # fmt: skip
    suffix = {"onnx": ".onnx", "openvino": ".xml"}.get(args.format)
    if suffix and not args.output.endswith(suffix):
        raise UsageError("-o %s: a --format %s file's name ends with %s" % (args.output, args.format, suffix))
    if args.format != "mxnet":
        require_onnx()  # fail before loading weights when onnx is missing (OpenVINO reads our ONNX export)
    loaded = load_model_from_args(args)
    pre = loaded.preprocessing
    net = loaded.net
    if args.precision == "int8" and args.format == "mxnet":
        net = convert_loaded(loaded, "int8", _calib_source(args.calib_data), args.calib_batches, args.batch_size)
    if args.bake_preprocessing:
        net = bake_preprocessing(net, pre)
    metadata = {"source": loaded.source, "precision": "float32" if args.format != "mxnet" else args.precision}
    if args.format == "mxnet":
        files = export_mxnet(net, args.output, preprocessing=pre, classes=loaded.class_names, metadata=metadata)
        for key in ("symbol", "params", "meta"):
            print("%-7s %s" % (key, files[key]))
        return 0
    export = export_onnx if args.format == "onnx" else export_openvino
    checked_in = "onnxruntime" if args.format == "onnx" else "OpenVINO"
    if args.precision != "int8":
        result = export(net, args.output, preprocessing=pre, classes=loaded.class_names, metadata=metadata,
                        check=not args.no_check)
        _print_exported(args.format, result, checked_in)
        return 0
    # INT8 for the runtimes: the float32 file first (checked against MXNet), then the runtime's quantizer on it.
    calib = _calib_batches(args, pre, baked=args.bake_preprocessing)
    with tempfile.TemporaryDirectory(prefix="gluon-inception-float32-") as tmp:
        float_path = os.path.join(tmp, "model" + suffix)
        result = export(net, float_path, preprocessing=pre, classes=loaded.class_names, metadata=metadata,
                        check=not args.no_check)
        if result["max_abs_diff"] is not None:
            print("float32 checked in %s: largest logit difference from MXNet %.2g" % (checked_in,
                                                                                      result["max_abs_diff"]))
        quantized = quantize_file(float_path, args.output, calib)
    print("%-7s %s" % (args.format, quantized["path"]))
    print("int8: %d layers quantized by %s on %d calibration images; same top-1 class as float32 for %.1f%% of "
          "them" % (quantized["quantized_layers"], quantized["quantizer"], quantized["images"],
                    100 * quantized["agreement"]))  # fmt: skip
    return 0


def _print_exported(fmt, result, checked_in):
    print("%-7s %s" % (fmt, result["path"]))
    if result.get("bin"):
        print("%-7s %s" % ("bin", result["bin"]))
    if result["max_abs_diff"] is not None:
        print("checked in %s: largest logit difference from MXNet %.2g" % (checked_in, result["max_abs_diff"]))


def _calib_batches(args, pre, baked):
    """``--calib-batches`` batches of ``--calib-data`` as numpy, in the exported file's input values."""
    it = build_val_iter(_calib_source(args.calib_data), args.batch_size, preprocessing=pre)
    batches = []
    for i, batch in enumerate(it):
        if i >= args.calib_batches:
            break
        x = batch.data[0].asnumpy()[: batch.data[0].shape[0] - (batch.pad or 0)]
        batches.append(pre.denormalize(x) if baked else x)
    return batches


def _calib_source(path):
    if os.path.isdir(path):
        return load_dataset(path).split("train")
    return path
