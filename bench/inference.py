"""CPU inference speed: ours (float32, INT8, bfloat16) against GluonCV and torchvision googlenet.

One run measures, at 224x224 with 1000 classes and the same number of threads for everyone:
images per second at batch 32 and the median latency at batch 1. torchvision runs in its own
interpreter (``--torch-python``), because GluonCV does not import beside torch >= 2.

    PYTHONPATH=$PWD python bench/inference.py --threads 2 --markdown inference.md

Weights are random: speed does not depend on their values. The INT8 model is calibrated on
random images for the same reason; its accuracy is measured separately (tests/test_quantize.py
and ``gluon-inception evaluate --precision int8``).
"""
import argparse
import contextlib
import datetime
import json
import os
import platform
import subprocess
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TORCH_PYTHON = os.environ.get("GLUON_INCEPTION_TORCH_PYTHON", "/work/venv-torch/bin/python")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for every framework")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--min-time", type=float, default=3.0, help="seconds of timed batches per row")
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3,
                        help="measure every model this many times, round-robin (torch rounds interleaved with "
                             "MXNet's), and report the best round: on a shared machine it is the least disturbed")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds of idle time before each measurement")
    parser.add_argument("--torch-python", default=DEFAULT_TORCH_PYTHON, help="interpreter with torch+torchvision")
    parser.add_argument("--no-torch", action="store_true", help="skip torchvision")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (it compiles for minutes)")
    parser.add_argument("--no-gluoncv", action="store_true")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--markdown", help="write the table and the command as a Markdown page here")
    return parser.parse_args(argv)


def pin_threads(threads):
    # Before MXNet is imported: its OpenMP pool reads these once.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")


