#!/usr/bin/env python
"""CPU training throughput at 224x224, batch 32: ours (float32, bfloat16) against torchvision's best modes.

Each configuration trains on a fixed random batch (forward, cross-entropy, backward, SGD with
momentum) for ``--warmup`` untimed and ``--steps`` timed steps in its own process; the figure is
images per second. Configurations run one after the other (never competing for the cores), in
round-robin rounds so that load from other processes spreads over all of them; median and best
round are reported, with ratios against torchvision's fastest mode measured in the same run. Rows that
this CPU cannot run (bfloat16 without AVX-512 BF16, AMX without AMX; ``DNNL_MAX_CPU_ISA`` counts) are
skipped and named as skipped.

* ours float32: hybridized with ``static_alloc``/``static_shape``, as ``gluon-inception train`` runs.
* ours bfloat16: the same with MXNet AMP (``amp.init(target_dtype="bfloat16")``), as
  ``gluon-inception train --precision bfloat16`` runs: AVX-512 BF16 kernels by default. ``AMX``
  switches AMX on (``GLUON_INCEPTION_AMX=1``, ``gluon_inception/cpu.py``): oneDNN uses AMX tiles,
  and convolution inputs are zero-padded to 32-channel multiples for the AMX kernels
  (``gluon_inception/training/amx.py``); ``AMX without the input padding`` leaves it out, to show
  what it gains.
* torchvision googlenet (in its own interpreter, ``--torch-python``: GluonCV and torch >= 2
  cannot share one): NCHW float32, channels_last float32, channels_last + ``torch.autocast("cpu",
  dtype=torch.bfloat16)``.

    PYTHONPATH=$PWD python bench/train_throughput.py --threads 2 --rounds 3
    PYTHONPATH=$PWD python bench/train_throughput.py --steps 2 --warmup 1 --rounds 1   # a quick check

Every process gets ``--threads`` OpenMP threads (OMP_NUM_THREADS, torch.set_num_threads).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TORCH_PYTHON = os.environ.get("TORCH_PYTHON", "/work/main/.venv-torch/bin/python")


#: CPU seconds (user + system, all threads) the timed steps of the last measurement used.
CPU_SECONDS = []


def _time_steps(step, warmup, steps):
    for _ in range(warmup):
        step()
    cpu, start = time.process_time(), time.perf_counter()
    for _ in range(steps):
        step()
    CPU_SECONDS.append(time.process_time() - cpu)
    return time.perf_counter() - start


def mxnet_throughput(dtype, topology, batch, size, warmup, steps, classes=1000, amx_fixes=True):
    """Training images per second of our GoogLeNet (hybridized, static allocation)."""
    from profile_train_step import build_step  # bench/, first on sys.path: the step the profiler looks into

    step, _ = build_step(dtype, batch, size, topology, "sgd", classes=classes, wd=0.0, amx_fixes=amx_fixes)
    return batch * steps / _time_steps(step, warmup, steps)


def torch_throughput(mode, threads, batch, size, warmup, steps, classes=1000):
    """Training images per second of torchvision's googlenet (runs in the torch interpreter)."""
    import contextlib

    import torch
    import torchvision

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = torchvision.models.googlenet(num_classes=classes, aux_logits=False, init_weights=True)
    net.train()
    x = torch.rand(batch, 3, size, size)
    if mode != "nchw":
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    y = torch.randint(0, classes, (batch,))

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16) if mode == "cl-bf16" else contextlib.nullcontext()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_fn(net(x), y)
        loss.backward()
        optimizer.step()

    return batch * steps / _time_steps(step, warmup, steps)


#: label, worker, interpreter ("mxnet" or "torch"), extra environment, CPU feature needed (None, "bf16", "amx")
CONFIGS = (
    ("ours float32", "ours-float32", "mxnet", {}, None),
    ("ours bfloat16 (AMP)", "ours-bfloat16", "mxnet", {}, "bf16"),
    ("ours bfloat16 (AMP), AMX", "ours-bfloat16", "mxnet", {"GLUON_INCEPTION_AMX": "1"}, "amx"),
    ("ours bfloat16 (AMP), AMX without the input padding", "ours-bfloat16-nofixes", "mxnet",
     {"GLUON_INCEPTION_AMX": "1"}, "amx"),
    ("torchvision NCHW float32", "torch-nchw", "torch", {}, None),
    ("torchvision channels_last float32", "torch-cl", "torch", {}, None),
    ("torchvision channels_last + bf16 autocast", "torch-cl-bf16", "torch", {}, "bf16"),
)  # fmt: skip


