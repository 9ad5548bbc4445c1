"""torchvision's googlenet inference timings; run by bench/inference.py in a torch environment.

GluonCV refuses to import beside torch >= 2, so this runs in its own interpreter and prints one
JSON line: {"torch": version, "rows": [{"name", "rounds": [[img/s, ms], ...]} ...], "notes": [...]}.
"""
import argparse
import json
import sys
import time


def measure(model, torch, batch, size, min_time, latency_runs):
    x32 = torch.randn(batch, 3, size, size)
    x1 = torch.randn(1, 3, size, size)
    with torch.no_grad():
        for _ in range(2):
            model(x32)
        runs, start = 0, time.perf_counter()
        while True:
            model(x32)
            runs += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time and runs >= 2:
                break
        throughput = runs * batch / elapsed
        for _ in range(3):
            model(x1)
        times = []
        for _ in range(latency_runs):
            t = time.perf_counter()
            model(x1)
            times.append(time.perf_counter() - t)
    times.sort()
    return throughput, 1000 * times[len(times) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--min-time", type=float, default=3.0)
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()

    import torch
    import torchvision

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False).eval()
    notes = ["torch %s, torchvision %s, %d threads" % (torch.__version__, torchvision.__version__,
                                                        torch.get_num_threads())]
    models = [("torchvision googlenet (eager)", model)]
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
    results = {name: [] for name, _ in models}
    for r in range(args.rounds):
        for name, m in models:
            ips, lat = measure(m, torch, args.batch, args.size, args.min_time, args.latency_runs)
            results[name].append([ips, lat])
            print("  round %d  %-46s %8.1f img/s  %7.2f ms" % (r + 1, name, ips, lat), file=sys.stderr, flush=True)
    rows = [{"name": name, "rounds": results[name]} for name, _ in models]
    print(json.dumps({"torch": torch.__version__, "rows": rows, "notes": notes}))


if __name__ == "__main__":
    main()
