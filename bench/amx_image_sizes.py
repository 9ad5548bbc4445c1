"""Does GoogLeNet run cleanly on AMX at every image size the library lets through?

For each square image size, a child process builds GoogLeNet and runs it on AMX: the bfloat16
inference model of ``to_bfloat16`` (default), with ``--int8`` the INT8 model of ``quantize_int8``
(naive calibration on random images), or with ``--train`` one bfloat16 AMP training step
(forward and backward; the inputs padded to 32 channels as ``train`` pads them, without its probe
for BatchNorms to keep in float32).
Sizes the library refuses (``gluon_inception.deploy.amx.amx_broken_convolutions``) are skipped
and counted. Any other size whose child does not exit cleanly is a oneDNN failure the library does
not know about: the script lists them and exits with 1. Needs a CPU with AMX.

    python bench/amx_image_sizes.py --sizes 32-320
    python bench/amx_image_sizes.py --sizes 32-256:2 --train
    python bench/amx_image_sizes.py --sizes 32-320:4 --int8
"""
import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# AMX is what this script measures: switch it on (gluon_inception/cpu.py) here and in its children.
os.environ.setdefault("GLUON_INCEPTION_AMX", "1")


def child(args):
    """One size, in this process: exits 0 when the model ran ``--repeat`` times."""
    sys.path.insert(0, ROOT)
    from gluon_inception import googlenet
    from gluon_inception._compat import amp, mx

    shape = (args.batch, 3, args.size, args.size)
    if args.train:
        amp.init(target_dtype="bfloat16")
        from gluon_inception.training.amx import pad_inputs_for_amx

        net = googlenet(classes=10, topology=args.topology)
        pad_inputs_for_amx(net)  # as train does on AMX
        net.hybridize(static_alloc=True, static_shape=True)
        trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.01}, kvstore=None)
        loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
        x, y = mx.nd.random.uniform(shape=shape), mx.nd.zeros((args.batch,))
        for _ in range(args.repeat):
            with mx.autograd.record():
                loss = loss_fn(net(x), y)
            loss.backward()
            trainer.step(args.batch)
            mx.nd.waitall()
    else:
        from gluon_inception.deploy.quantize import quantize_int8, to_bfloat16

        net = googlenet(classes=10, topology=args.topology)
        if args.int8:
            calib = mx.nd.random.uniform(shape=(2 * args.batch,) + shape[1:])
            model = quantize_int8(net, calib, calib_mode="naive", batch_size=args.batch)
        else:
            model = to_bfloat16(net, input_shape=shape)
        x = mx.nd.random.uniform(shape=shape)
        for _ in range(args.repeat):
            model(x).wait_to_read()
    return 0


def _sizes(text):
    """``"32-320"`` or ``"32-256:4"`` (a step) -> list of sizes."""
    span, _, step = text.partition(":")
    low, _, high = span.partition("-")
    return list(range(int(low), int(high or low) + 1, int(step or 1)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=_sizes, default=_sizes("32-320"), help="FIRST-LAST[:STEP], e.g. 32-320")
    parser.add_argument("--topology", default="gluoncv", choices=("gluoncv", "paper", "torchvision"))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--train", action="store_true", help="a bfloat16 training step instead of inference")
    parser.add_argument("--int8", action="store_true", help="the INT8 model of quantize_int8 instead of bfloat16")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a child counts as hung")
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)  # set for the child processes
    args = parser.parse_args()
    if args.train and args.int8:
        parser.error("--train and --int8 exclude each other (training runs in bfloat16)")
    if args.size is not None:
        return child(args)

    sys.path.insert(0, ROOT)
    from gluon_inception import googlenet
    from gluon_inception._compat import mx
    from gluon_inception.cpu import amx_in_use
    from gluon_inception.deploy.amx import amx_broken_convolutions

    if not amx_in_use():
        sys.exit("amx_image_sizes: this CPU has no AMX (or DNNL_MAX_CPU_ISA caps it below AMX): nothing to measure")
    sym = googlenet(classes=10, topology=args.topology)(mx.sym.var("data"))
    refused, failed, too_small, ran = [], [], [], 0
    start = time.time()
    for size in args.sizes:
        try:
            if amx_broken_convolutions(sym, (1, 3, size, size)):
                refused.append(size)
                continue
        except mx.base.MXNetError:
            too_small.append(size)
            continue
        cmd = [sys.executable, os.path.abspath(__file__), "--size", str(size), "--topology", args.topology,
               "--batch", str(args.batch), "--repeat", str(args.repeat)]  # fmt: skip
        cmd += ["--train"] * args.train + ["--int8"] * args.int8
        try:
            status = subprocess.run(cmd, capture_output=True, timeout=args.timeout).returncode
        except subprocess.TimeoutExpired:
            status = "hung"
        ran += 1
        if status != 0:
            failed.append(size)
            print("size %d: child ended with %s" % (size, status), flush=True)
    what = "quantize_int8 inference" if args.int8 else "to_bfloat16 inference"
    what = "bfloat16 training step" if args.train else what
    print("%s, %s topology, batch %d, sizes %d-%d (%d sizes, %.0f s): ran %d, refused %d (%s), too small %d"
          % (what, args.topology, args.batch, args.sizes[0], args.sizes[-1], len(args.sizes), time.time() - start,
             ran, len(refused), " ".join(map(str, refused)) or "none", len(too_small)))  # fmt: skip
    if failed:
        print("FAILED at sizes the library does not refuse: %s" % " ".join(map(str, failed)))
        return 1
    print("every size the library lets through ran cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
