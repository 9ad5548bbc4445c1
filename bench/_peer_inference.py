"""ONNX Runtime and OpenVINO timings of exported files; a worker driven by bench/inference.py.

It runs in an interpreter with onnxruntime and openvino (``--peers-python``: the package's venv
when it has them, or ``.venv-peers`` from ``BENCH=1 bash scripts/setup.sh``) and never imports MXNet,
so that no runtime shares a process with another. ``--spec`` (JSON) lists the files to time:

- ``rows``: ``{"name", "runtime": "onnxruntime" | "openvino", "path", "precision": "f32" | "bf16"}``,
  our exports and torchvision's alike (bench/inference.py made them, INT8 included).

Every file gets the same settings: ONNX Runtime with ``intra_op_num_threads=--threads``, one inter-op
thread and every graph optimisation; OpenVINO with ``INFERENCE_NUM_THREADS=--threads``, one stream,
the LATENCY hint, compiled once for batches of ``--batch`` and once for batch 1.

It prints one JSON line ``{"ready": true, "notes": [...], "models": [...], "top1": {model: [...]}}``
(``top1``: each model's class for every image of ``--check``), then answers every ``round`` line on
stdin with ``{"rows": [{"name", "img_per_s", "latency_ms"}, ...]}``. ``quit`` ends it. A runtime that
is not installed, or that refuses a file, is reported in the notes (with the traceback on stderr);
any other error ends the process with its traceback.
"""
import argparse
import json
import sys
import traceback

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
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


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

    return run


def available(module):
    try:
        return __import__(module)
    except ImportError:
        return None


def build(args, spec, np, notes):
    ort, ov = available("onnxruntime"), available("openvino")
    if ort:
        notes.append("onnxruntime %s: %d intra-op threads, 1 inter-op, ORT_ENABLE_ALL"
                     % (ort.__version__, args.threads))  # fmt: skip
    if ov:
        notes.append("openvino %s: %d threads, 1 stream, LATENCY hint, compiled per batch size (%d and 1)"
                     % (ov.__version__, args.threads, args.batch))  # fmt: skip
    rows = list(spec.get("rows", []))
    models, missing = [], set()
    for row in rows:
        if not {"onnxruntime": ort, "openvino": ov}[row["runtime"]]:
            missing.add(row["runtime"])
            continue
        try:
            if row["runtime"] == "onnxruntime":
                run = ort_session(row["path"], args.threads)
            else:
                run = openvino_model(row["path"], args.threads, row["precision"], args.batch, args.size)
        except Exception as err:  # noqa: BLE001 - the runtime refused this file: say so, time the others
            traceback.print_exc()
            notes.append("%s FAILED, no row: %s: %s" % (row["name"], type(err).__name__, str(err).strip()[:300]))
            continue
        models.append((row["name"], run))
    for runtime in sorted(missing):
        notes.append("%s rows skipped: %s is not installed in %s (--peers-python)" % (runtime, runtime, sys.executable))
    return models


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True, help="JSON: the files to time (see the module's docstring)")
    parser.add_argument("--check", required=True, help=".npy of images whose top-1 each model reports")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--min-time", type=float, default=3.0)
    parser.add_argument("--latency-runs", type=int, default=20)
    args = parser.parse_args()

    import numpy as np

    with open(args.spec, encoding="utf-8") as f:
        spec = json.load(f)
    notes = []
    models = build(args, spec, np, notes)
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