def cpu_can(feature):
    """Whether this CPU (after ``DNNL_MAX_CPU_ISA``) has ``feature``: None, "bf16" or "amx"."""
    sys.path.insert(0, os.path.dirname(HERE))
    from gluon_inception import cpu

    if feature == "bf16":
        return cpu.supports_bf16()
    if feature == "amx":
        return cpu.amx_in_use(dict(os.environ, GLUON_INCEPTION_AMX="1"))
    return True


def _worker(args):
    a = (args.batch, args.size, args.warmup, args.steps)
    if args.worker.startswith("ours-"):
        dtype, _, variant = args.worker[5:].partition("-")
        return mxnet_throughput(dtype, args.topology, *a, amx_fixes=variant != "nofixes")
    return torch_throughput(args.worker[6:], args.threads, *a)


def _run_worker(python, which, args, extra_env):
    cmd = [python, os.path.abspath(__file__), "--worker", which, "--batch", str(args.batch), "--size", str(args.size),
           "--warmup", str(args.warmup), "--steps", str(args.steps), "--threads", str(args.threads),
           "--topology", args.topology]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads), **extra_env)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit("%s worker failed:\n%s" % (which, proc.stderr[-3000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions (median and best reported)")
    parser.add_argument("--threads", type=int, default=2, help="OpenMP threads of every process")
    parser.add_argument("--topology", default="gluoncv", choices=("gluoncv", "paper"),
                        help="ours: gluoncv = torchvision's network (3x3 third branch); paper = true 5x5")  # fmt: skip
    parser.add_argument("--torch-python", default=DEFAULT_TORCH_PYTHON, help="interpreter with torch + torchvision")
    parser.add_argument("--only", help="comma-separated labels' substrings: run only the matching configurations")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        speed = _worker(args)
        print(json.dumps({"img_per_sec": speed, "cpu_ms_per_img": 1000 * CPU_SECONDS[-1] / (args.steps * args.batch)}))
        return 0

    configs = list(CONFIGS)
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        configs = [c for c in configs if any(w in c[0] for w in wanted)]
    if not os.path.isfile(args.torch_python):
        print("skipping torchvision: no interpreter at %s (--torch-python)" % args.torch_python, file=sys.stderr)
        configs = [c for c in configs if c[2] != "torch"]
    sys.path.insert(0, os.path.dirname(HERE))
    from gluon_inception.cpu import describe

    print("CPU: %s" % describe())
    skipped = [c for c in configs if not cpu_can(c[4])]
    for label, _, _, _, feature in skipped:
        print("skipped: %s (this CPU has no %s)" % (label, {"bf16": "native bfloat16", "amx": "AMX"}[feature]))
    configs = [c for c in configs if c not in skipped]
    pythons = {"mxnet": sys.executable, "torch": args.torch_python}
    speeds = {label: [] for label, _, _, _, _ in configs}
    cpu = {label: [] for label, _, _, _, _ in configs}
    for round_index in range(args.rounds):
        for label, which, interpreter, env, _ in configs:
            result = _run_worker(pythons[interpreter], which, args, env)
            speeds[label].append(result["img_per_sec"])
            cpu[label].append(result["cpu_ms_per_img"])
            print("round %d  %-45s %7.1f img/s  %6.0f CPU ms/img" % (round_index + 1, label, speeds[label][-1],
                                                                     cpu[label][-1]), flush=True)  # fmt: skip
    median = {label: statistics.median(values) for label, values in speeds.items()}
    best = {label: max(values) for label, values in speeds.items()}
    peers = [label for label, _, interpreter, _, _ in configs if interpreter == "torch"]
    reference = max(peers, key=median.get) if peers else None  # torchvision's best mode on this CPU
    print()
    print("CPU training, %dx%d, batch %d, %d thread(s), %d timed steps after %d warm-up, %d round(s); "
          "ours: topology %s" % (args.size, args.size, args.batch, args.threads, args.steps, args.warmup, args.rounds,
                                 args.topology))  # fmt: skip
    print("CPU ms/img: processor time (all threads) per image, min of the rounds; less sensitive to other load")
    print("| configuration | img/s median | img/s best | median vs %s | best vs it | CPU ms/img |" % reference)
    print("|---|---:|---:|---:|---:|---:|")
    for label, _, _, _, _ in configs:
        ratios = ["%.2fx" % (t[label] / t[reference]) if reference else "-" for t in (median, best)]
        print("| %s | %.1f | %.1f | %s | %s | %.0f |" % (label, median[label], best[label], ratios[0], ratios[1],
                                                         min(cpu[label])))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
