#!/usr/bin/env python
"""The machine's arithmetic limits: large matrix-multiply GFLOP/s in float32 and bfloat16.

Training and inference figures mean more next to what the cores can do at best. A square GEMM of
``--n`` (default 2048) is the friendliest workload there is; its GFLOP/s bound any network's.
Measured with the same thread count as the benchmarks, each library in its own process:

* MXNet 1.9.1: ``mx.nd.dot`` in float32 (OpenBLAS) and ``FullyConnected`` (oneDNN) in float32
  and bfloat16 (AMX tiles when ``GLUON_INCEPTION_AMX=1`` switched them on, else AVX-512 BF16).
* numpy float32 (its BLAS), for reference.
* torch (``--torch-python``; skipped when absent): ``torch.mm`` in float32 and bfloat16.

    PYTHONPATH=$PWD python bench/machine_limits.py --threads 2
    PYTHONPATH=$PWD python bench/machine_limits.py --threads 2 --n 1024 --seconds 0.5   # quick check

Then: a training image of GoogLeNet at 224 px costs about 3 x 1.5 GMAC = 9 GFLOP (forward and two
backward products), so ``GFLOP/s / 9`` images per second is the ceiling of a training step that
ran at GEMM speed throughout.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TORCH_PYTHON = os.environ.get("TORCH_PYTHON", "/work/main/.venv-torch/bin/python")
#: GFLOP of one GoogLeNet training image at 224 px (1.5 GMAC forward, about twice that backward).
TRAIN_GFLOP_PER_IMAGE = 9.0


def _rate(run, n, seconds):
    """GFLOP/s of ``run()`` (one n x n x n product), best of repeated timings over ``seconds``."""
    run()
    best, spent = float("inf"), 0.0
    while spent < seconds or best == float("inf"):
        start = time.perf_counter()
        run()
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
    return 2.0 * n**3 / best / 1e9


def mxnet_rates(n, seconds):
    sys.path.insert(0, os.path.dirname(HERE))
    from gluon_inception._compat import amp, mx
    from gluon_inception.cpu import amx_in_use

    a = mx.nd.random.uniform(shape=(n, n))
    b = mx.nd.random.uniform(shape=(n, n))
    rates = {"MXNet float32 (dot, OpenBLAS)": _rate(lambda: mx.nd.dot(a, b).wait_to_read(), n, seconds)}
    a16, b16 = a.astype(amp.amp.bfloat16), b.astype(amp.amp.bfloat16)

    def fc(x=a, w=b):
        mx.nd.FullyConnected(x, w, num_hidden=n, no_bias=True).wait_to_read()

    rates["MXNet float32 (FullyConnected, oneDNN)"] = _rate(fc, n, seconds)
    label = "MXNet bfloat16 (FullyConnected, oneDNN%s)" % (", AMX" if amx_in_use() else "")
    rates[label] = _rate(lambda: fc(a16, b16), n, seconds)
    import numpy as np

    x, y = np.random.rand(n, n).astype(np.float32), np.random.rand(n, n).astype(np.float32)
    rates["numpy float32 (its BLAS)"] = _rate(lambda: x @ y, n, seconds)
    return rates


def torch_rates(n, seconds, threads):
    import torch

    torch.set_num_threads(threads)
    rates = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.rand(n, n, dtype=dtype), torch.rand(n, n, dtype=dtype)
        rates["torch %s (mm)" % str(dtype).split(".")[1]] = _rate(lambda a=a, b=b: torch.mm(a, b), n, seconds)
    return rates


def _child(python, which, args):
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))  # fmt: skip
    cmd = [python, os.path.abspath(__file__), "--worker", which, "--n", str(args.n), "--seconds", str(args.seconds),
           "--threads", str(args.threads)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit("%s worker failed:\n%s" % (which, proc.stderr[-3000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2048, help="matrix size")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement (best run kept)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--torch-python", default=DEFAULT_TORCH_PYTHON)
    parser.add_argument("--worker", choices=("mxnet", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "mxnet":
        print(json.dumps(mxnet_rates(args.n, args.seconds)))
        return 0
    if args.worker == "torch":
        print(json.dumps(torch_rates(args.n, args.seconds, args.threads)))
        return 0
    rates = _child(sys.executable, "mxnet", args)
    if os.path.isfile(args.torch_python):
        rates.update(_child(args.torch_python, "torch", args))
    else:
        print("skipping torch: no interpreter at %s (--torch-python)" % args.torch_python, file=sys.stderr)
    print("GEMM %d x %d x %d, %d thread(s), best of %.1f s each" % (args.n, args.n, args.n, args.threads, args.seconds))
    print("| library, dtype | GFLOP/s | GoogLeNet training ceiling at %.0f GFLOP/img |" % TRAIN_GFLOP_PER_IMAGE)
    print("|---|---:|---:|")
    for label, rate in rates.items():
        print("| %s | %.0f | %.1f img/s |" % (label, rate, rate / TRAIN_GFLOP_PER_IMAGE))
    return 0


if __name__ == "__main__":
    sys.exit(main())
