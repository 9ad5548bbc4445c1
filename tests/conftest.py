"""Shared fixtures: seeds, the loopback weight server, an environment without weight-store settings,
and the datasets and demo model that several folders use (the datasets and the model are built once
per run, in pytest's temporary folder).

Import the package first so MXNet loads through its compatibility shim. Helpers that test modules
import (``require``, ``child_env``, the loopback server, generated data, the demo model) live in
tests/support/.
"""
import pytest

import gluon_inception  # noqa: F401
from gluon_inception.weights import store
from tests.support import demo
from tests.support.data_utils import write_coloured_squares
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
@pytest.fixture(scope="session")
def train_tiny_dataset(tmp_path_factory):
    """A prepared dataset (4 classes; train 56, val 12, test 16 images of 36 px) for training tests.

    With 3 ranks the train shards hold 19/19/18 records and the test shards 6/6/4: uneven on purpose.
    """
    from gluon_inception.data import prepare_dataset

    base = tmp_path_factory.mktemp("tiny-train-data")
    write_coloured_squares(str(base / "source" / "train"), per_class=17, seed=1)
    write_coloured_squares(str(base / "source" / "val"), per_class=4, seed=2)
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
