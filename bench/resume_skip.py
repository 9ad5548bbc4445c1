"""Start-up of a mid-epoch resume: building the training iterator and getting past the steps already trained on.

A resumed run must hand out the very batches (order, crops, flips) the stopped run would have
handed out next. Two ways are timed, each in its own process, on ``--images`` generated JPEGs (the
data of ``bench/data_pipeline.py``, ``uint8`` pipeline of ``build_train_iter(on_device=True)``):

- ``decode``: call ``next()`` for every step already done (how ``ImageRecordIter`` skips: each
  skipped batch is read, decoded and augmented);
- ``seek``: ``it.skip(steps)``, which opens each decoding stream at the window holding its next
  batch and decodes only the batches of that window already done (needs a pipeline with ``skip``).

Reported: seconds from building the iterator to holding the first batch after the skipped ones
(median over ``--rounds``, round-robin), and their ratio. The record file is read once before
the rounds so that both start from the page cache.

    python bench/resume_skip.py                      # 20,000 images, resume at 50 %, 3 rounds
    python bench/resume_skip.py --images 2000 --rounds 1
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from _timing import cpu_name  # noqa: E402  (bench/, put on sys.path above)


def start_up(rec, mode, fraction, batch_size, crop, threads):
    """Seconds to build the iterator and fetch the first batch after ``fraction`` of the epoch."""
    from gluon_inception.data import build_train_iter

    start = time.perf_counter()
    it = build_train_iter(rec, batch_size, (3, crop, crop), preset="inception", mean=(123.7, 116.3, 103.5),
                          std=(58.4, 57.1, 57.4), num_threads=threads, seed=1, on_device=True)  # fmt: skip
    steps = int(len(it) * fraction)
    batches = iter(it)
    if mode == "seek":
        it.skip(steps)
    else:
        for _ in range(steps):
            next(batches)
    next(batches).data[0].wait_to_read()
    return {"seconds": time.perf_counter() - start, "steps": steps, "of": len(it),
            "streams": getattr(it, "streams", 1)}


def main():
    from data_pipeline import prepare_data

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--fraction", type=float, default=0.5, help="part of the epoch already trained on")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default="decode,seek")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--threads", type=int, default=None, help="decoding threads (default: the pipeline's)")
    parser.add_argument("--workdir", default=os.path.join(os.path.expanduser("~"), ".cache", "gluon-inception-bench"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--rec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(start_up(args.rec, args.worker, args.fraction, args.batch_size, args.crop, args.threads)))
        return
    split, _ = prepare_data(args.workdir, args.images, len(os.sched_getaffinity(0)))
    with open(split.rec, "rb") as f:  # into the page cache
        while f.read(1 << 24):
            pass
    modes = args.modes.split(",")
    results = {}
    for r in range(args.rounds):
        for mode in modes[r % len(modes):] + modes[: r % len(modes)]:
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", mode, "--rec", split.rec,
                   "--fraction", str(args.fraction), "--batch-size", str(args.batch_size), "--crop", str(args.crop)]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                sys.exit("%s failed:\n%s" % (mode, proc.stderr[-3000:]))
            results.setdefault(mode, []).append(json.loads(proc.stdout.strip().splitlines()[-1]))
    any_run = next(iter(results.values()))[0]
    print("resume start-up: %d images, batch %d, resume after step %d of %d, %d core(s) of %s, %d decoding "
          "stream(s); %d round(s)" % (split.count, args.batch_size, any_run["steps"], any_run["of"],
                                      len(os.sched_getaffinity(0)), cpu_name(), any_run["streams"], args.rounds))
    medians = {mode: statistics.median(o["seconds"] for o in runs) for mode, runs in results.items()}
    for mode, seconds in medians.items():
        print("  %-6s %7.2f s  (rounds: %s)" % (mode, seconds, ", ".join("%.2f" % o["seconds"] for o in results[mode])))
    if "decode" in medians and "seek" in medians:
        print("  decode / seek = %.1fx" % (medians["decode"] / medians["seek"]))
    print("load average at the end (other processes share these cores): %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
