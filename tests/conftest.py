"""Shared fixtures: seeds, the loopback weight server, an environment without weight-store settings,
and the datasets and demo model that several folders use (each built once per run).

Import the package first so MXNet loads through its compatibility shim. Helpers that test modules
import (``require``, ``child_env``, the loopback server, the demo model) live in tests/support/.
"""
import os

import pytest

import gluon_inception  # noqa: F401
from gluon_inception.weights import store
from tests.support import demo
from tests.support.loopback import WeightServer


@pytest.fixture(autouse=True)
def _seed():
    import random

    import numpy as np

    from gluon_inception._compat import mx

    random.seed(0)
    np.random.seed(0)
    mx.random.seed(0)


# -- training: a tiny prepared dataset shared by the training tests ------------------------------
TINY_CLASSES = ("red", "green", "blue", "yellow")


def _write_tiny_images(folder, per_class, seed, size=36):
    """Coloured-square images: the class is the square's colour, so a few steps learn it."""
    import numpy as np
    from PIL import Image

    colours = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220), "yellow": (220, 210, 40)}
    rng = np.random.RandomState(seed)
    for name in TINY_CLASSES:
        os.makedirs(os.path.join(folder, name), exist_ok=True)
        for i in range(per_class):
            image = rng.randint(0, 60, size=(size, size, 3)).astype(np.float64)
            side = rng.randint(14, 24)
            top, left = rng.randint(0, size - side, size=2)
            image[top : top + side, left : left + side] = np.array(colours[name]) + rng.normal(0, 15, 3)
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
                os.path.join(folder, name, "%s_%03d.jpg" % (name, i)), quality=92
            )


@pytest.fixture(scope="session")
def train_tiny_dataset(tmp_path_factory):
    """A prepared dataset (4 classes; train 56, val 12, test 16 images of 36 px) for training tests.

    With 3 ranks the train shards hold 19/19/18 records and the test shards 6/6/4: uneven on purpose.
    """
    from gluon_inception.data import prepare_dataset

    base = tmp_path_factory.mktemp("tiny-train-data")
    _write_tiny_images(str(base / "source" / "train"), per_class=17, seed=1)
    _write_tiny_images(str(base / "source" / "val"), per_class=4, seed=2)
    info = prepare_dataset(
        str(base / "source" / "train"),
        str(base / "prepared"),
        val_dir=str(base / "source" / "val"),
        val_per_class=3,
        image_size=36,
        workers=1,
        stats_images=0,
    )
    return info.root


# -- weights: a loopback HTTP server and no store settings from the environment --------------------
@pytest.fixture
def server():
    """A :class:`tests.support.loopback.WeightServer` on 127.0.0.1, stopped after the test."""
    s = WeightServer()
    yield s
    s.stop()


@pytest.fixture
def no_store_environment(monkeypatch):
    """No weight-store variable from the environment: no cache root, mirror, timeout, deadline or rate."""
    for name in (store.ENV_ROOT, store.ENV_MIRRORS, store.ENV_LOCK_TIMEOUT, store.ENV_DEADLINE, store.ENV_MIN_RATE,
                 "MXNET_HOME", "MXNET_GLUON_REPO"):
        monkeypatch.delenv(name, raising=False)


# -- deploy: the demo digits and a GoogLeNet trained on them ---------------------------------------
@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory):
    """The demo digits (scikit-learn's, coloured) prepared at 32 px: a DatasetInfo."""
    return demo.prepare_demo_dataset(str(tmp_path_factory.mktemp("demo-data")))


@pytest.fixture(scope="session")
def demo_checkpoint(demo_dataset, tmp_path_factory):
    """The ``.params`` path of GoogLeNet (gluoncv topology) trained 3 epochs on the demo digits."""
    return demo.train_demo_checkpoint(demo_dataset, str(tmp_path_factory.mktemp("demo-checkpoints")))


@pytest.fixture(scope="session")
def demo_float32_result(demo_checkpoint, demo_dataset):
    """The 1-crop float32 result of the demo checkpoint on the demo test split."""
    return demo.float32_result(demo_checkpoint, demo_dataset)
