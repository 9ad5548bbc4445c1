"""ONNX Runtime and OpenVINO timings on our exported ONNX file; a worker driven by bench/inference.py.

Runs in the peers environment (``BENCH=1 bash scripts/setup.sh`` makes ``.venv-peers``), never beside
MXNet. It builds every model it can from ``--onnx``:

- ONNX Runtime float32, and ONNX Runtime's own static INT8 (``quantize_static``: QDQ format,
  per-channel weights, calibrated on ``--calib``, after ``quant_pre_process``);
- OpenVINO float32 (``INFERENCE_PRECISION_HINT=f32``), bfloat16 (``bf16``) and INT8 (the same QDQ
  file as ONNX Runtime's INT8).

It prints one JSON line ``{"ready": true, "notes": [...], "models": [...], "top1": {model: [...]}}``
(``top1``: each model's class for every image of ``--check``, for agreement with our float32), then
answers every ``round`` line on stdin with ``{"rows": [{"name", "img_per_s", "latency_ms"}, ...]}``.
``quit`` ends it. A peer that cannot be built is reported in the notes; the others still run.
"""
import argparse
import json
import os
import sys
import tempfile
import time

from _timing import rate_and_latency  # bench/, first on sys.path when a bench script runs


def measure(run, np, batch, size, min_time, latency_runs):
    """One round: (images/s at ``batch``, median ms at batch 1) for ``run(array)``."""
    rng = np.random.RandomState(0)
    x = rng.normal(size=(batch, 3, size, size)).astype(np.float32)
    x1 = rng.normal(size=(1, 3, size, size)).astype(np.float32)
    return rate_and_latency(run, x, x1, batch, min_time, latency_runs)


def ort_session(path, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def ort_int8(path, calib, workdir, np):
    """ONNX Runtime's static INT8 of ``path``: QDQ, per-channel, calibrated on ``calib``."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"data": calib[i : i + 8]} for i in range(0, len(calib), 8)])

        def get_next(self):
            return next(self.batches, None)

    prepared = os.path.join(workdir, "prepared.onnx")
    quant_pre_process(path, prepared, skip_symbolic_shape=True)
    out = os.path.join(workdir, "int8_qdq.onnx")
    quantize_static(prepared, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)  # fmt: skip
    return out


def openvino_model(path, threads, precision, batch, size):
    """OpenVINO compiled for throughput at ``batch`` and latency at batch 1, one stream each."""
    import openvino as ov

    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "INFERENCE_PRECISION_HINT": precision,
              "PERFORMANCE_HINT": "LATENCY"}  # fmt: skip
    compiled = {}
    for n in (batch, 1):
        model = core.read_model(path)
        model.reshape({model.inputs[0].get_any_name(): [n, 3, size, size]})
        compiled[n] = core.compile_model(model, "CPU", config).create_infer_request()

    def run(x):
        request = compiled.get(x.shape[0])
        if request is None:
            raise ValueError("this OpenVINO model was compiled for batches of %s" % sorted(compiled))
        return request.infer({0: x})[0]

    return run, ov.__version__


def build(args, np, notes, workdir):
    models = []
    calib = np.load(args.calib).astype(np.float32)
    try:
        import onnxruntime as ort

        notes.append("onnxruntime %s, %d intra-op threads" % (ort.__version__, args.threads))
        models.append(("ONNX Runtime float32", ort_session(args.onnx, args.threads)))
        start = time.perf_counter()
        int8_path = ort_int8(args.onnx, calib, workdir, np)
        notes.append("ONNX Runtime quantize_static (QDQ, per-channel, %d calibration images) took %.0f s"
                     % (len(calib), time.perf_counter() - start))  # fmt: skip
        models.append(("ONNX Runtime INT8 (static QDQ)", ort_session(int8_path, args.threads)))
    except Exception as err:  # noqa: BLE001 - a missing peer is reported, the others still run
        notes.append("ONNX Runtime skipped: %s: %s" % (type(err).__name__, str(err).splitlines()[0][:200]))
        int8_path = None
    try:
        for label, precision in (("float32", "f32"), ("bfloat16", "bf16")):
            run, version = openvino_model(args.onnx, args.threads, precision, args.batch, args.size)
            models.append(("OpenVINO %s" % label, run))
        notes.append("openvino %s, %d threads, 1 stream, INFERENCE_PRECISION_HINT f32/bf16" % (version, args.threads))
        if int8_path:
            run, _ = openvino_model(int8_path, args.threads, "f32", args.batch, args.size)
            models.append(("OpenVINO INT8 (same QDQ file)", run))
    except Exception as err:  # noqa: BLE001
        notes.append("OpenVINO skipped: %s: %s" % (type(err).__name__, str(err).splitlines()[0][:200]))
    return models


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--onnx", required=True, help="our float32 ONNX file (batch axis free)")
    parser.add_argument("--calib", required=True, help=".npy of calibration images (N, 3, H, W)")
    parser.add_argument("--check", required=True, help=".npy of images whose top-1 each model reports")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--min-time", type=float, default=3.0)
    parser.add_argument("--latency-runs", type=int, default=20)
    args = parser.parse_args()

    import numpy as np

    notes = []
    with tempfile.TemporaryDirectory(prefix="gluon-inception-peers-") as workdir:
        models = build(args, np, notes, workdir)
        check = np.load(args.check).astype(np.float32)
        top1 = {}
        for name, run in models:
            top1[name] = [int(c) for i in range(0, len(check), args.batch)
                          for c in run(check[i : i + args.batch]).argmax(1)]  # fmt: skip
        print(json.dumps({"ready": True, "notes": notes, "models": [n for n, _ in models], "top1": top1}), flush=True)
        for line in sys.stdin:
            if line.strip() != "round":
                break
            rows = []
            for name, run in models:
                ips, lat = measure(run, np, args.batch, args.size, args.min_time, args.latency_runs)
                rows.append({"name": name, "img_per_s": ips, "latency_ms": lat})
            print(json.dumps({"rows": rows}), flush=True)


if __name__ == "__main__":
    main()
