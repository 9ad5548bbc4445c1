"""The embedded demo dataset: scikit-learn's handwritten digits as RGB JPEGs, then the normal ``prepare``.

scikit-learn ships the UCI optical-recognition digits (1,797 real 8x8 images of 0-9) inside its
package, so this needs no download. Each digit is scaled up (default 64x64: the paper topology
needs inputs of at least 47 pixels), given a random light ink colour on a random dark
background so that all three channels carry information, and written as a JPEG into
``<root>/source/{train,val}/<digit>/``. The records are then built by
:func:`~gluon_inception.data.prepare_dataset` exactly as for ImageNet: ``source/val`` plays the
official validation set (the ``test`` split) and ``val`` is carved out of ``source/train``.
"""
import logging
import os
import shutil

import cv2
import numpy as np

from ..fileio import atomic_open, file_lock
from .dataset import load_dataset
from .prepare import prepare_dataset

log = logging.getLogger(__name__)

DEMO_NAME = "gluon-inception-demo"
# Per class: images held out as the test split ("official validation set") and as the val split.
DEMO_TEST_PER_CLASS = 30
DEMO_VAL_PER_CLASS = 20
# A crop that suits the default 64-pixel demo records (training and evaluation).
DEMO_CROP = 56
_SOURCE_MARKER = ".complete"
_DEMO_LOCK = ".demo.lock"


def default_demo_root():
    """``$MXNET_HOME/datasets/gluon-inception-demo`` (``MXNET_HOME`` defaults to ``~/.mxnet``)."""
    home = os.environ.get("MXNET_HOME") or os.path.join(os.path.expanduser("~"), ".mxnet")
    return os.path.join(home, "datasets", DEMO_NAME)


def _write_source_images(source, image_size, seed):
    """Write the digits as coloured JPEGs into ``source/{train,val}/<digit>/`` (skipped when complete)."""
    from sklearn.datasets import load_digits

    marker = os.path.join(source, _SOURCE_MARKER)
    stamp = "image_size=%d seed=%d\n" % (image_size, seed)
    if os.path.isfile(marker):
        with open(marker, encoding="utf-8") as f:
            if f.read() == stamp:
                return
    if os.path.isdir(source):
        shutil.rmtree(source)  # incomplete or made with other settings: start clean
    digits = load_digits()
    images, targets = digits.images, digits.target  # (1797, 8, 8) in 0..16, (1797,)
    rng = np.random.RandomState(seed)
    held_out = set()
    for digit in range(10):
        members = np.flatnonzero(targets == digit)
        held_out.update(rng.choice(members, DEMO_TEST_PER_CLASS, replace=False).tolist())
    ink = 255 - rng.randint(0, 70, size=(len(images), 3))
    paper = rng.randint(0, 50, size=(len(images), 3))
    for i, (image, digit) in enumerate(zip(images, targets)):
        folder = os.path.join(source, "val" if i in held_out else "train", str(int(digit)))
        os.makedirs(folder, exist_ok=True)
        strength = cv2.resize((image / 16.0).astype(np.float32), (image_size, image_size),
                              interpolation=cv2.INTER_CUBIC)
        strength = np.clip(strength, 0.0, 1.0)[:, :, None]
        rgb = paper[i] + strength * (ink[i] - paper[i])
        bgr = np.ascontiguousarray(np.round(rgb[:, :, ::-1])).astype(np.uint8)
        # Plain writes: the marker below, written last, is what says the folder is complete.
        path = os.path.join(folder, "digit_%04d.jpg" % i)
        if not cv2.imwrite(path, bgr, [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise OSError("could not write demo image %s" % path)
    with atomic_open(marker, "w", encoding="utf-8") as f:
        f.write(stamp)


def prepare_demo(root=None, image_size=64, workers=None, seed=0):
    """Build the embedded demo dataset (no network needed) and return its folder.

    Parameters
    ----------
    root : str, optional
        Where to build it; default :func:`default_demo_root`.
    image_size : int
        Side of the square digit images and of the stored records (at least 32).
    workers : int, optional
        Encoding processes for im2rec.
    seed : int
        Seed for the colours and the split assignment.

    Returns
    -------
    str
        ``root`` (absolute), ready for :func:`~gluon_inception.data.load_dataset`: 10 classes
        ``"0"``..``"9"``, splits train 1,297 / val 200 / test 300. Train and evaluate on crops of
        ``DEMO_CROP`` (56) pixels for 64-pixel records, and without mirroring (digits are not
        mirror-symmetric): ``build_train_iter(..., data_shape=(3, 56, 56), rand_mirror=False)``.

    Examples
    --------
    >>> from gluon_inception.data import load_dataset, prepare_demo
    >>> info = load_dataset(prepare_demo())  # doctest: +SKIP
    >>> info.split_names  # doctest: +SKIP
    ['train', 'val', 'test']
    """
    root = os.path.abspath(os.fspath(root) if root is not None else default_demo_root())
    if int(image_size) < 32:
        raise ValueError("the demo images must be at least 32 pixels (the GoogLeNet topologies need that), got %d"
                         % image_size)
    if _demo_is_complete(root, image_size, seed):
        return root
    os.makedirs(root, exist_ok=True)
    # Several processes (e.g. every Horovod rank) may call this at once: one builds, the others
    # wait and then find the dataset complete.
    with file_lock(os.path.join(root, _DEMO_LOCK), what="the demo dataset in %s" % root):
        if _demo_is_complete(root, image_size, seed):
            return root
        source = os.path.join(root, "source")
        log.info("writing the demo digits as JPEGs into %s", source)
        _write_source_images(source, int(image_size), seed)
        prepare_dataset(
            os.path.join(source, "train"), root, val_dir=os.path.join(source, "val"),
            val_per_class=DEMO_VAL_PER_CLASS, image_size=image_size, workers=workers, seed=seed, stats_images=0,
            overwrite=True,
            extra_meta={"demo": {"name": "scikit-learn digits (UCI optical recognition of handwritten digits)",
                                 "seed": seed, "suggested_crop": DEMO_CROP * int(image_size) // 64,
                                 "mirror": False}},
        )
    return root


def demo_banner(info):
    """A framed notice for logs that ``info`` (the demo dataset) is not ImageNet."""
    bar = "=" * 78
    return "\n".join([
        bar,
        "  DEMO DATA: sklearn digits (UCI handwritten digits 0-9, 8x8 pixels scaled to %dx%d colour"
        % (info.image_size, info.image_size),
        "  JPEGs), NOT ImageNet. %d classes; %s." % (info.num_classes, info.counts()),
        "  For ImageNet: gluon-inception prepare ... then --data DIR (see --help).",
        bar,
    ])  # fmt: skip


def _demo_is_complete(root, image_size, seed):
    try:
        info = load_dataset(root)
    except (OSError, ValueError):
        return False
    return info.image_size == int(image_size) and info.meta.get("demo", {}).get("seed") == seed
