"""torchvision's googlenet inference timings; a worker driven by bench/inference.py in a torch environment.

GluonCV refuses to import beside torch >= 2, so this runs in its own interpreter. Every row is one
network: ``googlenet(weights=None, aux_logits=False, init_weights=True, transform_input=True)``,
seeded, which is what torchvision deploys with its ImageNet weights (they need ``transform_input``)
and the same network as our ``topology="torchvision"``. With ``--export-dir`` it also writes that
network's weights (``torchvision.pth``, so that our rows can load the very same weights) and its ONNX
export (``torchvision.onnx``: ``torch.onnx.export``, TorchScript exporter, batch axis free), which
bench/inference.py then runs through ONNX Runtime and OpenVINO exactly like our export.

It builds the models (and compiles one with ``torch.compile``), prints one JSON line ``{"ready":
true, "notes": [...], "models": [...], "top1": {model: [...]}, "files": {...}, "params": n}``
(``top1``: each model's class for every image of ``--check``), then answers every ``round`` line on
stdin with one JSON line ``{"rows": [{"name", "img_per_s", "latency_ms"}, ...]}``, so that the caller
can interleave these rounds with its own (the machine is shared, and load changes from minute to
minute). ``quit`` ends it. Any error ends the process with its traceback on stderr.
"""
import argparse
import copy
import json
import os
import sys
import time
import warnings

from _timing import rate_and_latency  # bench/, first on sys.path when a bench script runs

#: The ONNX opset of the export (ONNX Runtime 1.32 and OpenVINO 2026.4 both run it).
OPSET = 17


def measure(model, torch, batch, size, min_time, latency_runs):
    """One round: (images/s at ``batch``, median ms at batch 1)."""
    x = torch.randn(batch, 3, size, size)
    x1 = torch.randn(1, 3, size, size)
    with torch.no_grad():
        return rate_and_latency(model, x, x1, batch, min_time, latency_runs)


def build(args, torch, torchvision, notes):
    torch.manual_seed(0)
    model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True,
                                         transform_input=True).eval()  # fmt: skip
    models = [("torchvision googlenet (eager)", model)]
    # What a PyTorch user picks on a CPU: channels_last, and bfloat16 autocast where the CPU has it.
    last = copy.deepcopy(model).to(memory_format=torch.channels_last)

    def channels_last(x):
        return last(x.contiguous(memory_format=torch.channels_last))

    models.append(("torchvision googlenet (channels_last)", channels_last))

    def autocast_bf16(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return last(x.contiguous(memory_format=torch.channels_last))

    models.append(("torchvision googlenet (channels_last + bf16 autocast)", autocast_bf16))
    if not args.no_compile:
        try:
            compiled = torch.compile(copy.deepcopy(model))
            start = time.perf_counter()
            with torch.no_grad():
                compiled(torch.randn(args.batch, 3, args.size, args.size))
                compiled(torch.randn(1, 3, args.size, args.size))
            notes.append("torch.compile: compiling took %.0f s" % (time.perf_counter() - start))
            models.append(("torchvision googlenet (torch.compile)", compiled))
        except Exception as err:  # noqa: BLE001 - report why compile is unavailable, keep eager numbers
            notes.append("torch.compile failed here: %s: %s" % (type(err).__name__, str(err).splitlines()[0][:200]))
    return model, models


def export(model, torch, args, notes):
    """Write the network's state dict and its ONNX file into ``--export-dir``; {} without onnx."""
    files = {"pth": os.path.join(args.export_dir, "torchvision.pth")}
    torch.save(model.state_dict(), files["pth"])
    try:
        import onnx  # noqa: F401 - torch.onnx.export needs it
    except ImportError:
        notes.append("torchvision's ONNX rows skipped: onnx is not installed in %s (scripts/setup.sh installs it "
                     "into .venv-torch)" % sys.executable)  # fmt: skip
        return files
    files["onnx"] = os.path.join(args.export_dir, "torchvision.onnx")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (torch.randn(1, 3, args.size, args.size),), files["onnx"], dynamo=False,
                          opset_version=OPSET, input_names=["data"], output_names=["logits"],
                          dynamic_axes={"data": {0: "batch"}, "logits": {0: "batch"}})  # fmt: skip
    notes.append("torchvision ONNX export: torch.onnx.export (TorchScript exporter, opset %d, eval mode: BatchNorm "
                 "folded into the convolutions, constants folded), batch axis free, %.1f s"
                 % (OPSET, time.perf_counter() - start))  # fmt: skip
    return files


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--min-time", type=float, default=3.0)
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--check", help=".npy of images whose top-1 each model reports")
    parser.add_argument("--export-dir", help="write torchvision.pth and torchvision.onnx here")
    args = parser.parse_args()

    import numpy as np
    import torch
    import torchvision

    torch.set_num_threads(args.threads)
    notes = ["torch %s, torchvision %s, %d threads (torch.set_num_threads)"
             % (torch.__version__, torchvision.__version__, torch.get_num_threads())]
    model, models = build(args, torch, torchvision, notes)
    files = export(model, torch, args, notes) if args.export_dir else {}
    top1 = {}
    if args.check:
        check = torch.from_numpy(np.load(args.check).astype(np.float32))
        with torch.no_grad():
            for name, run in models:
                top1[name] = [int(c) for i in range(0, len(check), args.batch)
                              for c in run(check[i : i + args.batch]).float().argmax(1)]  # fmt: skip
    print(json.dumps({"ready": True, "notes": notes, "models": [name for name, _ in models], "top1": top1,
                      "files": files, "params": sum(p.numel() for p in model.parameters())}), flush=True)  # fmt: skip
    for line in sys.stdin:
        if line.strip() != "round":
            break
        rows = []
        for name, run in models:
            ips, lat = measure(run, torch, args.batch, args.size, args.min_time, args.latency_runs)
            rows.append({"name": name, "img_per_s": ips, "latency_ms": lat})
        print(json.dumps({"rows": rows}), flush=True)


if __name__ == "__main__":
    main()
