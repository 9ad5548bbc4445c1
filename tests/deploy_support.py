"""A small trained demo model shared by the evaluate/predict/export/quantize tests (built once per run)."""
import os
import tempfile
import time

import numpy as np

from gluon_inception._compat import mx

DEMO_IMAGE_SIZE = 32  # the smallest demo records; the gluoncv topology takes 32x32 inputs
DEMO_CROP = 32
_CACHE = {}


def demo_dataset():
    """The demo digits prepared at 32 pixels in a per-run temporary folder."""
    if "dataset" not in _CACHE:
        from gluon_inception.data import load_dataset, prepare_demo

        root = os.path.join(_run_dir(), "demo")
        _CACHE["dataset"] = load_dataset(prepare_demo(root, image_size=DEMO_IMAGE_SIZE, workers=2))
    return _CACHE["dataset"]


def _run_dir():
    if "dir" not in _CACHE:
        _CACHE["dir"] = tempfile.mkdtemp(prefix="gluon-inception-deploy-tests-")
    return _CACHE["dir"]


def trained_demo_checkpoint(epochs=4, batch_size=64):
    """Train GoogLeNet (gluoncv topology) on the demo digits with a plain Gluon loop; save a checkpoint.

    Returns the checkpoint's ``.params`` path. Cached for the test run.
    """
    if "checkpoint" in _CACHE:
        return _CACHE["checkpoint"]
    from gluon_inception import googlenet
    from gluon_inception.checkpoint import save_checkpoint
    from gluon_inception.data import build_train_iter

    info = demo_dataset()
    mx.random.seed(0)
    np.random.seed(0)
    net = googlenet(classes=info.num_classes, topology="gluoncv")
    net.hybridize(static_alloc=True, static_shape=True)
    it = build_train_iter(info.split("train"), batch_size, data_shape=(3, DEMO_CROP, DEMO_CROP), preset="chapter",
                          mean=info.mean, std=info.std, rand_mirror=False, max_rotate_angle=0, max_shear_ratio=0,
                          num_threads=2)
    trainer = mx.gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 2e-3})
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    start = time.time()
    for _ in range(epochs):
        for batch in it:
            data, label = batch.data[0].as_in_context(mx.cpu()), batch.label[0].as_in_context(mx.cpu())
            with mx.autograd.record():
                loss = loss_fn(net(data), label)
            loss.backward()
            trainer.step(data.shape[0])
    # hybridize(static_alloc=True) leaves BatchNorm's running statistics to queued writes that reading
    # them does not wait for (MXNet 1.9.1): without this the checkpoint gets stale statistics.
    mx.nd.waitall()
    meta = {
        "model": {"name": "googlenet", "topology": "gluoncv", "classes": info.num_classes, "aux_logits": False},
        "data": {"mean": list(info.mean), "std": list(info.std), "data_shape": [3, DEMO_CROP, DEMO_CROP],
                 "classes": list(info.classes)},
        "train_seconds": time.time() - start,
    }
    paths = save_checkpoint(os.path.join(_run_dir(), "checkpoints"), "demo", epochs, net, meta=meta)
    _CACHE["checkpoint"] = paths["params"]
    return paths["params"]


def float32_demo_result():
    """1-crop result of the trained demo checkpoint on the demo test split (cached)."""
    if "fp32" not in _CACHE:
        from gluon_inception.evaluate import evaluate
        from gluon_inception.inference import load_checkpoint_model

        loaded = load_checkpoint_model(trained_demo_checkpoint())
        loaded.net.hybridize(static_alloc=True, static_shape=True)
        _CACHE["fp32"] = evaluate(loaded.net, demo_dataset().split("test"), loaded.preprocessing, batch_size=50)[1]
    return _CACHE["fp32"]
