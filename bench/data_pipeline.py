"""Training-pipeline throughput: our ImageRecordIter pipelines vs torchvision's, per core and on all cores.

What one run does:

- Data (cached in ``--workdir``): ``--images`` generated ImageNet-like JPEGs (500x375 or 375x500:
  a smooth colour field, shapes and band-limited texture, ~30 KB each once stored) prepared by
  ``prepare_dataset`` (shorter side 256, JPEG quality 95); the JPEG bytes of the record file are
  also written out as files, so both sides decode the very same bytes.
- The same augmentation on both sides (printed): random resized crop to 224 (8-100 % of the area,
  aspect 3/4..4/3, bilinear), horizontal flip, brightness/contrast/saturation jitter 0.4, PCA
  lighting 0.1, mean/std normalisation, batches of 32.
- Pipelines: ours ``float`` (everything in the iterator's threads), ``uint8`` (the iterator of
  ``build_train_iter(on_device=True)``: decode, crop, flip; the rest runs on the GPU, so this is
  what the CPU must do per image for GPU training) and ``uint8+cpu`` (the same plus
  ``DeviceAugment`` run on the CPU in the same process, i.e. when the device is the CPU);
  torchvision ``v2`` (``decode_jpeg`` + ``transforms.v2`` on uint8 tensors, float out), ``v2-uint8``
  (decode, crop and flip only: the same split as our ``uint8``) and ``pil`` (PIL + ``transforms``).
- Every measurement is its own process pinned to the first ``N`` cores (``--cores``, default 1 and
  all), with one untimed warm-up epoch and then one timed epoch of every image; rounds alternate
  between the pipelines (round-robin, order rotated each round). Ours runs ``N`` decoding streams
  (``num_threads=N``: one ``ImageRecordIter`` with one thread each), torchvision ``N`` DataLoader
  workers. Reported: images/s (wall) and images per CPU-second (CPU time of every thread and
  worker over the timed epoch: the figure that stays comparable when other jobs share the cores),
  median over rounds, ratios to torchvision, and the scaling of each pipeline from 1 core to ``N``.

    python bench/data_pipeline.py                       # 2,000 images, 3 rounds, 1 core and all cores
    python bench/data_pipeline.py --images 400 --rounds 1 --cores 1   # a quick check
    python bench/data_pipeline.py --profile             # where ImageRecordIter spends its CPU time

The torch side runs in its own interpreter (``--torch-python``, default
``$GLUON_INCEPTION_TORCH_PYTHON`` or /work/main/.venv-torch/bin/python), because GluonCV cannot be
imported beside torch >= 2.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from multiprocessing import Pool

from _timing import cpu_name  # bench/, first on sys.path when a bench script runs

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
# MXNet is imported only after a worker process is pinned to its cores: threads that exist before
# sched_setaffinity keep their old affinity.

AUGMENTATION = ("random resized crop 224 (area 0.08-1, aspect 3/4-4/3, bilinear, no antialias), horizontal flip "
                "p=0.5, brightness/contrast/saturation jitter 0.4, PCA lighting 0.1, mean/std; batch 32")
OURS = ("float", "uint8", "uint8+cpu")
PEERS = ("v2", "v2-uint8", "pil")
LABELS = {
    "float": "ours: ImageRecordIter, float32 out (all work in the iterator)",
    "uint8": "ours: ImageRecordIter uint8 out (jitter/lighting/normalise on the GPU)",
    "uint8+cpu": "ours: uint8 out + DeviceAugment on the CPU",
    "v2": "torchvision decode_jpeg + transforms.v2, float32 out",
    "v2-uint8": "torchvision decode_jpeg + v2 crop/flip, uint8 out (rest on the GPU)",
    "pil": "PIL + torchvision transforms, float32 out",
}


def _make_one(job):
    import cv2
    import numpy as np

    folder, i, classes = job
    rng = np.random.RandomState(i)
    h, w = (375, 500) if i % 4 else (500, 375)
    image = cv2.resize(rng.randint(0, 256, size=(4, 5, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(rng.randint(6, 16)):
        colour = tuple(float(v) for v in rng.randint(0, 256, 3))
        centre = (int(rng.randint(w)), int(rng.randint(h)))
        kind = rng.randint(3)
        if kind == 0:
            axes = (int(rng.randint(5, w // 3)), int(rng.randint(5, h // 3)))
            cv2.ellipse(image, centre, axes, float(rng.randint(180)), 0, 360, colour, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(image, centre, (int(rng.randint(w)), int(rng.randint(h))), colour, -1, cv2.LINE_AA)
        else:
            end = (int(rng.randint(w)), int(rng.randint(h)))
            cv2.line(image, centre, end, colour, int(rng.randint(1, 8)), cv2.LINE_AA)
    image = cv2.GaussianBlur(image, (0, 0), 1.0)
    texture = cv2.resize(rng.normal(0, 1, size=(h // 2, w // 2, 3)).astype(np.float32), (w, h))
    image += texture * rng.uniform(4, 14)
    sub = os.path.join(folder, "class%d" % (i % classes))
    os.makedirs(sub, exist_ok=True)
    cv2.imwrite(os.path.join(sub, "img%05d.jpg" % i), np.clip(image, 0, 255).astype(np.uint8),
                [cv2.IMWRITE_JPEG_QUALITY, 90])


def prepare_data(work, count, workers):
    """-> (record split, folder of the same JPEGs for the peer); built once per ``work`` and ``count``."""
    from gluon_inception.data import prepare_dataset
    from gluon_inception.data.records import check_record_file, read_image_record

    base = os.path.join(work, "n%d" % count)
    source, records, peer = (os.path.join(base, name) for name in ("source", "records", "peer"))
    if not os.path.isfile(os.path.join(source, ".complete")):
        with Pool(workers) as pool:
            pool.map(_make_one, [(source, i, 4) for i in range(count)], chunksize=16)
        open(os.path.join(source, ".complete"), "w").close()
    info = prepare_dataset(source, records, val_per_class=0, image_size=256, workers=workers, stats_images=500)
    split = info.split("train")
    if not os.path.isfile(os.path.join(peer, ".complete")):
        record = check_record_file(split.rec, split.idx)
        with open(split.rec, "rb") as f:
            for k, offset in enumerate(record.offsets):
                label, data = read_image_record(f, offset)
                sub = os.path.join(peer, info.classes[int(label)])
                os.makedirs(sub, exist_ok=True)
                with open(os.path.join(sub, "%05d.jpg" % k), "wb") as out:
                    out.write(data)
        open(os.path.join(peer, ".complete"), "w").close()
    return split, peer


def pin(cores):
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:cores]))
    os.environ["OMP_NUM_THREADS"] = str(cores)


def run_ours(rec, mode, cores, batch_size, crop, **iter_args):
    """One warm-up epoch, then one timed epoch: {"images", "wall", "cpu"} (CPU time of all threads)."""
    from gluon_inception._compat import mx
    from gluon_inception.data import build_train_iter

    it = build_train_iter(rec, batch_size, (3, crop, crop), preset="inception", mean=(123.7, 116.3, 103.5),
                          std=(58.4, 57.1, 57.4), num_threads=iter_args.pop("threads", cores), seed=1,
                          on_device=mode != "float", **iter_args)  # fmt: skip
    augment = it.device_augment if mode == "uint8+cpu" else None
    if augment is not None:
        augment.hybridize(static_alloc=True, static_shape=True)

    def epoch():
        seen = 0
        for batch in it:
            x = batch.data[0]
            if augment is not None:
                x = augment(x)
            x.wait_to_read()
            seen += x.shape[0]
        it.reset()
        return seen

    epoch()  # warm-up: threads start, the record file enters the page cache
    cpu0, start = time.process_time(), time.perf_counter()
    seen = epoch()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    mx.nd.waitall()
    return {"images": seen, "wall": wall, "cpu": cpu, "mxnet": mx.__version__}


def measure(args, split, peer, name, cores):
    if name in OURS:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--rec", split.rec]
    else:
        cmd = [args.torch_python, os.path.join(HERE, "torch_data_pipeline.py"), peer, "--mode", name]
    cmd += ["--cores", str(cores), "--batch-size", str(args.batch_size), "--crop", str(args.crop)]
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        sys.exit("%s on %d core(s) failed:\n%s" % (name, cores, proc.stderr[-3000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def profile(rec, images):
    """CPU time per image of ImageRecordIter with one thread, adding one step at a time."""
    pin(1)
    from gluon_inception._compat import mx

    base = {"path_imgrec": rec, "path_imgidx": rec[:-4] + ".idx", "data_shape": (3, 224, 224), "batch_size": 32,
            "shuffle": True, "preprocess_threads": 1, "verbose": False}
    rrc = {"random_resized_crop": True, "min_random_area": 0.08, "min_aspect_ratio": 0.75, "max_aspect_ratio": 4 / 3}
    norm = {"mean_r": 123.7, "mean_g": 116.3, "mean_b": 103.5, "std_r": 58.4, "std_g": 57.1, "std_b": 57.4}
    steps = [
        ("decode + centre crop, uint8", {"dtype": "uint8"}),
        ("+ random resized crop", {"dtype": "uint8", **rrc}),
        ("+ flip (uint8: the on_device pipeline)", {"dtype": "uint8", "rand_mirror": True, **rrc}),
        ("  same, nearest-neighbour resize", {"dtype": "uint8", "rand_mirror": True, "inter_method": 0, **rrc}),
        ("  same, area resize", {"dtype": "uint8", "rand_mirror": True, "inter_method": 3, **rrc}),
        ("  same, bicubic resize", {"dtype": "uint8", "rand_mirror": True, "inter_method": 2, **rrc}),
        ("+ brightness/contrast/saturation", {"dtype": "uint8", "rand_mirror": True, "brightness": 0.4,
                                              "contrast": 0.4, "saturation": 0.4, **rrc}),
        ("+ PCA lighting", {"dtype": "uint8", "rand_mirror": True, "brightness": 0.4, "contrast": 0.4,
                            "saturation": 0.4, "pca_noise": 0.1, **rrc}),
        ("+ float32 mean/std (the float pipeline)", {"rand_mirror": True, "brightness": 0.4, "contrast": 0.4,
                                                     "saturation": 0.4, "pca_noise": 0.1, **rrc, **norm}),
    ]
    print("ImageRecordIter CPU time per image, 1 thread, %d images per step (best of 2), images per CPU-second:"
          % images)
    results = {}
    for _ in range(2):
        for name, extra in steps:
            it = mx.io.ImageRecordIter(**base, **extra)
            seen, cpu0 = 0, None
            for batch in it:
                batch.data[0].wait_to_read()
                if cpu0 is None:
                    cpu0 = time.process_time()
                    continue
                seen += 32
                if seen >= images:
                    break
            results.setdefault(name, []).append(seen / (time.process_time() - cpu0))
            del it
    for name, _ in steps:
        best = max(results[name])
        print("  %-42s %7.0f img/CPU-s  %6.3f ms/img" % (name, best, 1000.0 / best))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000, help="generated JPEGs = images per timed epoch")
    parser.add_argument("--cores", default=None, help="comma-separated core counts (default: 1 and all available)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pipelines", default=",".join(OURS + PEERS))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--workdir", default=os.path.join(os.path.expanduser("~"), ".cache", "gluon-inception-bench"))
    parser.add_argument("--torch-python", default=os.environ.get("GLUON_INCEPTION_TORCH_PYTHON",
                                                                 "/work/main/.venv-torch/bin/python"))
    parser.add_argument("--profile", action="store_true", help="profile ImageRecordIter's steps instead")
    parser.add_argument("--worker", choices=OURS, help=argparse.SUPPRESS)
    parser.add_argument("--rec", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        pin(int(args.cores))
        print(json.dumps(run_ours(args.rec, args.worker, int(args.cores), args.batch_size, args.crop)))
        return
    available = len(os.sched_getaffinity(0))
    split, peer = prepare_data(args.workdir, args.images, available)
    if args.profile:
        profile(split.rec, min(args.images, 1000))
        return
    cores = [int(c) for c in args.cores.split(",")] if args.cores else sorted({1, available})
    if max(cores) > available:
        parser.error("--cores %d but only %d cores are available" % (max(cores), available))
    names = args.pipelines.split(",")
    unknown = set(names) - set(OURS + PEERS)
    if unknown:
        parser.error("unknown pipelines %s; choose from %s" % (sorted(unknown), ", ".join(OURS + PEERS)))

    results, versions = {}, {}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for n in cores:
            for name in order:
                out = measure(args, split, peer, name, n)
                results.setdefault((n, name), []).append(out)
                versions.update({k: out[k] for k in ("mxnet", "torch", "torchvision") if k in out})

    print("data pipeline throughput: %d JPEGs (shorter side 256, ~%d KB) per timed epoch, after one untimed "
          "warm-up epoch; %d round(s), round-robin" % (split.count, os.path.getsize(split.rec) / split.count / 1024,
                                                      args.rounds))
    print("augmentation (both sides): " + AUGMENTATION)
    print("python %s, %s, CPU: %s" % (platform.python_version(), ", ".join("%s %s" % kv for kv in versions.items()),
                                      cpu_name()))
    for n in cores:
        rows = {}
        for name in names:
            runs = results[(n, name)]
            rows[name] = (statistics.median(o["images"] / o["wall"] for o in runs),
                          max(o["images"] / o["wall"] for o in runs),
                          statistics.median(o["images"] / o["cpu"] for o in runs))
        peers = [p for p in PEERS if p in rows and p != "v2-uint8"]
        best_peer = max(peers, key=lambda p: rows[p][0]) if peers else None
        print("\n%d core(s) (%d decoding thread(s) / DataLoader worker(s)):" % (n, n))
        print("| pipeline | images/s (median) | per core | best round | images per CPU-second | vs best torchvision "
              "float (wall / CPU) |")
        print("|---|---|---|---|---|---|")
        for name in names:
            wall, best, cpu = rows[name]
            ratio = "-"
            if best_peer and name in OURS:
                ratio = "%.2fx / %.2fx" % (wall / rows[best_peer][0], cpu / rows[best_peer][2])
            print("| %s | %.0f | %.0f | %.0f | %.0f | %s |" % (LABELS[name], wall, wall / n, best, cpu, ratio))
        if "uint8" in rows and "v2-uint8" in rows:
            print("same split (uint8 out, rest on the GPU): ours / torchvision v2-uint8 = %.2fx wall, %.2fx CPU" % (
                rows["uint8"][0] / rows["v2-uint8"][0], rows["uint8"][2] / rows["v2-uint8"][2]))
        if best_peer:
            print("best torchvision float pipeline here: %s" % LABELS[best_peer])
    if 1 in cores and len(cores) > 1:
        print("\nscaling: images/s at N cores / at 1 core, of the medians (of the best rounds)")
        print("| pipeline | " + " | ".join("%d cores" % n for n in cores[1:]) + " |")
        print("|---|" + "---|" * (len(cores) - 1))
        for name in names:
            rates = {n: [o["images"] / o["wall"] for o in results[(n, name)]] for n in cores}
            print("| %s | %s |" % (LABELS[name], " | ".join("%.2fx (%.2fx)" % (
                statistics.median(rates[n]) / statistics.median(rates[1]), max(rates[n]) / max(rates[1]))
                for n in cores[1:])))  # fmt: skip
    print("\nload average at the end (other processes share these cores): %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
