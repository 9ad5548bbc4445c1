#!/usr/bin/env python
"""CPU training throughput at 224x224, batch 32: our GoogLeNet against torchvision's, same run.

Each network trains on a fixed random batch (forward, backward, SGD with momentum update) for
``--warmup`` untimed and ``--steps`` timed steps; the figure is images per second. torchvision
runs in its own interpreter (GluonCV and torch >= 2 cannot share one), one after the other, so
the two never compete for the cores.

    python bench/train_throughput.py        # ours (paper and gluoncv topologies), GluonCV, torchvision
    python bench/train_throughput.py --steps 10 --rounds 3 --torch-python /work/venv-torch/bin/python

Prints a table (median and best of the rounds) and the ratios ours / torchvision. Numbers go
into docs/benchmarks.rst.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TORCH_PYTHON = os.environ.get("TORCH_PYTHON", "/work/venv-torch/bin/python")


def _time_steps(step, warmup, steps):
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start


def mxnet_throughput(which, batch, size, warmup, steps, classes=1000):
    """Training images per second of an MXNet GoogLeNet (hybridized, static allocation)."""
    sys.path.insert(0, os.path.dirname(HERE))
    from gluon_inception import googlenet
    from gluon_inception._compat import mx

    mx.random.seed(0)
    if which == "gluoncv-model":
        from gluoncv.model_zoo import get_model

        net = get_model("googlenet", classes=classes)
        net.initialize(mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2))
    else:
        net = googlenet(classes=classes, topology=which)
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.01, "momentum": 0.9}, kvstore=None)
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    x = mx.nd.random.uniform(shape=(batch, 3, size, size))
    y = mx.nd.array(mx.nd.random.randint(0, classes, shape=(batch,)).asnumpy().astype("float32"))

    def step():
        with mx.autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(batch)
        loss.wait_to_read()

    seconds = _time_steps(step, warmup, steps)
    return batch * steps / seconds


def torch_throughput(batch, size, warmup, steps, classes=1000):
    """Training images per second of torchvision's googlenet (runs in the torch interpreter)."""
    import torch
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.googlenet(num_classes=classes, aux_logits=False, init_weights=True)
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.rand(batch, 3, size, size)
    y = torch.randint(0, classes, (batch,))

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        optimizer.step()

    seconds = _time_steps(step, warmup, steps)
    return batch * steps / seconds


WORKERS = {
    "ours-paper": lambda *a: mxnet_throughput("paper", *a),
    "ours-gluoncv": lambda *a: mxnet_throughput("gluoncv", *a),
    "gluoncv": lambda *a: mxnet_throughput("gluoncv-model", *a),
    "torch": torch_throughput,
}


def _run_worker(python, which, args):
    cmd = [python, os.path.abspath(__file__), "--worker", which, "--batch", str(args.batch), "--size", str(args.size),
           "--warmup", str(args.warmup), "--steps", str(args.steps)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit("%s worker failed:\n%s" % (which, proc.stderr[-3000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])["img_per_sec"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions (median and best reported)")
    parser.add_argument("--torch-python", default=DEFAULT_TORCH_PYTHON, help="interpreter with torch + torchvision")
    parser.add_argument("--worker", choices=tuple(WORKERS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        speed = WORKERS[args.worker](args.batch, args.size, args.warmup, args.steps)
        print(json.dumps({"img_per_sec": speed}))
        return 0

    networks = [
        ("ours, topology paper (5x5 branches)", "ours-paper", sys.executable),
        ("ours, topology gluoncv (3x3 branches)", "ours-gluoncv", sys.executable),
        ("GluonCV googlenet", "gluoncv", sys.executable),
        ("torchvision googlenet", "torch", args.torch_python),
    ]
    if not os.path.isfile(args.torch_python):
        print("skipping torchvision: no interpreter at %s (--torch-python)" % args.torch_python, file=sys.stderr)
        networks = networks[:-1]
    # Rounds interleave the networks, so that load from other processes on a shared machine
    # spreads over all of them; median and best of the rounds are reported.
    speeds = {label: [] for label, _, _ in networks}
    for round_index in range(args.rounds):
        for label, which, python in networks:
            speeds[label].append(_run_worker(python, which, args))
            print("round %d  %-40s %7.1f img/s" % (round_index + 1, label, speeds[label][-1]), flush=True)
    median = {label: statistics.median(values) for label, values in speeds.items()}
    best = {label: max(values) for label, values in speeds.items()}
    reference = "torchvision googlenet"
    print()
    print("CPU training, %dx%d, batch %d, %d timed steps after %d warm-up, %d rounds (os.cpu_count() = %s)"
          % (args.size, args.size, args.batch, args.steps, args.warmup, args.rounds, os.cpu_count()))  # fmt: skip
    print("| network | img/s median | img/s best | median vs torchvision | best vs torchvision |")
    print("|---|---|---|---|---|")
    for label, _, _ in networks:
        ratios = ["%.2fx" % (t[label] / t[reference]) if reference in t else "-" for t in (median, best)]
        print("| %s | %.1f | %.1f | %s | %s |" % (label, median[label], best[label], ratios[0], ratios[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
