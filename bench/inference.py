"""CPU inference speed: ours (float32, INT8, bfloat16) against each peer's best mode, in one run.

One run measures, at 224x224 with 1000 classes and the same number of threads for everyone:
images per second at batch 32 and the median latency at batch 1, for

- ours: float32 (plain ``hybridize`` and oneDNN-fused), bfloat16 (``to_bfloat16``), INT8
  (``quantize_int8``), and GluonCV's googlenet;
- torchvision (eager NCHW, channels_last, channels_last + bf16 autocast, ``torch.compile``) in the
  torch interpreter (``--torch-python``; GluonCV does not import beside torch >= 2);
- ONNX Runtime (float32 and its own static INT8) and OpenVINO (float32, bf16, INT8) on OUR exported
  ONNX file, in the peers interpreter (``--peers-python``; ``BENCH=1 bash scripts/setup.sh`` makes it).

    PYTHONPATH=$PWD python bench/inference.py --threads 2 --markdown inference.md

Rounds are round-robin over every model and runtime. Ratios are printed against the best peer of
the same precision. Weights are random: speed does not depend on their values. Every INT8 model is
calibrated on the same random images, and the top-1 agreement of each INT8/bfloat16 model with our
float32 is printed for the same check images (accuracy on real images: tests/deploy/test_quantize.py).
"""
import argparse
import contextlib
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings

from _timing import rate_and_latency  # bench/, first on sys.path when a bench script runs

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_TORCH_PYTHON = os.environ.get("GLUON_INCEPTION_TORCH_PYTHON", os.path.join(ROOT, ".venv-torch/bin/python"))
DEFAULT_PEERS_PYTHON = os.environ.get("GLUON_INCEPTION_PEERS_PYTHON", os.path.join(ROOT, ".venv-peers/bin/python"))


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
    parser.add_argument("--peers-python", default=DEFAULT_PEERS_PYTHON,
                        help="interpreter with onnxruntime and openvino (BENCH=1 bash scripts/setup.sh)")
    parser.add_argument("--no-peers", action="store_true", help="skip ONNX Runtime and OpenVINO")
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
    return rate_and_latency(lambda a: forward(a).wait_to_read(), x, x1, batch, min_time, latency_runs)


def agreement(reference, other):
    """Top-1 agreement of two class lists, and a sentence for the notes."""
    same = sum(int(x == y) for x, y in zip(reference, other)) / max(1, len(reference))
    return "same top-1 class as our float32 for %.1f%% of %d check images" % (100 * same, len(reference))


def top1(block, images, batch):
    """The class ``block`` predicts for each image of the numpy array ``images``."""
    from gluon_inception._compat import mx

    outputs = [block(mx.nd.array(images[i : i + batch])).asnumpy() for i in range(0, len(images), batch)]
    return [int(c) for out in outputs for c in out.argmax(1)]


