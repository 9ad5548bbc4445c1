#!/usr/bin/env python
"""Where one CPU training step of our GoogLeNet spends its time: MXNet's profiler and oneDNN's log.

The step is the engine's (forward, softmax cross-entropy, backward, optimizer update) on a fixed
random batch, hybridized with ``static_alloc``/``static_shape``, in float32 or with AMP bfloat16
(``--precision``). Two views of the same step, each in its own child process:

First the step is timed without any instrumentation (median of ``--steps``). Then, in a second
child process, ``--profiled`` steps run under two instruments at once:

* ``mx.profiler`` with graph bulking switched off (``MXNET_EXEC_BULK_EXEC_TRAIN=0``, else the
  profiler sees fused segments, not operators): milliseconds per step of each operator and its
  share of the operator time, grouped as well (convolutions, BatchNorm, casts, update...);
* ``DNNL_VERBOSE=1``: every oneDNN primitive of the same steps with its implementation (which ISA
  it runs on: ``avx512_core_amx_bf16`` means AMX tiles) and time; layout reorders are counted
  apart. The operator time not covered by oneDNN is MXNet's own kernels (casts, element-wise
  sums, the optimizer, the loss) and the engine's overhead.

    PYTHONPATH=$PWD python bench/profile_train_step.py --precision float32
    PYTHONPATH=$PWD python bench/profile_train_step.py --precision bfloat16 --top 20

Environment knobs to compare (``MXNET_*``, ``OMP_*``, ``DNNL_MAX_CPU_ISA``) are passed through to
the children; docs/benchmarks.rst lists the ones tried.
"""
import argparse
import collections
import ctypes
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

#: Operator name prefixes -> the group a table row is summed into.
GROUPS = (
    ("Convolution", "convolution"),
    ("_backward_Convolution", "convolution"),
    ("FullyConnected", "dense"),
    ("_backward_FullyConnected", "dense"),
    ("BatchNorm", "batchnorm"),
    ("_backward_BatchNorm", "batchnorm"),
    ("Activation", "relu"),
    ("_backward_Activation", "relu"),
    ("Pooling", "pooling"),
    ("_backward_Pooling", "pooling"),
    ("Concat", "concat"),
    ("_backward_Concat", "concat"),
    ("amp_cast", "bf16 casts"),
    ("_backward_amp_cast", "bf16 casts"),
    ("amp_multicast", "bf16 casts"),
    ("_backward_amp_multicast", "bf16 casts"),
    ("sgd", "optimizer update"),
    ("multi_", "optimizer update"),
    ("preloaded_multi", "optimizer update"),
    ("adam", "optimizer update"),
    ("nag", "optimizer update"),
    ("mp_", "optimizer update"),
    ("softmax", "loss"),
    ("_backward_softmax", "loss"),
    ("log_softmax", "loss"),
    ("_backward_log_softmax", "loss"),
    ("pick", "loss"),
    ("_backward_pick", "loss"),
)


def group_of(name):
    """The group of an operator name (``other`` when none matches)."""
    base = name.split("{")[0]
    for prefix, group in GROUPS:
        if base == prefix or base.startswith(prefix + "_") or (prefix.endswith("_") and base.startswith(prefix)):
            return group
    return "other"


