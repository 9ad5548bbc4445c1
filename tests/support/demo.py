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