def summarise(name, rounds):
    """A table row from per-round (img/s, ms) pairs: the best round, and the median for reference."""
    ips = sorted(r[0] for r in rounds)
    lat = sorted(r[1] for r in rounds)
    return {"name": name, "img_per_s": ips[-1], "latency_ms": lat[0],
            "img_per_s_median": ips[len(ips) // 2], "latency_ms_median": lat[len(lat) // 2],
            "rounds": len(rounds)}


def mxnet_models(args, notes, workdir):
    """[(name, block)] of the MXNet rows (ours in float32, INT8 and bfloat16, and GluonCV's), and the
    inputs of the peers: our float32 ONNX file, the calibration and check images (``.npy``), and our
    float32 top-1 on the check images."""
    from gluon_inception import cpu, googlenet
    from gluon_inception._compat import mx, np
    from gluon_inception.deploy.quantize import (
        QuantizationError,
        optimize_float32,
        quantize_int8,
        to_bfloat16,
    )

    models = []
    mx.random.seed(0)
    rng = np.random.RandomState(0)
    shape = (3, args.size, args.size)
    calib = rng.normal(size=(2 * args.batch,) + shape).astype(np.float32)
    check = rng.normal(size=(2 * args.batch,) + shape).astype(np.float32)
    net = googlenet(classes=1000, topology="gluoncv")
    net.hybridize(static_alloc=True, static_shape=True)
    models.append(("ours float32 (hybridized, static_alloc)", net))
    reference = top1(net, check, args.batch)
    fused = optimize_float32(net, input_shape=(args.batch,) + shape)
    notes.append("ours float32 oneDNN-fused vs plain: " + agreement(reference, top1(fused, check, args.batch)))
    models.append(("ours float32 (oneDNN fused)", fused))

    start = time.perf_counter()
    try:
        qnet = quantize_int8(net, mx.nd.array(calib), calib_mode="naive", batch_size=args.batch)
    except QuantizationError as err:  # refused (the AMX 1x1 bug at some input sizes): no row
        notes.append("INT8 refused: %s" % err)
    else:
        notes.append("INT8: naive calibration on %d images took %.1f s" % (calib.shape[0], time.perf_counter() - start))
        notes.append("ours INT8: " + agreement(reference, top1(qnet, check, args.batch)))
        models.append(("ours INT8 (oneDNN, calibrated)", qnet))

    if cpu.supports_bf16():
        try:
            bnet = to_bfloat16(net, input_shape=(args.batch,) + shape)
            notes.append("ours bfloat16: " + agreement(reference, top1(bnet, check, args.batch)))
            models.append(("ours bfloat16 (oneDNN fused)", bnet))
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

    peers = None
    if not args.no_peers:
        from gluon_inception.deploy.export import export_onnx

        onnx_path = os.path.join(workdir, "googlenet.onnx")
        try:
            export_onnx(net, onnx_path, input_shape=(1,) + shape, dynamic_batch=True, check=False)
            np.save(os.path.join(workdir, "calib.npy"), calib)
            np.save(os.path.join(workdir, "check.npy"), check)
            peers = {"onnx": onnx_path, "calib": os.path.join(workdir, "calib.npy"),
                     "check": os.path.join(workdir, "check.npy"), "reference": reference}  # fmt: skip
        except Exception as err:  # noqa: BLE001 - no ONNX file, no ONNX peers; ours still measured
            notes.append("ONNX Runtime and OpenVINO skipped: our ONNX export failed: %s" % str(err).splitlines()[0])
    return models, peers


class Worker:
    """A peer script in its own interpreter, answering one round per request (JSON lines on stdout)."""

    def __init__(self, cmd, args, notes):
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
        env.pop("PYTHONPATH", None)
        # stdout carries JSON lines; the worker's warnings and errors go straight to this terminal.
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = self._read()
        notes.extend(self.ready["notes"])
        self.names = self.ready["models"]

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError("the worker %s stopped (exit %s); its error is printed above"
                           % (os.path.basename(self.proc.args[1]), self.proc.wait()))  # fmt: skip

    def round(self):
        self.proc.stdin.write("round\n")
        self.proc.stdin.flush()
        return self._read()["rows"]

    def close(self):
        with contextlib.suppress(OSError):
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _common(args):
    return ["--threads", str(args.threads), "--batch", str(args.batch), "--size", str(args.size),
            "--min-time", str(args.min_time), "--latency-runs", str(args.latency_runs)]  # fmt: skip


def start_workers(args, notes, peers):
    """The torch and peers workers that are available; each absence is noted."""
    workers = []
    if args.no_torch:
        pass
    elif not os.path.exists(args.torch_python):
        notes.append("torchvision skipped: no interpreter at %s (--torch-python)" % args.torch_python)
    else:
        cmd = [args.torch_python, os.path.join(HERE, "_torch_inference.py")] + _common(args)
        try:
            workers.append(Worker(cmd + (["--no-compile"] if args.no_compile else []), args, notes))
        except RuntimeError as err:
            notes.append("torchvision skipped: %s" % err)
    if peers is None:
        pass
    elif not os.path.exists(args.peers_python):
        notes.append("ONNX Runtime and OpenVINO skipped: no interpreter at %s (--peers-python; "
                     "BENCH=1 bash scripts/setup.sh makes .venv-peers)" % args.peers_python)  # fmt: skip
    else:
        cmd = [args.peers_python, os.path.join(HERE, "_peer_inference.py"), "--onnx", peers["onnx"],
               "--calib", peers["calib"], "--check", peers["check"]] + _common(args)  # fmt: skip
        try:
            worker = Worker(cmd, args, notes)
            for name, classes in worker.ready["top1"].items():
                if "INT8" in name or "bf" in name:
                    notes.append("%s: %s" % (name, agreement(peers["reference"], classes)))
            workers.append(worker)
        except RuntimeError as err:
            notes.append("ONNX Runtime and OpenVINO skipped: %s" % err)
    return workers


def run_rounds(args, notes):
    """Measure every model ``--rounds`` times, interleaving MXNet's rounds with each worker's."""
    from gluon_inception._compat import mx

    with tempfile.TemporaryDirectory(prefix="gluon-inception-bench-") as workdir:
        models, peers = mxnet_models(args, notes, workdir)
        workers = start_workers(args, notes, peers)
        results = {name: [] for name, _ in models}
        for worker in workers:
            results.update({name: [] for name in worker.names})
        # Each round visits the MXNet models and the workers in a rotated order with a pause between
        # them, so that no model always runs first after another runtime's busy threads.
        units = list(models) + [(None, worker) for worker in workers]
        try:
            for r in range(args.rounds):
                shift = r % len(units)
                for name, unit in units[shift:] + units[:shift]:
                    time.sleep(args.pause)
                    if name is None:
                        rows = [(row["name"], row["img_per_s"], row["latency_ms"]) for row in unit.round()]
                    else:
                        rows = [(name,) + measure(unit, mx, args.batch, args.size, args.min_time, args.latency_runs)]
                    for row_name, ips, lat in rows:
                        results[row_name].append((ips, lat))
                        print("  round %d  %-56s %8.1f img/s  %7.2f ms" % (r + 1, row_name, ips, lat), flush=True)
        finally:
            for worker in workers:
                worker.close()
    return [summarise(name, rounds) for name, rounds in results.items()]


def precision(name):
    """The precision a row computes in, read from its name."""
    if "INT8" in name:
        return "int8"
    if "bf16" in name or "bfloat16" in name:
        return "bf16"
    return "fp32"


def table(rows, batch=32):
    """The Markdown table; each row's ratio is against the fastest peer (not ours) of its precision."""
    best = {}
    for r in rows:
        if not r["name"].startswith("ours"):
            p = precision(r["name"])
            if p not in best or r["img_per_s"] > best[p]["img_per_s"]:
                best[p] = r
    lines = [
        "| model | precision | img/s, batch %d | latency, batch 1 (ms) | throughput vs best peer of that precision "
        "| median img/s | median ms |" % batch,
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        peer = best.get(precision(r["name"]))
        ratio = "%.2fx (%s)" % (r["img_per_s"] / peer["img_per_s"], peer["name"]) if peer else "n/a"
        lines.append("| %s | %s | %.1f | %.1f | %s | %.1f | %.1f |" % (
            r["name"], precision(r["name"]), r["img_per_s"], r["latency_ms"], ratio, r["img_per_s_median"],
            r["latency_ms_median"]))
    return "\n".join(lines)


def environment(args):
    from gluon_inception import cpu
    from gluon_inception._compat import mx, np

    model = cpu.describe()
    isa = sorted(f for f in cpu.flags() if f.startswith(("avx512", "amx", "avx_vnni")))
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
        "Ratios are against the fastest peer (not ours) of the same precision; higher is better.",
        "",
    ]  # fmt: skip
    if notes:
        lines += ["Notes from the run:", ""] + ["- %s" % n for n in notes] + [""]
    lines += ["Command:", "", "```", command, "```", ""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
