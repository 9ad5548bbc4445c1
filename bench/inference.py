"""CPU inference speed: ours against each peer's best path, in every precision, in one run.

One run measures, at 224x224 with 1000 classes and the same number of threads for everyone:
images per second at batch 32 and the median latency at batch 1, for

- ours in MXNet: float32 (plain ``hybridize`` and oneDNN-fused), bfloat16 (``to_bfloat16``), INT8
  (``quantize_int8``), and GluonCV's googlenet;
- torchvision in the torch interpreter (``--torch-python``; GluonCV does not import beside torch >= 2):
  eager NCHW, channels_last, channels_last + bf16 autocast, ``torch.compile``;
- the deployment paths, ours and torchvision's side by side: our network exported by our code
  (``export_onnx``, ``export_openvino``, ``quantize_file``: INT8 by ONNX Runtime's quantizer for ONNX,
  by NNCF for OpenVINO) and torchvision's exported by ``torch.onnx.export`` (converted to OpenVINO IR
  by OpenVINO, quantized by the same ``quantize_file`` calls on the same calibration images), each run
  in ONNX Runtime (float32, INT8) and OpenVINO (float32, bf16 where the CPU has it, INT8 from NNCF, the
  INT8 ONNX file), with the same runtime settings, in the peers interpreter (``--peers-python``).

    PYTHONPATH=$PWD python bench/inference.py --threads 2 --markdown inference.md
    PYTHONPATH=$PWD python bench/inference.py --threads 2 --min-time 0.2 --rounds 1 --latency-runs 2 \\
        --no-compile       # a smoke test

Both sides are the same network with the same weights: torchvision's ``googlenet(weights=None,
aux_logits=False, init_weights=True, transform_input=True)`` (seeded) and our ``topology="torchvision"``
(the same layers and input re-scaling) loaded from that network's state dict; without torch our
network keeps its own random initialisation. Rounds are round-robin over every model and runtime.
Ratios are against the best peer of the same precision. Weights are random: speed does not depend on
their values, but top-1 agreement on random weights says little (the note gives how many distinct
classes the reference picks); every INT8 model is calibrated on the same random images
(accuracy on real images: tests/deploy/test_quantize.py).
"""
import argparse
import collections
import contextlib
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import warnings

from _timing import rate_and_latency  # bench/, first on sys.path when a bench script runs

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_TORCH_PYTHON = os.environ.get("GLUON_INCEPTION_TORCH_PYTHON", os.path.join(ROOT, ".venv-torch/bin/python"))
# The peers interpreter needs onnxruntime and openvino, not MXNet: .venv-peers (BENCH=1 bash
# scripts/setup.sh) when it exists, else this interpreter (the package's venv may have them).
DEFAULT_PEERS_PYTHON = os.environ.get("GLUON_INCEPTION_PEERS_PYTHON") or next(
    (p for p in [os.path.join(ROOT, ".venv-peers/bin/python")] if os.path.exists(p)), sys.executable)
#: The row names of the deployment paths, after "ours " or "torchvision ".
DEPLOY_PREFIXES = ("ONNX Runtime", "OpenVINO")
#: Images per calibration batch (NNCF's sample, ONNX Runtime's calibration step).
CALIB_BATCH = 8


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
                        help="interpreter with onnxruntime and openvino (default: .venv-peers, else this one)")
    parser.add_argument("--no-export", action="store_true",
                        help="skip every deployment row (ONNX Runtime and OpenVINO, ours and torchvision's)")
    parser.add_argument("--no-peers", action="store_true",
                        help="skip torchvision's deployment rows (its ONNX file in ONNX Runtime and OpenVINO)")
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


def agreement(reference, other, against="our float32"):
    """Top-1 agreement of two class lists, as a sentence for the notes."""
    same = sum(int(x == y) for x, y in zip(reference, other)) / max(1, len(reference))
    return "same top-1 class as %s for %.1f%% of %d check images" % (against, 100 * same, len(reference))


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


def images(args, workdir):
    """The calibration and check images (random, seeded); the check images also as ``.npy`` for the workers."""
    from gluon_inception._compat import np

    rng = np.random.RandomState(0)
    shape = (2 * args.batch, 3, args.size, args.size)
    data = {"calib": rng.normal(size=shape).astype(np.float32), "check": rng.normal(size=shape).astype(np.float32)}
    data["check_path"] = os.path.join(workdir, "check.npy")
    np.save(data["check_path"], data["check"])
    return data