def measure(forward, mx, batch, size, min_time, latency_runs):
    """One round: (images/s at ``batch``, median ms at batch 1) for a callable on NDArrays."""
    x = mx.nd.random.normal(shape=(batch, 3, size, size))
    x1 = mx.nd.random.normal(shape=(1, 3, size, size))
    for _ in range(2):
        forward(x).wait_to_read()
    runs, start = 0, time.perf_counter()
    while True:
        forward(x).wait_to_read()
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time and runs >= 2:
            break
    throughput = runs * batch / elapsed
    for _ in range(3):
        forward(x1).wait_to_read()
    times = []
    for _ in range(latency_runs):
        t = time.perf_counter()
        forward(x1).wait_to_read()
        times.append(time.perf_counter() - t)
    times.sort()
    return throughput, 1000 * times[len(times) // 2]


def agreement(reference, other, mx, size):
    """How closely ``other`` reproduces ``reference``: top-1 agreement and the largest logit error."""
    x = mx.nd.random.normal(shape=(16, 3, size, size))
    a, b = reference(x).asnumpy(), other(x).asnumpy()
    same = (a.argmax(1) == b.argmax(1)).mean()
    return "same top-1 class for %.0f%%, largest logit difference %.3g (logits up to %.3g)" % (
        100 * same, abs(a - b).max(), abs(a).max())


def summarise(name, rounds):
    """A table row from per-round (img/s, ms) pairs: the best round, and the median for reference."""
    ips = sorted(r[0] for r in rounds)
    lat = sorted(r[1] for r in rounds)
    return {"name": name, "img_per_s": ips[-1], "latency_ms": lat[0],
            "img_per_s_median": ips[len(ips) // 2], "latency_ms_median": lat[len(lat) // 2],
            "rounds": len(rounds)}


def mxnet_models(args, notes):
    """[(name, block)] of the MXNet rows: ours in float32, INT8 and bfloat16, and GluonCV's."""
    from gluon_inception import googlenet
    from gluon_inception._compat import mx
    from gluon_inception.deploy.quantize import QuantizationError, cpu_supports_bf16, quantize_int8, to_bfloat16

    models = []
    mx.random.seed(0)
    net = googlenet(classes=1000, topology="gluoncv")
    net.hybridize(static_alloc=True, static_shape=True)
    models.append(("ours float32 (hybridized, static_alloc)", net))

    calib = mx.nd.random.normal(shape=(2 * args.batch, 3, args.size, args.size))
    start = time.perf_counter()
    qnet = quantize_int8(net, calib, calib_mode="naive", batch_size=args.batch)
    notes.append("INT8: naive calibration on %d images took %.1f s" % (calib.shape[0], time.perf_counter() - start))
    notes.append("INT8 vs float32 on 16 random images: " + agreement(net, qnet, mx, args.size))
    models.append(("ours INT8 (oneDNN, calibrated)", qnet))

    if cpu_supports_bf16():
        try:
            bnet = to_bfloat16(net, input_shape=(1, 3, args.size, args.size))
            notes.append("bfloat16 vs float32 on 16 random images: " + agreement(net, bnet, mx, args.size))
            models.append(("ours bfloat16 (amp)", bnet))
        except (QuantizationError, mx.base.MXNetError) as err:
            notes.append("bfloat16 failed: %s" % str(err).splitlines()[0])
    else:
        notes.append("bfloat16 skipped: this CPU has no native bfloat16")

    if not args.no_gluoncv:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from gluoncv.model_zoo import googlenet as gluoncv_googlenet
            theirs = gluoncv_googlenet(classes=1000)
            theirs.initialize(mx.init.Xavier())
            theirs.hybridize(static_alloc=True, static_shape=True)
            models.append(("GluonCV googlenet (hybridized, static_alloc)", theirs))
        except Exception as err:  # noqa: BLE001 - the peer's absence is reported, ours still measured
            notes.append("GluonCV skipped: %s: %s" % (type(err).__name__, err))
    return models


class TorchWorker:
    """``_torch_inference.py`` in the torch interpreter, answering one round per request."""

    def __init__(self, args, notes):
        cmd = [
            args.torch_python, os.path.join(HERE, "_torch_inference.py"),
            "--threads", str(args.threads), "--batch", str(args.batch), "--size", str(args.size),
            "--min-time", str(args.min_time), "--latency-runs", str(args.latency_runs),
        ] + (["--no-compile"] if args.no_compile else [])  # fmt: skip
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
        env.pop("PYTHONPATH", None)
        # stdout carries JSON lines; the worker's warnings and errors go straight to this terminal.
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self._read()
        notes.extend(ready["notes"])
        self.names = ready["models"]

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError("the torch worker stopped (exit %s); its error is printed above" % self.proc.wait())

    def round(self):
        self.proc.stdin.write("round\n")
        self.proc.stdin.flush()
        return self._read()["rows"]

    def close(self):
        with contextlib.suppress(OSError):
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def run_rounds(args, notes):
    """Measure every model ``--rounds`` times, interleaving MXNet and torch rounds."""
    from gluon_inception._compat import mx

    models = mxnet_models(args, notes)
    worker = None
    if args.no_torch:
        pass
    elif not os.path.exists(args.torch_python):
        notes.append("torchvision skipped: no interpreter at %s (--torch-python)" % args.torch_python)
    else:
        try:
            worker = TorchWorker(args, notes)
        except RuntimeError as err:
            notes.append("torchvision skipped: %s" % err)
    results = {name: [] for name, _ in models}
    if worker is not None:
        results.update({name: [] for name in worker.names})
    # Each round visits the MXNet models and the torch worker in a rotated order with a pause between
    # them, so that no model always runs first after another runtime's busy threads.
    units = [(name, block) for name, block in models] + ([("torch", None)] if worker is not None else [])
    try:
        for r in range(args.rounds):
            shift = r % len(units)
            for name, block in units[shift:] + units[:shift]:
                time.sleep(args.pause)
                if block is None:
                    rows = [(row["name"], row["img_per_s"], row["latency_ms"]) for row in worker.round()]
                else:
                    rows = [(name,) + measure(block, mx, args.batch, args.size, args.min_time, args.latency_runs)]
                for row_name, ips, lat in rows:
                    results[row_name].append((ips, lat))
                    print("  round %d  %-46s %8.1f img/s  %7.2f ms" % (r + 1, row_name, ips, lat), flush=True)
    finally:
        if worker is not None:
            worker.close()
    return [summarise(name, rounds) for name, rounds in results.items()]


def table(rows, batch=32):
    base = next((r for r in rows if r["name"].startswith("torchvision googlenet (eager)")), None)
    lines = [
        "| model | img/s, batch %d | latency, batch 1 (ms) | throughput vs torchvision | latency vs torchvision "
        "| median img/s | median ms |" % batch,
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if base:
            ratio = "%.2fx" % (r["img_per_s"] / base["img_per_s"])
            lat_ratio = "%.2fx" % (base["latency_ms"] / r["latency_ms"])
        else:
            ratio = lat_ratio = "n/a"
        lines.append("| %s | %.1f | %.1f | %s | %s | %.1f | %.1f |" % (
            r["name"], r["img_per_s"], r["latency_ms"], ratio, lat_ratio, r["img_per_s_median"],
            r["latency_ms_median"]))
    return "\n".join(lines)


def environment(args):
    from gluon_inception._compat import mx, np
    from gluon_inception.deploy.quantize import cpu_flags

    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    isa = sorted(f for f in cpu_flags() if f.startswith(("avx512", "amx", "avx_vnni")))
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "threads": args.threads,
        "isa": isa,
        "python": platform.python_version(),
        "mxnet": mx.__version__,
        "numpy": np.__version__,
        "date": datetime.date.today().isoformat(),
    }


def main(argv=None):
    args = parse_args(argv)
    pin_threads(args.threads)
    sys.path.insert(0, os.path.dirname(HERE))
    notes = []
    load_before = os.getloadavg()[0]
    print("threads pinned to %d for MXNet (OMP_NUM_THREADS) and torch (set_num_threads)" % args.threads)
    rows = run_rounds(args, notes)
    notes.append("1-minute load average of the machine: %.1f at the start, %.1f at the end (other jobs share it)"
                 % (load_before, os.getloadavg()[0]))
    env = environment(args)
    text = table(rows, args.batch)
    print()
    print(text)
    for note in notes:
        print("note:", note)
    command = "python bench/inference.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"environment": env, "rows": rows, "notes": notes, "command": command}, f, indent=2)
    if args.markdown:
        write_markdown(args.markdown, text, notes, env, command, args)
    return 0


def write_markdown(path, text, notes, env, command, args):
    lines = [
        "# CPU inference benchmark",
        "",
        "GoogLeNet inference at %dx%d, 1000 classes, random weights, measured in one run on %s "
        "(%d cores; %s), %s, Python %s, MXNet %s. Every framework was pinned to %d threads "
        "(`OMP_NUM_THREADS` for MXNet, `torch.set_num_threads` for torch). Throughput is images per "
        "second over at least %.0f s of batches of %d; latency is the median of %d single-image runs. "
        "Each model was measured %d times, round-robin with the others (torch rounds interleaved "
        "with MXNet's, the order rotated every round, an idle second before each measurement); the table "
        "gives the best round, and the median round beside it."
        % (args.size, args.size, env["cpu"], env["cores"], ", ".join(env["isa"]) or "no AVX-512", env["date"],
           env["python"], env["mxnet"], env["threads"], args.min_time, args.batch, args.latency_runs,
           args.rounds),
        "",
        text,
        "",
        "Ratios are against torchvision's eager googlenet (higher is better for both).",
        "",
    ]  # fmt: skip
    if notes:
        lines += ["Notes from the run:", ""] + ["- %s" % n for n in notes] + [""]
    lines += ["Command:", "", "```", command, "```", ""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
