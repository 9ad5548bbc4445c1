"""The demo digits and a small GoogLeNet trained on them, for the evaluate/predict/export/quantize tests.

conftest.py turns these into session fixtures (``demo_dataset``, ``demo_checkpoint``,
``demo_float32_result``), so each is built once per test run in pytest's temporary folder.
"""
import os
import subprocess
import sys

from gluon_inception.checkpoint import latest_checkpoint
from gluon_inception.data import load_dataset, prepare_demo
from gluon_inception.deploy.evaluate import evaluate
from gluon_inception.zoo import load_checkpoint_model
from tests.support import child_env

DEMO_IMAGE_SIZE = 32  # the smallest demo records; the gluoncv topology takes 32x32 inputs
DEMO_CROP = 32


def prepare_demo_dataset(folder):
    """The demo digits prepared at 32 pixels under ``folder``."""
    return load_dataset(prepare_demo(os.path.join(folder, "demo"), image_size=DEMO_IMAGE_SIZE, workers=2))


def train_demo_checkpoint(info, folder, epochs=3, batch_size=64):
    """Train GoogLeNet (gluoncv topology) on the demo digits ``info`` with ``gluon-inception train``.

    Returns the engine's checkpoint ``.params`` path in ``folder`` (about 90% test top-1 after 3 epochs).
    """
    cmd = [
        sys.executable, "-m", "gluon_inception.cli", "train", "--data", info.root,
        "--image-size", str(DEMO_CROP), "--topology", "gluoncv", "--augment", "chapter", "--no-mirror",
        "--optimizer", "adam", "--lr", "0.002", "--lr-scaling", "none", "--epochs", str(epochs),
        "--batch-size", str(batch_size), "--checkpoints", folder, "--prefix", "demo", "--save-every", str(epochs),
        "--val-every", str(epochs), "--final-eval", "none", "--no-progress", "--data-threads", "2", "--seed", "0",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError("training the demo model failed:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr[-3000:]))
    return latest_checkpoint(folder, "demo")


def float32_result(checkpoint, info):
    """1-crop result of ``checkpoint`` on the test split of the demo digits ``info``."""
    loaded = load_checkpoint_model(checkpoint)
    loaded.net.hybridize(static_alloc=True, static_shape=True)
    return evaluate(loaded.net, info.split("test"), loaded.preprocessing, batch_size=50)[1]


def predictions(net, info, preprocessing, splits=("train", "val", "test")):
    """``(top-1 predictions, labels)`` of ``net`` over every image of ``splits`` of ``info`` (1-crop, in
    record order): all 1,797 demo digits by default, for paired comparisons of two networks."""
    from gluon_inception._compat import mx, np
    from gluon_inception.data import build_val_iter

    predicted, labels = [], []
    for split in splits:
        for batch in build_val_iter(info.split(split), 50, preprocessing=preprocessing, num_threads=2):
            n = batch.data[0].shape[0] - batch.pad
            logits = net(batch.data[0].as_in_context(mx.cpu())).asnumpy()[:n]
            predicted.append(logits.argmax(axis=1))
            labels.append(batch.label[0].asnumpy()[:n].astype(int))
    return np.concatenate(predicted), np.concatenate(labels)


def assert_int8_agrees(int8_net, float32_net, info, preprocessing):
    """INT8 against float32, paired, on all 1,797 demo digits; returns ``(disagreements, top-1 change)``.

    Why these bounds: on 300 test images one image is a third of a point, so a bound on the test
    split's accuracy alone measures luck and the CPU's int8 kernels. Measured with the demo model on
    AMX, AVX-512 and AVX2 kernels (naive and entropy calibration): INT8 changes the top-1 answer on
    11-20 of the 1,797 images (0.6-1.1%) and top-1 accuracy by 0-5 images (under 0.3 point). If the
    true rate is 1%, the count is about binomial(1797, 0.01): mean 18, standard deviation 4.2, so
    the bound of 2.5% (45 images) is 6 standard deviations away, while a broken calibration (a layer
    without statistics, wrong ranges) changes tens of percent. Accuracy must stay within 1 point
    (18 images), the tolerance the deployment docs promise for INT8. The same bounds hold on every
    CPU kind.
    """
    from gluon_inception._compat import np

    got, labels = predictions(int8_net, info, preprocessing)
    want, labels_again = predictions(float32_net, info, preprocessing)
    assert len(labels) == 1797 and np.array_equal(labels, labels_again)
    disagreements = int((got != want).sum())
    change = float((got == labels).mean() - (want == labels).mean())
    print("INT8 vs float32 on %d demo digits: %d disagree, top-1 %+.2f points" % (len(labels), disagreements,
                                                                               100 * change))
    assert disagreements <= 0.025 * len(labels), disagreements
    assert abs(change) <= 0.01, change
    return disagreements, change