def our_network(args, notes, torch_files):
    """Our GoogLeNet (``topology="torchvision"``) with torchvision's weights when the torch worker wrote them."""
    from gluon_inception import googlenet
    from gluon_inception._compat import mx
    from gluon_inception.models.googlenet import count_parameters

    mx.random.seed(0)
    if torch_files.get("pth"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "not a registered entry": it is a local file on purpose
            net = googlenet(classes=1000, topology="torchvision", pretrained=torch_files["pth"])
        notes.append("ours: topology='torchvision' (%s parameters) with the torchvision network's own weights, so "
                     "both sides compute the same function" % format(count_parameters(net), ","))  # fmt: skip
    else:
        net = googlenet(classes=1000, topology="torchvision")
        notes.append("ours: topology='torchvision' (%s parameters), random weights (no torchvision weights to load)"
                     % format(count_parameters(net), ","))  # fmt: skip
    return net


def mxnet_models(args, notes, net, data):
    """[(name, block)] of the MXNet rows (ours in float32, INT8 and bfloat16, and GluonCV's), and our
    float32 top-1 on the check images (every agreement of ours is against it)."""
    from gluon_inception import cpu
    from gluon_inception._compat import mx
    from gluon_inception.deploy.quantize import (
        QuantizationError,
        optimize_float32,
        quantize_int8,
        to_bfloat16,
    )

    models = []
    calib, check = data["calib"], data["check"]
    shape = (3, args.size, args.size)
    net.hybridize(static_alloc=True, static_shape=True)
    models.append(("ours float32 (hybridized, static_alloc)", net))
    reference = top1(net, check, args.batch)
    notes.append("our float32 picks %d distinct classes for the %d check images (random weights: agreement "
                 "figures are weak evidence)" % (len(set(reference)), len(reference)))  # fmt: skip
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
    return models, reference


def failed(notes, message):
    """A row that could not be built: said at once on stderr, and kept for the notes under the table."""
    print("FAILED: " + message, file=sys.stderr, flush=True)
    notes.append(message)


def _missing(*modules):
    import importlib.util

    return [m for m in modules if importlib.util.find_spec(m) is None]


def deployment_files(args, notes, net, data, workdir, torch_files):
    """Export and quantize the files the peers worker times: ``{"rows": [...]}`` (its ``--spec``).

    Ours go through our own code (``export_onnx``, ``export_openvino``, ``quantize_file``);
    torchvision's ONNX file goes to OpenVINO IR by OpenVINO's converter and to INT8 by the same
    ``quantize_file`` on the same images: ONNX Runtime's quantizer for the ``.onnx`` files (whose INT8
    runs in ONNX Runtime and OpenVINO), NNCF for the IRs. ``min_agreement=0``: on random weights the
    INT8 answers are reported as notes, not judged.
    """
    from gluon_inception import cpu
    from gluon_inception.deploy.export import export_onnx
    from gluon_inception.deploy.runtimes import export_openvino, quantize_file
    from gluon_inception.errors import GluonInceptionError

    bf16 = cpu.supports_bf16()
    if not bf16:
        notes.append("OpenVINO bf16 rows skipped: this CPU has neither AVX-512 BF16 nor AMX (or a DNNL_MAX_CPU_ISA "
                     "cap forbids them)")  # fmt: skip
    missing = _missing("onnx", "onnxruntime", "onnxruntime.quantization", "openvino", "nncf")
    if "onnx" in missing:
        notes.append("deployment rows skipped: onnx is not installed in %s" % sys.executable)
        return {"rows": []}
    calib_batches = [data["calib"][i : i + CALIB_BATCH] for i in range(0, len(data["calib"]), CALIB_BATCH)]
    sources = {"ours": {"onnx": os.path.join(workdir, "ours.onnx")}}
    start = time.perf_counter()
    export_onnx(net, sources["ours"]["onnx"], input_shape=(1, 3, args.size, args.size), dynamic_batch=True)
    if "openvino" not in missing:
        sources["ours"]["xml"] = os.path.join(workdir, "ours.xml")
        export_openvino(net, sources["ours"]["xml"], input_shape=(1, 3, args.size, args.size))
    notes.append("ours: export_onnx and export_openvino (both checked against MXNet) took %.0f s"
                 % (time.perf_counter() - start))  # fmt: skip
    if torch_files.get("onnx") and not args.no_peers:
        sources["torchvision"] = {"onnx": torch_files["onnx"]}
        if "openvino" not in missing:
            import openvino as ov

            sources["torchvision"]["xml"] = os.path.join(workdir, "torchvision.xml")
            ov.save_model(ov.convert_model(torch_files["onnx"]), sources["torchvision"]["xml"], compress_to_fp16=False)
    quantizers = {"onnx": "onnxruntime.quantization", "xml": "nncf"}
    for fmt, module in quantizers.items():
        if module in missing:
            notes.append("%s INT8 rows skipped: %s is not importable in %s" % (fmt, module, sys.executable))
    spec = {"rows": []}
    for side, files in sources.items():
        int8 = {}
        for fmt, path in files.items():
            if quantizers[fmt] in missing:
                continue
            out = os.path.join(workdir, "%s_int8.%s" % (side, fmt))
            start = time.perf_counter()
            try:
                result = quantize_file(path, out, calib_batches, min_agreement=0.0)
            except GluonInceptionError as err:  # our own refusal: the row is missing, and the table says why
                failed(notes, "%s %s INT8 FAILED, no row: %s" % (side, fmt, err))
                continue
            int8[fmt] = out
            notes.append("%s %s INT8 (%s, %d batches of %d images): %d quantized layers, %.0f%% top-1 kept on the "
                         "calibration images, %.0f s" % (side, fmt, result["quantizer"], len(calib_batches),
                         CALIB_BATCH, result["quantized_layers"], 100 * result["agreement"],
                         time.perf_counter() - start))  # fmt: skip
        rows = [("ONNX Runtime float32", "onnxruntime", files["onnx"], "f32")]
        if "onnx" in int8:
            rows.append(("ONNX Runtime INT8 (ORT static QDQ)", "onnxruntime", int8["onnx"], "f32"))
        if "xml" in files:
            rows.append(("OpenVINO float32", "openvino", files["xml"], "f32"))
            if bf16:
                rows.append(("OpenVINO bf16", "openvino", files["xml"], "bf16"))
        if "xml" in int8:
            rows.append(("OpenVINO INT8 (NNCF)", "openvino", int8["xml"], "f32"))
        if "onnx" in int8 and "xml" in files:
            rows.append(("OpenVINO INT8 (ORT QDQ file)", "openvino", int8["onnx"], "f32"))
        spec["rows"] += [{"name": "%s %s" % (side, label), "runtime": runtime, "path": path, "precision": p}
                         for label, runtime, path, p in rows]  # fmt: skip
    return spec


class Worker:
    """A bench script in its own interpreter, answering one round per request (JSON lines on stdout).

    Its stderr is copied to ours as it comes and the last lines are kept: a worker that dies makes
    the bench fail with them, instead of waiting forever.
    """

    def __init__(self, cmd, args, notes):
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
        env.pop("PYTHONPATH", None)
        self.name = os.path.basename(cmd[1])
        self.tail = collections.deque(maxlen=30)
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)  # fmt: skip
        self._stderr = threading.Thread(target=self._copy_stderr, daemon=True)
        self._stderr.start()
        self.ready = self._read()
        notes.extend(self.ready["notes"])
        self.names = self.ready["models"]

    def _copy_stderr(self):
        for line in self.proc.stderr:
            self.tail.append(line)
            sys.stderr.write(line)
            sys.stderr.flush()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        code = self.proc.wait()
        self._stderr.join(timeout=10)
        raise WorkerError("the worker %s stopped (exit %s); the end of its stderr:\n%s"
                          % (self.name, code, "".join(self.tail) or "(nothing)\n"))  # fmt: skip

    def round(self):
        self.proc.stdin.write("round\n")
        self.proc.stdin.flush()
        return self._read()["rows"]

    def close(self):
        with contextlib.suppress(OSError):
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class WorkerError(RuntimeError):
    """A worker process died: the bench stops with its stderr."""