def build_step(dtype, batch, size, topology, optimizer, classes=1000, wd=1e-4, amx_fixes=True):
    """(step function, mxnet module) of one training step on a fixed random batch.

    AMP is initialised for bfloat16 before the net is built. With bfloat16 on AMX and
    ``amx_fixes``, convolution inputs are padded to 32-channel multiples, as ``gluon-inception
    train`` does (``gluon_inception/training/amx.py``).
    ``bench/train_throughput.py`` times the same step (with ``wd=0``).
    """
    sys.path.insert(0, ROOT)
    from gluon_inception import cpu, googlenet
    from gluon_inception._compat import amp, mx
    from gluon_inception.training import ConfigError, amx

    if dtype == "bfloat16":
        amp.init(target_dtype="bfloat16")
    mx.random.seed(0)
    net = googlenet(classes=classes, topology=topology)
    if dtype == "bfloat16" and cpu.amx_in_use():  # what the engine does (training/amx.py)
        try:
            amx.prepare_network(net, size, pad=amx_fixes)
        except ConfigError as err:  # refused where oneDNN would corrupt memory, as train does
            raise SystemExit(str(err).replace("--image-size", "--size")) from None
    net.hybridize(static_alloc=True, static_shape=True)
    params = {"learning_rate": 0.01, "wd": wd}
    if optimizer in ("sgd", "nag"):
        params["momentum"] = 0.9
    trainer = mx.gluon.Trainer(net.collect_params(), optimizer, params, kvstore=None)
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    x = mx.nd.random.uniform(shape=(batch, 3, size, size))
    y = mx.nd.array(mx.nd.random.randint(0, classes, shape=(batch,)).asnumpy().astype("float32"))

    def step():
        with mx.autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(batch)
        mx.nd.waitall()

    return step, mx


