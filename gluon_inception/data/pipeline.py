"""Training and evaluation pipelines on ``mx.io.ImageRecordIter``, sharded evenly over Horovod ranks.

Why a wrapper around ``ImageRecordIter``:

- Horovod has no join for MXNet, so every rank must run the same number of batches. The
  iterator's own end-of-epoch handling cannot promise that (shards differ in size), and its
  ``round_batch`` mode starts the next epoch in the middle of the shard. So the number of batches
  is computed here from the shard sizes and stated explicitly: ``len(it)`` is the same on every
  rank (train: full batches of the smallest shard; val: enough batches for the largest shard,
  padded).
- The record files are checked in Python first (:mod:`.records`), so a missing or truncated file
  is a clear error rather than a crash inside the C++ iterator.
"""
import logging
import math
import os

import numpy as np

from .._compat import mx
from ..errors import UsageError
from .dataset import Split, dataset_for_record_file
from .device_augment import DeviceAugment
from .records import RecordFileError, check_record_file, default_index_path

log = logging.getLogger(__name__)

PRESETS = ("inception", "chapter")

# Fraction of the resized image that the centre crop keeps (224 of 256, as for ImageNet).
CENTER_CROP_FRACTION = 0.875

# ImageRecordIter arguments whose work build_train_iter(on_device=True) leaves to DeviceAugment.
DEVICE_JITTER = ("brightness", "contrast", "saturation", "pca_noise")


def shard_sizes(count, parts):
    """Records per shard when ``ImageRecordIter`` splits ``count`` indexed records into ``parts``.

    With an ``.idx`` MXNet gives every part ``ceil(count / parts)`` records and the last part the
    rest (dmlc ``IndexedRecordIOSplitter``); this mirrors that rule.
    """
    step = (count + parts - 1) // parts
    return [max(0, min(count, (r + 1) * step) - r * step) for r in range(parts)]


def augmentation(preset):
    """``ImageRecordIter`` keyword arguments of a training augmentation preset.

    Parameters
    ----------
    preset : {"inception", "chapter"}
        ``"chapter"``: the book chapter's random crop, mirror, rotation up to 15 degrees and shear
        up to 0.1 (with mean subtraction). ``"inception"``: random resized crop over 8-100% of the
        area with aspect ratio 3/4..4/3, mirror, brightness/contrast/saturation jitter 0.4 and PCA
        lighting noise 0.1 (with mean/std normalisation).

    Returns
    -------
    dict
    """
    if preset == "chapter":
        return {"rand_crop": True, "rand_mirror": True, "max_rotate_angle": 15, "max_shear_ratio": 0.1}
    if preset == "inception":
        return {
            "random_resized_crop": True, "min_random_area": 0.08, "max_random_area": 1.0,
            "min_aspect_ratio": 3.0 / 4.0, "max_aspect_ratio": 4.0 / 3.0,
            "rand_mirror": True, "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "pca_noise": 0.1,
        }
    raise UsageError("unknown augmentation preset %r; choose one of %s" % (preset, ", ".join(PRESETS)))