def _common(args):
    return ["--threads", str(args.threads), "--batch", str(args.batch), "--size", str(args.size),
            "--min-time", str(args.min_time), "--latency-runs", str(args.latency_runs)]  # fmt: skip


def start_torch(args, notes, data, workdir):
    """The torch worker (it also writes torchvision's weights and ONNX file), or None without torch."""
    if args.no_torch:
        return None
    if not os.path.exists(args.torch_python):
        notes.append("torchvision skipped: no interpreter at %s (--torch-python)" % args.torch_python)
        return None
    cmd = [args.torch_python, os.path.join(HERE, "_torch_inference.py"), "--check", data["check_path"],
           "--export-dir", workdir] + _common(args)  # fmt: skip
    worker = Worker(cmd + (["--no-compile"] if args.no_compile else []), args, notes)
    notes.append("torchvision googlenet(weights=None, aux_logits=False, init_weights=True, transform_input=True): "
                 "%s parameters" % format(worker.ready["params"], ","))  # fmt: skip
    return worker


def start_peers(args, notes, data, spec, workdir):
    """The worker that times the exported files in ONNX Runtime and OpenVINO, or None."""
    if not spec["rows"]:
        return None
    if not os.path.exists(args.peers_python):
        notes.append("ONNX Runtime and OpenVINO skipped: no interpreter at %s (--peers-python)" % args.peers_python)
        return None
    spec_path = os.path.join(workdir, "spec.json")
    with open(spec_path, "w", encoding="utf-8") as f:
        json.dump(spec, f)
    cmd = [args.peers_python, os.path.join(HERE, "_peer_inference.py"), "--spec", spec_path,
           "--check", data["check_path"]] + _common(args)  # fmt: skip
    return Worker(cmd, args, notes)


