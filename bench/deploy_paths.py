#!/usr/bin/env python
"""Every deployment path of one checkpoint, measured the way a user measures it: the CLI.

For each path (MXNet float32 / bfloat16 / INT8 from the checkpoint; MXNet INT8, ONNX and OpenVINO
files, float32 and INT8, and OpenVINO's bfloat16 of the float32 IR) it runs ``gluon-inception
export`` (timed: for INT8 files that includes the calibration), then ``gluon-inception evaluate``
on the chosen split, and reports top-1 / top-5, the evaluation's seconds, the export's seconds and
the size of what is shipped. Paths the CPU or the installed packages cannot run are listed with the
reason instead of a number.

    python bench/deploy_paths.py --checkpoint runs/demo --data data/demo --split test
    python bench/deploy_paths.py --train-demo /tmp/demo-run    # trains the demo recipe first (8 epochs, 1 process)

Speed at 224 pixels against the peers is ``bench/inference.py``'s job; this script is about what each
path costs in accuracy, calibration time and disk.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from _timing import cpu_name  # bench/, first on sys.path when a bench script runs

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

#: (name, export arguments or None for "evaluate the checkpoint", output suffix, evaluate extras)
PATHS = [
    ("MXNet float32 (checkpoint)", None, None, []),
    ("MXNet bfloat16 (converted at load)", None, None, ["--precision", "bfloat16"]),
    ("MXNet INT8 (calibrated at load)", None, None, ["--precision", "int8"]),
    ("MXNet INT8 file", ["--format", "mxnet", "--precision", "int8"], "", []),
    ("ONNX float32 in ONNX Runtime", ["--format", "onnx"], ".onnx", ["--runtime", "onnxruntime"]),
    ("ONNX INT8 (ONNX Runtime's quantizer) in ONNX Runtime", ["--format", "onnx", "--precision", "int8"], ".onnx",
     ["--runtime", "onnxruntime"]),
    ("OpenVINO float32", ["--format", "openvino"], ".xml", []),
    ("OpenVINO bfloat16 (of the float32 IR)", ["--format", "openvino"], ".xml", ["--precision", "bfloat16"]),
    ("OpenVINO INT8 (NNCF)", ["--format", "openvino", "--precision", "int8"], ".xml", []),
]


def cli(*args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gluon_inception.cli", *args], capture_output=True, text=True,
                          env=env)
    return proc, time.perf_counter() - start


def shipped_size(path):
    """Bytes on disk of an export: the prefix's files for MXNet, .xml + .bin for OpenVINO."""
    if path.endswith(".xml"):
        return os.path.getsize(path) + os.path.getsize(path[:-4] + ".bin")
    if path.endswith(".onnx"):
        return os.path.getsize(path)
    return sum(os.path.getsize(path + s) for s in ("-symbol.json", "-0000.params", "-meta.json"))


def train_demo(folder, epochs):
    data = os.path.join(folder, "data")
    proc, seconds = cli("train", "--recipe", "demo", "--demo", "--demo-root", data, "--epochs", str(epochs),
                        "--checkpoints", folder, "--no-progress", "--final-eval", "none")
    if proc.returncode != 0:
        sys.exit("training the demo failed:\n" + proc.stderr[-3000:])
    print("trained the demo recipe in %.0f s" % seconds, flush=True)
    return folder, data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="a checkpoint file or folder")
    parser.add_argument("--data", help="its prepared dataset folder (train split calibrates INT8)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--train-demo", metavar="DIR", help="train the demo recipe into DIR and measure that")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of --train-demo (default 8)")
    parser.add_argument("--calib-batches", type=int, default=4)
    parser.add_argument("--markdown", help="also write the table here")
    args = parser.parse_args(argv)
    if args.train_demo:
        args.checkpoint, default_data = train_demo(args.train_demo, args.epochs)
        args.data = args.data or default_data
    if not (args.checkpoint and args.data):
        parser.error("give --checkpoint and --data, or --train-demo DIR")
    rows, work = [], tempfile.mkdtemp(prefix="deploy-paths-")
    for i, (name, export, suffix, extra) in enumerate(PATHS):
        model, export_s, size = ["--checkpoint", args.checkpoint], None, None
        if export is not None:
            out = os.path.join(work, "m%d%s" % (i, suffix))
            calib = ["--calib-data", args.data, "--calib-batches", str(args.calib_batches)] \
                if "int8" in export else []
            proc, export_s = cli("export", "--checkpoint", args.checkpoint, "-o", out, *export, *calib)
            if proc.returncode != 0:
                rows.append((name, "export refused: " + proc.stderr.strip().splitlines()[-1]))
                continue
            model, size = ["--model", out], shipped_size(out)
        report = os.path.join(work, "r%d.json" % i)
        calib = ["--calib-batches", str(args.calib_batches)] if "int8" in extra else []
        proc, _ = cli("evaluate", *model, "--data", args.data, "--split", args.split, "--report", report, *extra,
                      *calib)
        if proc.returncode != 0:
            rows.append((name, "refused: " + proc.stderr.strip().splitlines()[-1]))
            continue
        r = json.load(open(report))["results"]["1-crop"]
        rows.append((name, r["top1"], r["top5"], r["seconds"], r["count"], export_s, size))
        print(name, "done", flush=True)
    lines = ["| path | top-1 | top-5 | evaluate s | export s | shipped MB |", "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        if len(row) == 2:
            lines.append("| %s | %s | | | | |" % row)
            continue
        name, top1, top5, seconds, count, export_s, size = row
        lines.append("| %s | %.2f %% | %.2f %% | %.2f | %s | %s |" % (
            name, 100 * top1, 100 * top5, seconds, "%.1f" % export_s if export_s else "-",
            "%.1f" % (size / 1e6) if size else "-"))
    cpu = cpu_name()
    images = rows[0][4] if len(rows[0]) > 2 else 0
    head = "%s split of %s (%d images), checkpoint %s; CPU %s, %d cores visible" % (
        args.split, args.data, images, args.checkpoint, cpu, len(os.sched_getaffinity(0)))
    text = head + "\n\n" + "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n\ncommand: python bench/deploy_paths.py %s\n" % " ".join(argv or sys.argv[1:]))


if __name__ == "__main__":
    main()
