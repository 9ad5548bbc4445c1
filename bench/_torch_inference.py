"""torchvision's googlenet inference timings; a worker driven by bench/inference.py in a torch environment.

GluonCV refuses to import beside torch >= 2, so this runs in its own interpreter. It builds the
models (and compiles one with ``torch.compile``), prints one JSON line ``{"ready": true, "notes":
[...], "models": [...]}``, then answers every ``round`` line on stdin with one JSON line
``{"rows": [{"name", "img_per_s", "latency_ms"}, ...]}``, so that the caller can interleave these
rounds with its own (the machine is shared, and load changes from minute to minute). ``quit``
ends it.
"""
import argparse
import json
import sys
import time

from _timing import rate_and_latency  # bench/, first on sys.path when a bench script runs


def measure(model, torch, batch, size, min_time, latency_runs):
    """One round: (images/s at ``batch``, median ms at batch 1)."""
    x = torch.randn(batch, 3, size, size)
    x1 = torch.randn(1, 3, size, size)
    with torch.no_grad():
        return rate_and_latency(model, x, x1, batch, min_time, latency_runs)


def build(args, torch, torchvision, notes):
    torch.manual_seed(0)
    model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False).eval()
    models = [("torchvision googlenet (eager)", model)]
    # What a PyTorch user picks on a CPU: channels_last, and bfloat16 autocast where the CPU has it.
    last = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False).eval()
    last = last.to(memory_format=torch.channels_last)

    def channels_last(x):
        return last(x.contiguous(memory_format=torch.channels_last))

    models.append(("torchvision googlenet (channels_last)", channels_last))

    def autocast_bf16(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return last(x.contiguous(memory_format=torch.channels_last))

    models.append(("torchvision googlenet (channels_last + bf16 autocast)", autocast_bf16))
    if not args.no_compile:
        try:
            compiled = torch.compile(model)
            start = time.perf_counter()
            with torch.no_grad():
                compiled(torch.randn(args.batch, 3, args.size, args.size))
                compiled(torch.randn(1, 3, args.size, args.size))
            notes.append("torch.compile: compiling took %.0f s" % (time.perf_counter() - start))
            models.append(("torchvision googlenet (torch.compile)", compiled))
        except Exception as err:  # noqa: BLE001 - report why compile is unavailable, keep eager numbers
            notes.append("torch.compile failed here: %s: %s" % (type(err).__name__, str(err).splitlines()[0][:200]))
    return models


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--min-time", type=float, default=3.0)
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()

    import torch
    import torchvision

    torch.set_num_threads(args.threads)
    notes = ["torch %s, torchvision %s, %d threads (torch.set_num_threads)"
             % (torch.__version__, torchvision.__version__, torch.get_num_threads())]
    models = build(args, torch, torchvision, notes)
    print(json.dumps({"ready": True, "notes": notes, "models": [name for name, _ in models]}), flush=True)
    for line in sys.stdin:
        if line.strip() != "round":
            break
        rows = []
        for name, model in models:
            ips, lat = measure(model, torch, args.batch, args.size, args.min_time, args.latency_runs)
            rows.append({"name": name, "img_per_s": ips, "latency_ms": lat})
        print(json.dumps({"rows": rows}), flush=True)


if __name__ == "__main__":
    main()