def run_rounds(args, notes):
    """Measure every model ``--rounds`` times, interleaving MXNet's rounds with each worker's."""
    from gluon_inception._compat import mx

    workers = []
    with tempfile.TemporaryDirectory(prefix="gluon-inception-bench-") as workdir:
        try:
            data = images(args, workdir)
            torch_worker = start_torch(args, notes, data, workdir)
            if torch_worker:
                workers.append(torch_worker)
            torch_files = torch_worker.ready["files"] if torch_worker else {}
            net = our_network(args, notes, torch_files)
            models, reference = mxnet_models(args, notes, net, data)
            if torch_worker:
                theirs = torch_worker.ready["top1"]["torchvision googlenet (eager)"]
                notes.append("ours float32 vs torchvision eager float32 (the same weights): "
                             + agreement(theirs, reference, "torchvision's float32"))  # fmt: skip
                for name, classes in torch_worker.ready["top1"].items():
                    if "bf16" in name:
                        notes.append("%s: %s" % (name, agreement(theirs, classes, "torchvision's float32")))
            if not args.no_export:
                spec = deployment_files(args, notes, net, data, workdir, torch_files)
                peers = start_peers(args, notes, data, spec, workdir)
                if peers:
                    workers.append(peers)
                    for name, classes in peers.ready["top1"].items():
                        if name.startswith("ours"):
                            notes.append("%s: %s" % (name, agreement(reference, classes)))
                        elif torch_worker:
                            notes.append("%s: %s" % (name, agreement(theirs, classes, "torchvision's float32")))
            results = {name: [] for name, _ in models}
            for worker in workers:
                results.update({name: [] for name in worker.names})
            # Each round visits the MXNet models and the workers in a rotated order with a pause between
            # them, so that no model always runs first after another runtime's busy threads.
            units = list(models) + [(None, worker) for worker in workers]
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


def is_deployment(name):
    """True for a row of an exported file in ONNX Runtime or OpenVINO (ours or torchvision's)."""
    return name.split(" ", 1)[-1].startswith(DEPLOY_PREFIXES)