def child_time(args):
    step, _ = build_step(args.precision, args.batch, args.size, args.topology, args.optimizer,
                         amx_fixes=not args.no_amx_fixes)
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    times.sort()
    return {"step_ms": 1000 * times[len(times) // 2], "img_per_sec": args.batch / times[len(times) // 2]}


def child_profile(args):
    """Profile ``--profiled`` steps with mx.profiler; with DNNL_VERBOSE set, oneDNN logs the same steps."""
    step, mx = build_step(args.precision, args.batch, args.size, args.topology, args.optimizer,
                          amx_fixes=not args.no_amx_fixes)
    for _ in range(args.warmup):
        step()
    libc = ctypes.CDLL(None)
    libc.fflush(None)  # oneDNN prints through C stdio: flush it before the marker goes out
    sys.stdout.flush()
    os.write(1, b"=== profiled ===\n")
    mx.profiler.set_config(profile_all=True, aggregate_stats=True, filename=os.devnull)
    mx.profiler.set_state("run")
    for _ in range(args.profiled):
        step()
    mx.profiler.set_state("stop")
    libc.fflush(None)
    os.write(1, b"=== end ===\n")
    stats = json.loads(mx.profiler.dumps(reset=True, format="json"))["Time"].get("operator", {})
    return {name: {"count": v["Count"] / args.profiled, "ms": v["Total"] / args.profiled} for name, v in stats.items()}


def parse_onednn(text, profiled):
    """{(primitive, implementation, propagation): [count, ms]} per step from DNNL_VERBOSE lines."""
    text = text.split("=== profiled ===", 1)[-1].split("=== end ===", 1)[0]
    agg = collections.defaultdict(lambda: [0, 0.0])
    for line in text.splitlines():
        parts = line.strip().split(",")
        if len(parts) > 6 and parts[0] in ("dnnl_verbose", "onednn_verbose") and parts[1] == "exec":
            key = (parts[3], parts[4], parts[5])
            agg[key][0] += 1 / profiled
            agg[key][1] += float(parts[-1]) / profiled
    return dict(agg)


def run_child(args, mode, extra_env=None):
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(args.threads))
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    if mode != "time":
        env["MXNET_EXEC_BULK_EXEC_TRAIN"] = "0"
    env.update(extra_env or {})
    cmd = [sys.executable, os.path.abspath(__file__), "--child", mode, "--precision", args.precision, "--batch",
           str(args.batch), "--size", str(args.size), "--topology", args.topology, "--optimizer", args.optimizer,
           "--warmup", str(args.warmup), "--steps", str(args.steps), "--profiled", str(args.profiled)]  # fmt: skip
    if args.no_amx_fixes:
        cmd.append("--no-amx-fixes")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit("%s child failed:\n%s" % (mode, proc.stderr[-3000:]))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if mode == "profile":
        return result, (parse_onednn(proc.stdout, args.profiled) if extra_env else None)
    return result


def print_tables(args, timing, ops, dnnl):
    total = sum(v["ms"] for v in ops.values())
    print("# %s training step, GoogLeNet (%s topology), batch %d, %dx%d, %s, OMP_NUM_THREADS=%s"
          % (args.precision, args.topology, args.batch, args.size, args.size, args.optimizer,
             os.environ.get("OMP_NUM_THREADS", args.threads)))  # fmt: skip
    print("step (no profiler, median of %d): %.0f ms = %.1f img/s"
          % (args.steps, timing["step_ms"], timing["img_per_sec"]))  # fmt: skip
    print("operator time per step (profiler, bulking off): %.0f ms" % total)
    print()
    print("| operator group | ms/step | share |")
    print("|---|---:|---:|")
    groups = collections.Counter()
    for name, v in ops.items():
        groups[group_of(name)] += v["ms"]
    for group, ms in groups.most_common():
        print("| %s | %.1f | %.1f%% |" % (group, ms, 100 * ms / max(total, 1e-9)))
    print()
    print("| top operators | calls/step | ms/step | share |")
    print("|---|---:|---:|---:|")
    for name, v in sorted(ops.items(), key=lambda kv: -kv[1]["ms"])[: args.top]:
        print("| %s | %d | %.1f | %.1f%% |" % (name, round(v["count"]), v["ms"], 100 * v["ms"] / max(total, 1e-9)))
    if dnnl is None:
        return
    dnnl_total = sum(ms for _, ms in dnnl.values())
    reorder = [(n, ms) for (prim, _, _), (n, ms) in dnnl.items() if prim == "reorder"]
    print()
    reorder_ms, reorder_calls = sum(ms for _, ms in reorder), sum(n for n, _ in reorder)
    print("oneDNN primitives: %.0f ms/step = %.0f%% of the operator time; layout reorders: %d calls, %.1f ms "
          "(%.1f%% of the operator time)" % (dnnl_total, 100 * dnnl_total / max(total, 1e-9), reorder_calls,
                                            reorder_ms, 100 * reorder_ms / max(total, 1e-9)))  # fmt: skip
    print()
    print("| oneDNN primitive | implementation | pass | calls/step | ms/step | share of op time |")
    print("|---|---|---|---:|---:|---:|")
    for (prim, impl, prop), (n, ms) in sorted(dnnl.items(), key=lambda kv: -kv[1][1])[: args.top]:
        print("| %s | %s | %s | %d | %.1f | %.1f%% |" % (prim, impl, prop, round(n), ms, 100 * ms / max(total, 1e-9)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--topology", default="gluoncv", choices=("gluoncv", "paper"))
    parser.add_argument("--optimizer", default="sgd", choices=("sgd", "nag", "adam"))
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS unless already set")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="timed steps without instrumentation")
    parser.add_argument("--profiled", type=int, default=2, help="steps under the profiler / DNNL_VERBOSE")
    parser.add_argument("--top", type=int, default=15, help="rows of the per-operator tables")
    parser.add_argument("--no-onednn", action="store_true", help="skip the DNNL_VERBOSE run")
    parser.add_argument("--no-amx-fixes", action="store_true",
                        help="bfloat16 on AMX: no zero-padding of convolution inputs to 32-channel multiples "
                             "(the engine applies it: gluon_inception/training/amx.py)")
    parser.add_argument("--json", help="also write the raw figures here")
    parser.add_argument("--child", choices=("time", "profile"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        result = {"time": child_time, "profile": child_profile}[args.child](args)
        print(json.dumps(result))
        return 0

    timing = run_child(args, "time")
    ops, dnnl = run_child(args, "profile", None if args.no_onednn else {"DNNL_VERBOSE": "1", "MKLDNN_VERBOSE": "1"})
    print_tables(args, timing, ops, dnnl)
    if args.json:
        with open(args.json, "w") as f:
            onednn = None if dnnl is None else [list(k) + v for k, v in dnnl.items()]
            json.dump({"timing": timing, "operators": ops, "onednn": onednn}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