def threads_per_rank(dist=None):
    """Decoding threads for one rank: the cores this process may use divided by the ranks on the host."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    local = max(1, getattr(dist, "local_size", 1) or 1)
    return max(1, cores // local)


def _resolve(split_or_rec):
    """-> (name, rec, idx, expected count or None, DatasetInfo or None)."""
    if isinstance(split_or_rec, Split):
        return (split_or_rec.name, split_or_rec.rec, split_or_rec.idx, split_or_rec.count,
                dataset_for_record_file(split_or_rec.rec))
    if isinstance(split_or_rec, (str, os.PathLike)):
        rec = os.path.abspath(os.fspath(split_or_rec))
        if os.path.isdir(rec):
            raise RecordFileError(rec, "is a folder; pass a record file (.rec) or a split, e.g. "
                                       "load_dataset(folder).split('train')")
        return os.path.splitext(os.path.basename(rec))[0], rec, default_index_path(rec), None, \
            dataset_for_record_file(rec)
    raise TypeError("expected a Split (load_dataset(root).split(name)) or the path of a .rec file, got %r"
                    % (split_or_rec,))


def _normalisation(mean, std, dataset, what):
    if mean is None:
        if dataset is None:
            raise UsageError("%s: no dataset.json next to the record file, so pass mean=(r, g, b) (0-255 scale)"
                             % what)
        mean = dataset.mean
    if std is None:
        std = dataset.std if dataset is not None else (1.0, 1.0, 1.0)
    mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise UsageError("mean and std must be three RGB values with std > 0, got mean=%r std=%r" % (mean, std))
    return mean, std


def _check_shape(data_shape):
    shape = tuple(int(v) for v in data_shape)
    if len(shape) != 3 or shape[0] != 3 or min(shape) < 1:
        raise UsageError("data_shape must be (3, height, width), got %r" % (data_shape,))
    return shape


class RecordBatches:
    """An epoch-based iterator over one rank's shard of a record file, with a stated length.

    Built by :func:`build_train_iter` and :func:`build_val_iter`; not meant to be built directly.
    ``for batch in it`` yields ``mx.io.DataBatch`` objects (``data[0]``: (N, 3, H, W) float32,
    or uint8 when :attr:`device_augment` is set; ``label[0]``: (N,) float32 class ids, ``pad``:
    trailing rows to ignore). ``len(it)`` is the
    number of batches per epoch, identical on every rank. ``it.reset()`` starts the next epoch;
    iterating again after an epoch ran to its end starts the next one as well.

    As with any ``ImageRecordIter``, a batch's arrays are buffers that the iterator reuses a few
    batches later (after waiting for pending reads by the engine): use a batch, or copy what you
    keep of it, before fetching the next ones; ``list(it)`` does not keep an epoch's data.

    Attributes
    ----------
    rec : str
        The record file.
    batch_size : int
    num_samples : int
        Real (non-padding) samples this rank yields per epoch.
    shard_count : int
        Records in this rank's shard.
    total_count : int
        Records in the whole split.
    mean, std : tuple of float
        The normalisation applied (RGB, 0-255 scale).
    data_shape : tuple of int
    device_augment : DeviceAugment or None
        Set when the batches are uint8 (``build_train_iter(..., on_device=True)``): the block that
        turns them into network input on the training device (jitter, cast, mean/std).
    """

    def __init__(self, rec, idx, batch_size, data_shape, num_batches, shard_count, total_count, train, kwargs):
        self.rec, self.idx = rec, idx
        self.batch_size = batch_size
        self.data_shape = data_shape
        self.shard_count = shard_count
        self.total_count = total_count
        self.train = train
        self.mean = (kwargs["mean_r"], kwargs["mean_g"], kwargs["mean_b"])
        self.std = (kwargs["std_r"], kwargs["std_g"], kwargs["std_b"])
        self._num_batches = num_batches
        self._real_batches = min(num_batches, math.ceil(shard_count / batch_size))
        if train:
            self.num_samples = num_batches * batch_size
        else:
            self.num_samples = shard_count
        self._kwargs = kwargs
        self.dtype = np.dtype(kwargs.get("dtype") or "float32")
        self.device_augment = None
        self._iter = mx.io.ImageRecordIter(**kwargs)
        self._position = 0
        self._last_data = None

    def __len__(self):
        return self._num_batches

    @property
    def provide_data(self):
        """Shape description of ``data`` (as ``mx.io.DataIter.provide_data``)."""
        return [mx.io.DataDesc("data", (self.batch_size,) + self.data_shape, self.dtype)]

    @property
    def provide_label(self):
        """Shape description of ``label`` (as ``mx.io.DataIter.provide_label``)."""
        return [mx.io.DataDesc("softmax_label", (self.batch_size,), np.float32)]

    def reset(self):
        """Start the next epoch (a new shuffle for training)."""
        if self._position:
            self._iter.reset()
        self._position = 0
        self._last_data = None

    def __iter__(self):
        if self._position >= self._num_batches:
            self.reset()
        return self

    def __next__(self):
        if self._position >= self._num_batches:
            raise StopIteration
        self._position += 1
        if self._position > self._real_batches:
            # This rank's shard is used up but other ranks still have batches: an all-padding batch.
            return mx.io.DataBatch(data=[self._last_data[0]], label=[self._last_data[1]],
                                   pad=self.batch_size, index=None)
        try:
            batch = self._iter.next()
        except StopIteration:
            raise RecordFileError(
                self.rec, "ended after %d of the %d batches its index promises: the file changed or is "
                "damaged" % (self._position - 1, self._real_batches)) from None
        valid = min(self.batch_size, self.shard_count - (self._position - 1) * self.batch_size)
        data, label = batch.data[0], batch.label[0]
        if valid < self.batch_size:
            # ImageRecordIter(round_batch=False) leaves the tail rows of a short batch uninitialised;
            # fill them with the batch's first sample so no garbage reaches a network or a metric.
            data_np, label_np = data.asnumpy(), label.asnumpy()
            data_np[valid:] = data_np[0]
            label_np[valid:] = label_np[0]
            data, label = mx.nd.array(data_np, dtype=data_np.dtype), mx.nd.array(label_np, dtype=np.float32)
        if self._position == self._real_batches and self._real_batches < self._num_batches:
            self._last_data = (data.copy(), label.copy())
        return mx.io.DataBatch(data=[data], label=[label], pad=self.batch_size - valid, index=None)

    next = __next__

    def __repr__(self):
        return "RecordBatches(%r, %s, batches=%d, samples=%d of %d)" % (
            self.rec, "train" if self.train else "eval", self._num_batches, self.num_samples, self.total_count)


def _common(split_or_rec, batch_size, data_shape, dist, num_threads, what):
    name, rec, idx, expected, dataset = _resolve(split_or_rec)
    batch_size = int(batch_size)
    if batch_size < 1:
        raise UsageError("batch_size must be positive, got %d" % batch_size)
    data_shape = _check_shape(data_shape)
    info = check_record_file(rec, idx, expected_count=expected)
    rank, size = (dist.rank, dist.size) if dist is not None else (0, 1)
    sizes = shard_sizes(info.count, size)
    if min(sizes) == 0:
        raise UsageError(
            "%s: the %s split has %d records, too few to give each of %d ranks a shard" % (what, name, info.count, size)
        )
    threads = int(num_threads) if num_threads else threads_per_rank(dist)
    kwargs = {
        "path_imgrec": info.rec, "path_imgidx": info.idx, "data_shape": data_shape, "batch_size": batch_size,
        "num_parts": size, "part_index": rank, "round_batch": False, "preprocess_threads": threads,
        "verbose": False,
    }
    return name, info, dataset, sizes, rank, kwargs


def build_train_iter(split_or_rec, batch_size, data_shape=(3, 224, 224), preset="inception", mean=None, std=None,
                     dist=None, seed=0, num_threads=None, on_device=False, **overrides):
    """A shuffled, augmented training iterator over this rank's shard.

    Every rank runs ``len(it)`` = (records in the smallest shard) // ``batch_size`` full batches
    per epoch; each epoch reshuffles the shard and leaves out a different remainder.

    Parameters
    ----------
    split_or_rec : Split or str
        ``load_dataset(root).split("train")``, or the path of a ``.rec`` (its ``.idx`` beside it).
    batch_size : int
        Per-rank batch size.
    data_shape : tuple
        ``(3, height, width)`` of the network input.
    preset : {"inception", "chapter"}
        Augmentation, see :func:`augmentation`.
    mean, std : tuple of 3 floats, optional
        RGB normalisation on the 0-255 scale. Default: the dataset's statistics; the ``chapter``
        preset subtracts the mean only (std 1) unless ``std`` is given.
    dist : gluon_inception.dist.Dist, optional
        Rank and size to shard by (None: a single process reads everything).
    seed : int
        Shuffle seed (each rank offsets it by its rank). The iterator's crops and flips come from
        per-thread generators that MXNet seeds with constants: with one decoding thread they repeat
        exactly with the shuffle; with several, threads take records in the order they finish.
    num_threads : int, optional
        Decoding threads; default: the cores available to this rank.
    on_device : bool
        Hand over uint8 batches (decoded, cropped, mirrored) and leave the colour jitter, PCA
        lighting, cast and mean/std to ``it.device_augment``
        (:class:`~gluon_inception.data.device_augment.DeviceAugment`), to be run on the training
        device as part of the step: about 57 % of the float pipeline's CPU time per image.
    **overrides
        Any other ``mx.io.ImageRecordIter`` argument, e.g. ``rand_mirror=False`` for digits.

    Returns
    -------
    RecordBatches

    Raises
    ------
    RecordFileError
        The record file or its index is missing, empty, truncated or not RecordIO.
    ValueError
        A shard smaller than one batch, a bad preset or shape, or stored images smaller than the crop.

    Examples
    --------
    >>> from gluon_inception.data import load_dataset, build_train_iter
    >>> info = load_dataset("data/imagenet")  # doctest: +SKIP
    >>> it = build_train_iter(info.split("train"), 64, dist=dist.get())  # doctest: +SKIP
    >>> for batch in it:  # doctest: +SKIP
    ...     x, y = batch.data[0], batch.label[0]
    """
    name, info, dataset, sizes, rank, kwargs = _common(split_or_rec, batch_size, data_shape, dist, num_threads,
                                                       "build_train_iter")
    aug = augmentation(preset)
    if preset == "chapter" and std is None:
        std = (1.0, 1.0, 1.0)
    mean, std = _normalisation(mean, std, dataset, "build_train_iter")
    crop = max(kwargs["data_shape"][1:])
    if preset == "chapter" and dataset is not None and dataset.image_size < crop and "resize" not in overrides:
        raise UsageError(
            "the chapter preset crops %d pixels out of images stored at %d (shorter side): prepare the records "
            "with a larger image size or use a smaller data_shape" % (crop, dataset.image_size)
        )
    num_batches = min(sizes) // int(batch_size)
    if num_batches == 0:
        raise UsageError(
            "build_train_iter: the smallest shard of %s holds %d records, fewer than one batch of %d; use a "
            "smaller batch size or fewer ranks" % (info.rec, min(sizes), batch_size)
        )
    kwargs.update(aug)
    # No seed_aug: MXNet 1.9.1 re-seeds the augmentation generator with seed_aug + the record's
    # position in its batch, so every batch of the epoch would get the same batch_size crops, flips
    # and jitters. Without it each decoding thread draws from its own stream across the epoch.
    kwargs.update({"shuffle": True, "seed": int(seed) + rank,
                   "mean_r": mean[0], "mean_g": mean[1], "mean_b": mean[2],
                   "std_r": std[0], "std_g": std[1], "std_b": std[2]})
    kwargs.update(overrides)
    augment = None
    if on_device:
        jitter = {key: kwargs.pop(key) for key in DEVICE_JITTER if key in kwargs}
        augment = DeviceAugment(mean, std, **jitter)
        kwargs["dtype"] = "uint8"
    it = RecordBatches(info.rec, info.idx, int(batch_size), kwargs["data_shape"], num_batches, sizes[rank],
                       info.count, True, kwargs)
    it.device_augment = augment
    log.debug("built %r", it)
    return it


def build_val_iter(split_or_rec, batch_size, data_shape=(3, 224, 224), resize=None, mean=None, std=None, dist=None,
                   num_threads=None, preset=None, preprocessing=None, **overrides):
    """An evaluation iterator: shorter side resized, centre crop, no shuffle, every sample exactly once.

    All ranks run ``len(it)`` = ceil(records in the largest shard / ``batch_size``) batches; a
    rank's last real batch and any batch after it are padded, with ``batch.pad`` saying how many
    trailing rows to ignore, so that across ranks every record is counted exactly once.

    Parameters
    ----------
    split_or_rec : Split or str
        ``load_dataset(root).split("val")`` (or ``"test"``), or the path of a ``.rec``.
    batch_size : int
        Per-rank batch size.
    data_shape : tuple
        ``(3, height, width)`` of the network input (the centre crop).
    resize : int, optional
        Shorter side to resize to before cropping; default ``round(crop / 0.875)`` (256 for 224).
    mean, std : tuple of 3 floats, optional
        RGB normalisation on the 0-255 scale; default: the dataset's statistics (std 1 with
        ``preset="chapter"``). Use the same values as for training.
    dist : gluon_inception.dist.Dist, optional
        Rank and size to shard by.
    num_threads : int, optional
        Decoding threads; default: the cores available to this rank.
    preset : {None, "inception", "chapter"}
        Only selects the default normalisation to match a training preset.
    preprocessing : gluon_inception.preprocessing.Preprocessing, optional
        Gives ``data_shape``, ``resize``, ``mean``, ``std`` and the interpolation instead.
    **overrides
        Any other ``mx.io.ImageRecordIter`` argument.

    Returns
    -------
    RecordBatches

    Raises
    ------
    RecordFileError
        The record file or its index is missing, empty, truncated or not RecordIO.

    Examples
    --------
    >>> it = build_val_iter(info.split("val"), 100, dist=dist.get())  # doctest: +SKIP
    >>> for batch in it:  # doctest: +SKIP
    ...     real = batch.data[0].shape[0] - batch.pad
    """
    if preprocessing is not None:
        data_shape, resize, mean, std = (preprocessing.data_shape, preprocessing.resize, preprocessing.mean,
                                         preprocessing.std)
        overrides.setdefault("inter_method", preprocessing.interp)
    name, info, dataset, sizes, rank, kwargs = _common(split_or_rec, batch_size, data_shape, dist, num_threads,
                                                       "build_val_iter")
    if preset is not None and preset not in PRESETS:
        raise UsageError("unknown preset %r; choose one of %s" % (preset, ", ".join(PRESETS)))
    if preset == "chapter" and std is None:
        std = (1.0, 1.0, 1.0)
    mean, std = _normalisation(mean, std, dataset, "build_val_iter")
    crop = max(kwargs["data_shape"][1:])
    if resize is None:
        resize = int(round(crop / CENTER_CROP_FRACTION))
    if int(resize) < crop:
        raise UsageError("resize=%d is smaller than the crop %d" % (resize, crop))
    num_batches = math.ceil(max(sizes) / int(batch_size))
    kwargs.update({"resize": int(resize), "shuffle": False,
                   "mean_r": mean[0], "mean_g": mean[1], "mean_b": mean[2],
                   "std_r": std[0], "std_g": std[1], "std_b": std[2]})
    kwargs.update(overrides)
    it = RecordBatches(info.rec, info.idx, int(batch_size), kwargs["data_shape"], num_batches, sizes[rank],
                       info.count, False, kwargs)
    log.debug("built %r", it)
    return it