def summary(rows):
    """Per precision: our best deployment row and our best row of any kind against the best peer row
    (throughput at the batch, latency at batch 1), then each deployment path of ours against
    torchvision's through the same runtime and precision."""
    lines = ["| precision | our best deployment path | img/s | best peer path | img/s | ratio | our best batch-1 "
             "deployment latency (ms) | best peer latency (ms) | latency ratio | our best row of any kind |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    for p in ("fp32", "bf16", "int8"):
        same = [r for r in rows if precision(r["name"]) == p]
        ours = [r for r in same if r["name"].startswith("ours ") and is_deployment(r["name"])]
        peers = [r for r in same if not r["name"].startswith("ours ")]
        best_any = max((r for r in same if r["name"].startswith("ours ")), key=lambda r: r["img_per_s"], default=None)
        if not ours or not peers:
            lines.append("| %s | %s | | %s | | n/a | | | | %s |" % (
                p, max(ours, key=lambda r: r["img_per_s"])["name"] if ours else "none",
                max(peers, key=lambda r: r["img_per_s"])["name"] if peers else "none",
                best_any["name"] if best_any else "none"))  # fmt: skip
            continue
        a, b = max(ours, key=lambda r: r["img_per_s"]), max(peers, key=lambda r: r["img_per_s"])
        la, lb = min(ours, key=lambda r: r["latency_ms"]), min(peers, key=lambda r: r["latency_ms"])
        lines.append("| %s | %s | %.1f | %s | %.1f | **%.2fx** | %.2f (%s) | %.2f (%s) | %.2fx | %s (%.1f img/s) |" % (
            p, a["name"], a["img_per_s"], b["name"], b["img_per_s"], a["img_per_s"] / b["img_per_s"],
            la["latency_ms"], la["name"], lb["latency_ms"], lb["name"], lb["latency_ms"] / la["latency_ms"],
            best_any["name"], best_any["img_per_s"]))  # fmt: skip
    by_name = {r["name"]: r for r in rows}
    pairs = [(r, by_name.get("torchvision " + r["name"][len("ours "):])) for r in rows
             if r["name"].startswith("ours ") and is_deployment(r["name"])]  # fmt: skip
    pairs = [(a, b) for a, b in pairs if b]
    if pairs:
        lines += ["", "| same runtime and precision | ours img/s | torchvision's img/s | ratio | ours ms | "
                  "torchvision's ms |", "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
        for a, b in pairs:
            lines.append("| %s | %.1f | %.1f | %.2fx | %.2f | %.2f |" % (
                a["name"][len("ours "):], a["img_per_s"], b["img_per_s"], a["img_per_s"] / b["img_per_s"],
                a["latency_ms"], b["latency_ms"]))  # fmt: skip
    return "\n".join(lines)


def cpu_line():
    """The CPU's model name and the features that decide which rows run fast here."""
    from gluon_inception import cpu

    flags = cpu.flags()

    def has(*names):
        return "yes" if all(n in flags for n in names) else "no"

    return "CPU: %s; %d cores; AVX2 %s, AVX-512 BF16 %s, AMX %s (MXNet's AMX switch: %s)" % (
        cpu.describe(), os.cpu_count(), has("avx2"), has("avx512_bf16"), has("amx_tile", "amx_bf16"),
        "on" if cpu.amx_in_use() else "off")  # fmt: skip


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
        "cpu_line": cpu_line(),
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
    ratios = summary(rows)
    print()
    print(env["cpu_line"])
    print()
    print(text)
    print()
    print(ratios)
    for note in notes:
        print("note:", note)
    command = "python bench/inference.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"environment": env, "rows": rows, "notes": notes, "command": command}, f, indent=2)
    if args.markdown:
        write_markdown(args.markdown, text + "\n\n" + ratios, notes, env, command, args)
    return 0


def write_markdown(path, text, notes, env, command, args):
    lines = [
        "# CPU inference benchmark",
        "",
        env["cpu_line"],
        "",
        "GoogLeNet inference at %dx%d, 1000 classes, random weights, measured in one run on %s "
        "(%d cores; %s), %s, Python %s, MXNet %s. Every framework was pinned to %d threads "
        "(`OMP_NUM_THREADS` for MXNet, `torch.set_num_threads` for torch, `intra_op_num_threads` for ONNX "
        "Runtime, `INFERENCE_NUM_THREADS` and one stream for OpenVINO). Throughput is images per "
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
        "Ratios are against the fastest peer (not ours) of the same precision; higher is better (for latency, "
        "the peer's ms over ours).",
        "",
    ]  # fmt: skip
    if notes:
        lines += ["Notes from the run:", ""] + ["- %s" % n for n in notes] + [""]
    lines += ["Command:", "", "```", command, "```", ""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
