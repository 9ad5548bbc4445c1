#!/usr/bin/env python
"""GPU training throughput: our GoogLeNet against GluonCV's googlenet, same run, same GPU.

Not yet run by the project (its machines have no GPU MXNet can use); scripts/gpu_check.sh runs it.
Each (network, dtype) pair trains on a fixed random batch in a fresh process (AMP patches MXNet
process-wide): ``--warmup`` untimed and ``--steps`` timed steps of forward, backward and an SGD
update; the figure is images per second. float16 is MXNet AMP with dynamic loss scaling.

    python bench/gpu_train_throughput.py                     # GPU 0, batch 128, float32 and float16
    python bench/gpu_train_throughput.py --gpu 1 --batch 64 --rounds 3
    python bench/gpu_train_throughput.py --ctx cpu --batch 2 --steps 1 --warmup 1 --rounds 1 --precisions float32
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETWORKS = {"ours (topology gluoncv)": "ours", "GluonCV googlenet": "gluoncv"}


def throughput(which, dtype, ctx_name, gpu, batch, size, warmup, steps, classes=1000):
    """Images per second of one network in this process."""
    sys.path.insert(0, ROOT)
    from gluon_inception import googlenet
    from gluon_inception._compat import mx

    ctx = mx.gpu(gpu) if ctx_name == "gpu" else mx.cpu()
    if dtype == "float16":
        from mxnet.contrib import amp

        amp.init()
    mx.random.seed(0)
    if which == "gluoncv":
        from gluoncv.model_zoo import get_model

        net = get_model("googlenet", classes=classes)
    else:
        net = googlenet(classes=classes, topology="gluoncv")
    net.initialize(mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2), ctx=ctx, force_reinit=True)
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.01, "momentum": 0.9}, kvstore=None)
    if dtype == "float16":
        amp.init_trainer(trainer)
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    x = mx.nd.random.uniform(shape=(batch, 3, size, size), ctx=ctx)
    y = mx.nd.random.randint(0, classes, shape=(batch,), ctx=ctx).astype("float32")

    def step():
        with mx.autograd.record():
            loss = loss_fn(net(x), y)
            if dtype == "float16":
                with amp.scale_loss(loss, trainer) as scaled:
                    mx.autograd.backward(scaled)
        if dtype != "float16":
            loss.backward()
        trainer.step(batch)
        loss.wait_to_read()

    for _ in range(warmup):
        step()
    mx.nd.waitall()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    mx.nd.waitall()
    return batch * steps / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ctx", choices=("gpu", "cpu"), default="gpu")
    parser.add_argument("--gpu", type=int, default=0, help="GPU index")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repetitions (median reported)")
    parser.add_argument("--precisions", default="float32,float16", help="as train --precision, comma-separated")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", nargs=2, metavar=("NET", "DTYPE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    common = (args.ctx, args.gpu, args.batch, args.size, args.warmup, args.steps)
    if args.worker:
        print(json.dumps({"img_per_sec": throughput(args.worker[0], args.worker[1], *common)}))
        return 0

    flags = ["--ctx", args.ctx, "--gpu", str(args.gpu), "--batch", str(args.batch), "--size", str(args.size),
             "--warmup", str(args.warmup), "--steps", str(args.steps)]  # fmt: skip
    speeds = {}
    for round_index in range(args.rounds):
        for dtype in args.precisions.split(","):
            for label, which in NETWORKS.items():
                proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", which, dtype] + flags,
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    raise SystemExit("%s %s failed:\n%s" % (label, dtype, proc.stderr[-3000:]))
                speed = json.loads(proc.stdout.strip().splitlines()[-1])["img_per_sec"]
                speeds.setdefault((label, dtype), []).append(speed)
                print("round %d  %-26s %-8s %8.1f img/s" % (round_index + 1, label, dtype, speed), flush=True)
    where = "GPU %d" % args.gpu if args.ctx == "gpu" else "CPU"
    print("\nTraining on %s, %dx%d, batch %d, %d timed steps, median of %d rounds"
          % (where, args.size, args.size, args.batch, args.steps, args.rounds))
    print("| network | dtype | img/s | vs GluonCV |\n|---|---|---|---|")
    rows = []
    for (label, dtype), values in speeds.items():
        median = statistics.median(values)
        reference = statistics.median(speeds[("GluonCV googlenet", dtype)])
        rows.append({"network": label, "dtype": dtype, "img_per_sec": median, "vs_gluoncv": median / reference})
        print("| %s | %s | %.1f | %.2fx |" % (label, dtype, median, median / reference))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"where": where, "batch": args.batch, "size": args.size, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
