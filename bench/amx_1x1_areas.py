"""Which output areas break oneDNN 2.4's AMX 1x1 convolution (the one inside MXNet 1.9.1).

Runs one bfloat16 1x1 convolution (``--channels`` in and out, a 1 x N output, ``--batch``
images) per area N in a child process of its own, a few times, with AMX on, and lists the areas
at which the child did not exit cleanly (heap corruption aborts it, or it hangs until
``--timeout``). The output area is what matters: 6x6, 4x9 and 1x36 behave alike. The list is
compared with ``gluon_inception.cpu.AMX_1X1_BROKEN_AREAS``, the one the library refuses.
Needs a CPU with AMX (Sapphire Rapids or later); there is nothing to measure elsewhere.

    python bench/amx_1x1_areas.py --max-area 100
    python bench/amx_1x1_areas.py --max-area 64 --backward --batch 1
"""
import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# AMX is what this script measures: switch it on (gluon_inception/cpu.py) here and in its children.
os.environ.setdefault("GLUON_INCEPTION_AMX", "1")


def child(args):
    """One area, in this process: exits 0 when the convolution ran ``--repeat`` times."""
    sys.path.insert(0, ROOT)
    from gluon_inception._compat import mx, np

    bfloat16 = np.dtype([("bfloat16", np.uint16)])  # MXNet's name for it: numpy has none

    cin, cout = args.channels
    x = mx.nd.random.normal(shape=(args.batch, cin, 1, args.area)).astype(bfloat16)
    w = mx.nd.random.normal(shape=(cout, cin, 1, 1)).astype(bfloat16)
    b = mx.nd.zeros((cout,)).astype(bfloat16)
    for array in (x, w, b):
        array.attach_grad()
    for _ in range(args.repeat):
        with mx.autograd.record(train_mode=args.backward):
            y = mx.nd.relu(mx.nd.Convolution(x, w, b, kernel=(1, 1), num_filter=cout))
        if args.backward:
            y.backward()
        mx.nd.waitall()
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-area", type=int, default=100, help="try output areas 1 .. this")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--channels", type=int, nargs=2, default=(480, 64), metavar=("IN", "OUT"))
    parser.add_argument("--backward", action="store_true", help="training: forward and backward")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a child counts as hung")
    parser.add_argument("--area", type=int, help=argparse.SUPPRESS)  # set for the child processes
    args = parser.parse_args()
    if args.area is not None:
        return child(args)

    sys.path.insert(0, ROOT)
    from gluon_inception.cpu import AMX_1X1_BROKEN_AREAS, amx_in_use

    if not amx_in_use():
        sys.exit("amx_1x1_areas: this CPU has no AMX (or DNNL_MAX_CPU_ISA caps it below AMX): nothing to measure")
    broken = []
    for area in range(1, args.max_area + 1):
        cmd = [sys.executable, os.path.abspath(__file__), "--area", str(area), "--batch", str(args.batch),
               "--channels", *map(str, args.channels), "--repeat", str(args.repeat)]  # fmt: skip
        if args.backward:
            cmd.append("--backward")
        try:
            status = subprocess.run(cmd, capture_output=True, timeout=args.timeout).returncode
        except subprocess.TimeoutExpired:
            status = "hung"
        if status != 0:
            broken.append(area)
            print("area %d: child ended with %s" % (area, status), flush=True)
    print("broken output areas (1..%d, batch %d, %s -> %s channels, %s, OMP_NUM_THREADS=%s): %s" % (
        args.max_area, args.batch, args.channels[0], args.channels[1],
        "forward + backward" if args.backward else "forward", os.environ.get("OMP_NUM_THREADS", "unset"),
        " ".join(map(str, broken)) or "none"))  # fmt: skip
    known = sorted(a for a in AMX_1X1_BROKEN_AREAS if a <= args.max_area)
    if broken == known:
        print("same as gluon_inception.cpu.AMX_1X1_BROKEN_AREAS up to %d" % args.max_area)
        return 0
    print("DIFFERENT from AMX_1X1_BROKEN_AREAS up to %d (%s): update it" % (args.max_area, " ".join(map(str, known))))
    return 1


if __name__ == "__main__":
    sys.exit(main())
