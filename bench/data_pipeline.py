"""Training-pipeline throughput: our ImageRecordIter pipeline vs a PIL + torchvision DataLoader.

Both decode the very same JPEG bytes (the images stored in our record files, shorter side 256,
are also written out as files for the peer) and apply the same Inception-style augmentation
(random resized crop to 224, mirror, colour jitter 0.4, PCA lighting 0.1, normalisation) into
float32 batches of 32, pinned to the same CPU cores, in the same run. Prints images/s, images/s
per core and the ratio.

    python bench/data_pipeline.py --cores 2 --images 400

The torch side runs in its own interpreter (``--torch-python``, default /work/venv-torch/bin/python)
because GluonCV cannot be imported beside torch >= 2.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
# MXNet is imported only after the process is pinned to its cores (in main): threads that exist
# before sched_setaffinity keep their old affinity.


def make_jpegs(folder, count, classes=4, seed=0):
    """ImageNet-like JPEGs: 500x375 (some portrait), smooth random structure plus texture."""
    import cv2
    import numpy as np

    rng = np.random.RandomState(seed)
    for i in range(count):
        h, w = (375, 500) if i % 4 else (500, 375)
        coarse = rng.randint(0, 256, size=(6, 8, 3)).astype(np.float32)
        image = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        image += rng.normal(0, 20, size=(h, w, 3)).astype(np.float32)
        sub = os.path.join(folder, "class%d" % (i % classes))
        os.makedirs(sub, exist_ok=True)
        cv2.imwrite(os.path.join(sub, "img%04d.jpg" % i), np.clip(image, 0, 255).astype(np.uint8),
                    [cv2.IMWRITE_JPEG_QUALITY, 90])


def export_record_jpegs(split, classes, folder):
    """Write the JPEG bytes stored in a record file as files (class folders), for the peer."""
    from gluon_inception.data.records import check_record_file, read_image_record

    info = check_record_file(split.rec, split.idx)
    with open(split.rec, "rb") as f:
        for k, offset in enumerate(info.offsets):
            label, data = read_image_record(f, offset)
            sub = os.path.join(folder, classes[int(label)])
            os.makedirs(sub, exist_ok=True)
            with open(os.path.join(sub, "%05d.jpg" % k), "wb") as out:
                out.write(data)


def threads_outside(cores):
    """Threads of this process allowed to run outside ``cores`` (should be none)."""
    stray = []
    for task in os.listdir("/proc/self/task"):
        try:
            allowed = os.sched_getaffinity(int(task))
        except OSError:
            continue
        if not allowed <= cores:
            stray.append("%s %s %s" % (task, open("/proc/self/task/%s/comm" % task).read().strip(), sorted(allowed)))
    return stray


def time_ours(split, cores, batch_size, images, crop):
    from gluon_inception.data import build_train_iter

    it = build_train_iter(split, batch_size, (3, crop, crop), preset="inception", num_threads=cores, seed=1)
    seen, start = 0, None
    while start is None or seen < images:
        for batch in it:
            batch.data[0].wait_to_read()
            if start is None:  # the first batch pays for thread start-up: not timed
                start = time.perf_counter()
                continue
            seen += batch.data[0].shape[0]
            if seen >= images:
                break
        it.reset()
    return seen / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cores", type=int, default=2, help="CPU cores both pipelines are pinned to")
    parser.add_argument("--source-images", type=int, default=300, help="generated JPEGs")
    parser.add_argument("--images", type=int, default=400, help="images timed per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is reported")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--torch-python", default="/work/venv-torch/bin/python")
    parser.add_argument("--workdir", help="keep the generated data here (default: a temporary folder)")
    args = parser.parse_args()

    available = sorted(os.sched_getaffinity(0))
    if args.cores > len(available):
        parser.error("--cores %d but only %d cores are available" % (args.cores, len(available)))
    pinned = set(available[: args.cores])
    os.sched_setaffinity(0, pinned)
    os.environ["OMP_NUM_THREADS"] = str(args.cores)
    from gluon_inception._compat import mx
    from gluon_inception.data import prepare_dataset

    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or tmp
        source, records, peer = (os.path.join(work, name) for name in ("source", "records", "peer"))
        if not os.path.isdir(source):
            make_jpegs(source, args.source_images)
        info = prepare_dataset(source, records, val_per_class=0, image_size=256, workers=args.cores,
                               stats_images=0)
        split = info.split("train")
        if not os.path.isdir(peer):
            export_record_jpegs(split, info.classes, peer)

        ours, theirs = [], []
        versions = {}
        for _ in range(args.rounds):
            ours.append(time_ours(split, args.cores, args.batch_size, args.images, args.crop))
            stray = threads_outside(pinned)
            if stray:
                sys.exit("threads %s of this process are not pinned to cores %s" % (stray, sorted(pinned)))
            proc = subprocess.run(
                [args.torch_python, os.path.join(HERE, "torch_data_pipeline.py"), peer, "--cores", str(args.cores),
                 "--batch-size", str(args.batch_size), "--crop", str(args.crop), "--images", str(args.images)],
                capture_output=True, text=True, check=False,
            )
            if proc.returncode != 0:
                sys.exit("the torchvision side failed:\n" + proc.stderr[-3000:])
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            theirs.extend(result["images_per_s"])
            versions = {"torch": result["torch"], "torchvision": result["torchvision"]}

    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    print("data pipeline throughput, %d JPEGs (shorter side 256) -> %dx%d Inception augmentation, batch %d, "
          "%d core(s), median of %d rounds" % (split.count, args.crop, args.crop, args.batch_size, args.cores,
                                               args.rounds))
    print("python %s, mxnet %s, torch %s, torchvision %s, CPU: %s" % (
        platform.python_version(), mx.__version__, versions.get("torch"), versions.get("torchvision"),
        platform.processor() or platform.machine()))
    print("| pipeline | images/s (median) | per core (median) | per core (best round) | all rounds, images/s |")
    print("|---|---|---|---|---|")
    print("| gluon-inception (mx.io.ImageRecordIter, preset inception) | %.1f | %.1f | %.1f | %s |"
          % (ours_median, ours_median / args.cores, max(ours) / args.cores, ", ".join("%.0f" % v for v in ours)))
    print("| PIL + torchvision transforms, DataLoader(num_workers=%d) | %.1f | %.1f | %.1f | %s |"
          % (args.cores, theirs_median, theirs_median / args.cores, max(theirs) / args.cores,
             ", ".join("%.0f" % v for v in theirs)))
    print("ratio (ours / torchvision): %.2fx median, %.2fx best round"
          % (ours_median / theirs_median, max(ours) / max(theirs)))
    print("load average at the end (other processes share these cores): %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
