"""Training and evaluation pipelines on ``mx.io.ImageRecordIter``, sharded evenly over Horovod ranks.

Horovod has no join for MXNet, so ``len(it)`` is computed from the shard sizes and is the same
on every rank (train: full batches of the smallest shard; val: enough batches for the largest
shard, padded). The record files are checked in Python first (:mod:`.records`), so a missing or
truncated file is a clear error rather than a crash inside the C++ iterator. Training reads a
shard through one-thread streams, one window at a time (see :func:`build_train_iter`).
"""
import logging
import math
import os

import numpy as np

from .._compat import mx
from ..errors import UsageError
from .dataset import Split, dataset_for_record_file
from .device_augment import DeviceAugment
from .prepare import default_workers
from .records import RecordFileError, check_record_file, default_index_path

log = logging.getLogger(__name__)

PRESETS = ("inception", "chapter")

# Fraction of the resized image that the centre crop keeps (224 of 256, as for ImageNet).
CENTER_CROP_FRACTION = 0.875

# ImageRecordIter arguments whose work build_train_iter(on_device=True) leaves to DeviceAugment.
DEVICE_JITTER = ("brightness", "contrast", "saturation", "pca_noise")

# Batches per window: a resume decodes fewer than this many batches of each stream again (the
# streams in parallel).
WINDOW_BATCHES = 16


def shard_sizes(count, parts):
    """Records per shard when ``ImageRecordIter`` splits ``count`` indexed records into ``parts``.

    With an ``.idx`` MXNet gives every part ``ceil(count / parts)`` records and the last part the
    rest (dmlc ``IndexedRecordIOSplitter``); this mirrors that rule.
    """
    step = (count + parts - 1) // parts
    return [max(0, min(count, (r + 1) * step) - r * step) for r in range(parts)]


