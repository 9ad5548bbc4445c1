"""A small trained demo model shared by the evaluate/predict/export/quantize tests (built once per run)."""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile

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
        atexit.register(shutil.rmtree, _CACHE["dir"], ignore_errors=True)
    return _CACHE["dir"]


def trained_demo_checkpoint(epochs=3, batch_size=64):
    """Train GoogLeNet (gluoncv topology) on the demo digits with ``gluon-inception train``.

    Returns the engine's checkpoint ``.params`` path (about 90% test top-1 after 3 epochs).
    Cached for the test run.
    """
    if "checkpoint" in _CACHE:
        return _CACHE["checkpoint"]
    info = demo_dataset()
    folder = os.path.join(_run_dir(), "checkpoints")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    cmd = [
        sys.executable, "-m", "gluon_inception.cli", "train", "--data", info.root,
        "--image-size", str(DEMO_CROP), "--topology", "gluoncv", "--augment", "chapter", "--no-mirror",
        "--optimizer", "adam", "--lr", "0.002", "--lr-scaling", "none", "--epochs", str(epochs),
        "--batch-size", str(batch_size), "--checkpoints", folder, "--prefix", "demo", "--save-every", str(epochs),
        "--val-every", str(epochs), "--final-eval", "none", "--no-progress", "--data-threads", "2", "--seed", "0",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError("training the demo model failed:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr[-3000:]))
    from gluon_inception.checkpoint import latest_checkpoint

    _CACHE["checkpoint"] = latest_checkpoint(folder, "demo")
    return _CACHE["checkpoint"]


def float32_demo_result():
    """1-crop result of the trained demo checkpoint on the demo test split (cached)."""
    if "fp32" not in _CACHE:
        from gluon_inception.deploy.evaluate import evaluate
        from gluon_inception.zoo import load_checkpoint_model

        loaded = load_checkpoint_model(trained_demo_checkpoint())
        loaded.net.hybridize(static_alloc=True, static_shape=True)
        _CACHE["fp32"] = evaluate(loaded.net, demo_dataset().split("test"), loaded.preprocessing, batch_size=50)[1]
    return _CACHE["fp32"]