def split_even(count, parts):
    """``count`` cut into ``parts`` integers that differ by at most one, the larger ones first."""
    return [count // parts + (j < count % parts) for j in range(parts)]


def stream_windows(first, count, steps, batch_size, streams, window_batches=WINDOW_BATCHES):
    """How a rank reads its shard of ``count`` records starting at record ``first`` in ``steps`` batches.

    Stream ``j`` gives batches ``j``, ``j + streams``, ... from its own contiguous block of the
    shard: as many records as those batches need plus its share of the records left over, which
    each epoch leaves out at random from the stream's last window.

    Returns
    -------
    list of lists of (first record, records, batches)
        Per stream, its windows in record order: ``window_batches`` batches each, the last one the rest.
    """
    batches, spare = split_even(steps, streams), split_even(count - steps * batch_size, streams)
    plan = []
    for j in range(streams):
        end, windows, left = first + batches[j] * batch_size + spare[j], [], batches[j]
        while left:
            take = min(window_batches, left)
            records = take * batch_size if left > take else end - first
            windows.append((first, records, take))
            first, left = first + records, left - take
        plan.append(windows)
        first = end
    return plan


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
    local = max(1, getattr(dist, "local_size", 1) or 1)
    return max(1, default_workers() // local)


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


def _normalisation(kwargs, mean, std, preset, dataset, what):
    """Check ``mean``/``std`` (default: the dataset's; std 1 for the chapter preset), put them in ``kwargs``."""
    if preset == "chapter" and std is None:
        std = (1.0, 1.0, 1.0)
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
    kwargs.update({"mean_r": mean[0], "mean_g": mean[1], "mean_b": mean[2],
                   "std_r": std[0], "std_g": std[1], "std_b": std[2]})
    return mean, std


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
    streams : int
        Decoding streams (one ``ImageRecordIter`` with one thread each, taking turns batch by batch)
        of a training iterator; 1 for evaluation.
    device_augment : DeviceAugment or None
        Set when the batches are uint8 (``build_train_iter(..., on_device=True)``): the block that
        turns them into network input on the training device (jitter, cast, mean/std).
    """

    def __init__(self, rec, idx, batch_size, data_shape, num_batches, shard_count, total_count, train, kwargs,
                 plan=None, offsets=None, seed=()):
        self.rec, self.idx, self.batch_size, self.data_shape = rec, idx, batch_size, data_shape
        self.shard_count, self.total_count, self.train = shard_count, total_count, train
        self.mean = (kwargs["mean_r"], kwargs["mean_g"], kwargs["mean_b"])
        self.std = (kwargs["std_r"], kwargs["std_g"], kwargs["std_b"])
        self._num_batches = num_batches
        self._real_batches = min(num_batches, math.ceil(shard_count / batch_size))
        self.num_samples = num_batches * batch_size if train else shard_count
        self._kwargs = kwargs
        self.dtype = np.dtype(kwargs.get("dtype") or "float32")
        self.device_augment = None
        self._position = 0
        self._last_data = None
        self._iter = None if plan else mx.io.ImageRecordIter(**kwargs)
        self._plan, self.streams = plan, len(plan) if plan else 1
        self._offsets, self._seed, self._epoch = offsets, [int(v) & 0xFFFFFFFF for v in seed], 0
        self._start_epoch()

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

    def _start_epoch(self):
        """Training: every stream's windows in this epoch's order, each with the seed of its shuffle."""
        if self._plan is None:
            return
        # per stream: (ImageRecordIter of its window, batches left in it), and the same for its next window
        self._open, self._ahead = [None] * self.streams, [None] * self.streams
        self._windows = []
        for j, windows in enumerate(self._plan):
            rng = np.random.RandomState(self._seed + [self._epoch, j])
            order, seeds = rng.permutation(len(windows)), rng.randint(0, 1 << 30, size=len(windows))
            self._windows.append([windows[i] + (int(seeds[i]),) for i in order])

    def reset(self):
        """Start the next epoch (a new shuffle for training)."""
        if self._position:
            if self._iter is not None:
                self._iter.reset()
            self._epoch += 1
            self._start_epoch()
        self._position = 0
        self._last_data = None

    def skip(self, steps):
        """Move past the first ``steps`` batches of a training epoch not begun yet, as if they had been read.

        Each stream opens the window that holds its next batch and decodes only the batches of that
        window before it (fewer than :data:`WINDOW_BATCHES`); what follows is exactly what iterating
        on would have given (same records, crops and flips).
        """
        if self._plan is None or self._position or not 0 <= steps <= self._num_batches:
            raise ValueError("skip(%d) needs a training iterator at the start of an epoch of %d batches"
                             % (steps, self._num_batches))
        for j in range(self.streams):
            # stream j gives batches j, j + k, ...: those before `steps` are done
            done, windows = max(0, (steps - j + self.streams - 1) // self.streams), self._windows[j]
            while windows and windows[0][2] <= done:
                done -= windows.pop(0)[2]
            for _ in range(done):
                self._stream_batch(j)
        self._position = steps

    def _open_window(self, j):
        """An ImageRecordIter over stream ``j``'s next window, and the window's batches (None: no window left)."""
        if not self._windows[j]:
            return None
        first, records, batches, seed = self._windows[j].pop(0)
        ends = self._offsets[first:first + records]
        parts = 1
        if first + records < len(self._offsets):
            # MXNet sizes a record by the next offset in the index: the window's end, repeated so
            # that the window is the first of two equal parts and its end is never read as a record.
            ends = ends + [self._offsets[first + records]] * records
            parts = 2
        fd = os.memfd_create("window.idx")  # gone with the process, whatever ends it
        try:
            with open(fd, "w", closefd=False) as f:
                f.writelines("%d\t%d\n" % (i, offset) for i, offset in enumerate(ends))
            it = mx.io.ImageRecordIter(**dict(
                self._kwargs, path_imgidx="/proc/self/fd/%d" % fd, num_parts=parts, part_index=0, shuffle=True,
                seed=seed, batch_size=self.batch_size, preprocess_threads=1))  # fmt: skip
        finally:
            os.close(fd)  # MXNet read the index while building the iterator
        return it, batches

    def _stream_batch(self, j):
        """Stream ``j``'s next batch. The next window is opened when three batches of the current one are
        left (whose thread, up to 16 batches ahead, has usually finished it), so that its first batch is
        decoded by the time it is needed."""
        if self._open[j] is None or self._open[j][1] == 0:
            self._open[j] = None  # the finished window's iterator and its thread go first
            self._open[j], self._ahead[j] = self._ahead[j] or self._open_window(j), None
        it, left = self._open[j]
        self._open[j] = (it, left - 1)
        if left <= 3 and self._ahead[j] is None:
            self._ahead[j] = self._open_window(j)
        try:
            return it.next()
        except StopIteration:
            raise RecordFileError(self.rec, "ended before the records its index names: the file changed or is "
                                            "damaged") from None

    def __iter__(self):
        if self._position >= self._num_batches:
            self.reset()
        return self

    def __next__(self):
        if self._position >= self._num_batches:
            raise StopIteration
        self._position += 1
        if self._plan is not None:
            batch = self._stream_batch((self._position - 1) % self.streams)
            return mx.io.DataBatch(data=batch.data, label=batch.label, pad=0, index=None)
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
        return "RecordBatches(%r, %s, batches=%d, samples=%d of %d, streams=%d)" % (
            self.rec, "train" if self.train else "eval", self._num_batches, self.num_samples, self.total_count,
            self.streams)


def _common(split_or_rec, batch_size, data_shape, dist, num_threads, what):
    name, rec, idx, expected, dataset = _resolve(split_or_rec)
    batch_size = int(batch_size)
    if batch_size < 1:
        raise UsageError("batch_size must be positive, got %d" % batch_size)
    shape = tuple(int(v) for v in data_shape)
    if len(shape) != 3 or shape[0] != 3 or min(shape) < 1:
        raise UsageError("data_shape must be (3, height, width), got %r" % (data_shape,))
    info = check_record_file(rec, idx, expected_count=expected)
    rank, size = (dist.rank, dist.size) if dist is not None else (0, 1)
    sizes = shard_sizes(info.count, size)
    if min(sizes) == 0:
        raise UsageError(
            "%s: the %s split has %d records, too few to give each of %d ranks a shard" % (what, name, info.count, size)
        )
    threads = int(num_threads) if num_threads else threads_per_rank(dist)
    kwargs = {
        "path_imgrec": info.rec, "path_imgidx": info.idx, "data_shape": shape, "batch_size": batch_size,
        "num_parts": size, "part_index": rank, "round_batch": False, "preprocess_threads": threads,
        "verbose": False,
    }
    return info, dataset, sizes, rank, kwargs


def build_train_iter(split_or_rec, batch_size, data_shape=(3, 224, 224), preset="inception", mean=None, std=None,
                     dist=None, seed=0, num_threads=None, on_device=False, window_batches=WINDOW_BATCHES,
                     **overrides):
    """A shuffled, augmented training iterator over this rank's shard, decoded by ``num_threads`` streams.

    Every rank runs ``len(it)`` = (records in the smallest shard) // ``batch_size`` full batches
    per epoch. Stream ``j`` of ``k`` (an ``ImageRecordIter`` with one decoding thread) reads the
    ``j``-th contiguous block of the shard, one window of ``window_batches`` batches at a time in
    an order drawn each epoch, shuffled within the window, and gives batches ``j``, ``j + k``, ...
    The epoch's records, order, crops and flips depend only on ``seed``, the rank, the number of
    ranks, ``k``, ``batch_size`` and ``window_batches``, so :meth:`RecordBatches.skip` resumes
    exactly. A batch's records come from one window of neighbouring records, so the file should
    hold them in random order, as ``prepare_dataset`` writes a training split.

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
        Shuffle seed (mixed with the rank, the epoch count of this iterator and the stream).
        Crops and flips come from each window's decoding thread, whose generator MXNet seeds with
        a constant: they follow the record's position in its window, and the shuffle decides which
        image is at that position.
    num_threads : int, optional
        Decoding streams ``k`` (threads); default: the cores available to this rank; at most
        ``len(it)``. Each holds up to about 20 batches in MXNet's prefetch queue.
    on_device : bool
        Hand over uint8 batches (decoded, cropped, mirrored) and leave the colour jitter, PCA
        lighting, cast and mean/std to ``it.device_augment``
        (:class:`~gluon_inception.data.device_augment.DeviceAugment`), to be run on the training
        device as part of the step: about 57 % of the float pipeline's CPU time per image.
    window_batches : int
        Batches per window (see :data:`WINDOW_BATCHES`): a resume decodes fewer than this many
        again; records of a window meet within this many steps of an epoch.
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
    info, dataset, sizes, rank, kwargs = _common(split_or_rec, batch_size, data_shape, dist, num_threads,
                                                 "build_train_iter")
    aug = augmentation(preset)
    mean, std = _normalisation(kwargs, mean, std, preset, dataset, "build_train_iter")
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
    # No seed_aug: with it MXNet 1.9.1 gives every batch the same crops, flips and jitters.
    kwargs.update(aug)
    kwargs.update(overrides)
    augment = None
    if on_device:
        jitter = {key: kwargs.pop(key) for key in DEVICE_JITTER if key in kwargs}
        augment = DeviceAugment(mean, std, **jitter)
        kwargs["dtype"] = "uint8"
    if int(window_batches) < 1:
        raise UsageError("window_batches must be positive, got %r" % (window_batches,))
    streams = min(kwargs.pop("preprocess_threads"), num_batches)
    for key in ("path_imgidx", "num_parts", "part_index", "batch_size"):  # set per window
        kwargs.pop(key)
    plan = stream_windows(sum(sizes[:rank]), sizes[rank], num_batches, int(batch_size), streams, int(window_batches))
    it = RecordBatches(info.rec, info.idx, int(batch_size), kwargs["data_shape"], num_batches, sizes[rank],
                       info.count, True, kwargs, plan=plan, offsets=info.offsets, seed=(seed, rank))
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
    info, dataset, sizes, rank, kwargs = _common(split_or_rec, batch_size, data_shape, dist, num_threads,
                                                 "build_val_iter")
    if preset is not None and preset not in PRESETS:
        raise UsageError("unknown preset %r; choose one of %s" % (preset, ", ".join(PRESETS)))
    _normalisation(kwargs, mean, std, preset, dataset, "build_val_iter")
    crop = max(kwargs["data_shape"][1:])
    if resize is None:
        resize = int(round(crop / CENTER_CROP_FRACTION))
    if int(resize) < crop:
        raise UsageError("resize=%d is smaller than the crop %d" % (resize, crop))
    num_batches = math.ceil(max(sizes) / int(batch_size))
    kwargs.update({"resize": int(resize), "shuffle": False})
    kwargs.update(overrides)
    it = RecordBatches(info.rec, info.idx, int(batch_size), kwargs["data_shape"], num_batches, sizes[rank],
                       info.count, False, kwargs)
    log.debug("built %r", it)
    return it
