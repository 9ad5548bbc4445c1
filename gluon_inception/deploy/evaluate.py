"""Rank-1 / rank-5 accuracy and cross-entropy of a network on a record file.

Two ways to look at each image, as in the book chapter and the GoogLeNet paper:

- **1 crop**: the shorter side resized, the centre crop (``build_val_iter``).
- **10 crops** (oversampling): the four corner crops and the centre crop of the resized image,
  and the same five mirrored; the softmax is averaged over the ten. ``ImageRecordIter`` cannot
  cut ten crops out of one image, so these records are read here directly.

Under Horovod every rank evaluates its own shard of the records; the counts (images, rank-1
hits, rank-5 hits, summed cross-entropy) are summed with ``allreduce``, so every rank ends with
the totals a single process would compute.
"""
import logging
import math
import os
import time
from dataclasses import asdict, dataclass

from .._compat import mx, np
from ..data import build_val_iter, check_record_file, shard_sizes
from ..data.records import read_image_record
from ..fileio import write_json
from .images import decode_image

log = logging.getLogger(__name__)

CROP_MODES = (1, 10)


@dataclass
class EvalResult:
    """Accuracy of one evaluation.

    Attributes
    ----------
    crops : int
        1 (centre crop) or 10 (oversampling).
    count : int
        Images evaluated (over all ranks).
    top1, top5 : float
        Rank-1 and rank-5 accuracy in [0, 1] (rank-k with k = the number of classes when
        there are fewer than 5).
    cross_entropy : float
        Mean negative log-probability of the true class.
    seconds : float
        Wall time of this rank's evaluation.
    """

    crops: int
    count: int
    top1: float
    top5: float
    cross_entropy: float
    seconds: float = 0.0

    def to_dict(self):
        """A JSON-ready dict."""
        return asdict(self)


class _Counts:
    """Running sums: images, rank-1 hits, rank-5 hits, summed cross-entropy."""

    def __init__(self):
        self.values = np.zeros(4, dtype=np.float64)

    def add(self, probs, labels, log_probs=None):
        """Add a batch of class probabilities (N, C) and integer labels (N,)."""
        probs = np.asarray(probs, dtype=np.float64)
        labels = np.asarray(labels).astype(np.int64)
        if probs.shape[0] == 0:
            return
        classes = probs.shape[1]
        if labels.min() < 0 or labels.max() >= classes:
            raise ValueError(
                "a label (%d..%d) lies outside the network's %d classes: the record file and the model do "
                "not belong together" % (labels.min(), labels.max(), classes)
            )
        k = min(5, classes)
        true_p = probs[np.arange(len(labels)), labels]
        # The true class is in the top k when fewer than k classes have a strictly higher probability.
        rank = (probs > true_p[:, None]).sum(axis=1)
        if log_probs is None:
            log_true = np.log(np.maximum(true_p, 1e-300))
        else:
            log_true = np.asarray(log_probs, dtype=np.float64)[np.arange(len(labels)), labels]
        self.values += [len(labels), (rank < 1).sum(), (rank < k).sum(), -log_true.sum()]

    def result(self, crops, seconds, dist=None, name="eval"):
        totals = self.values if dist is None else dist.allreduce_sum(self.values, name=name)
        n = totals[0]
        if n == 0:
            raise ValueError("no images were evaluated")
        return EvalResult(
            crops=crops,
            count=int(round(n)),
            top1=float(totals[1] / n),
            top5=float(totals[2] / n),
            cross_entropy=float(totals[3] / n),
            seconds=seconds,
        )


def log_softmax(logits):
    """Row-wise log-softmax of a 2-D array, computed stably in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softmax(logits):
    """Row-wise softmax of a 2-D array, computed stably in float64."""
    return np.exp(log_softmax(logits))


def evaluate_center_crop(net, split_or_rec, preprocessing, batch_size=32, dist=None, ctx=None, num_threads=None):
    """Rank-1/rank-5/cross-entropy with one centre crop per image.

    Parameters
    ----------
    net : callable
        Maps an NCHW float32 NDArray of normalised images to logits ``(N, classes)``.
    split_or_rec : Split or str
        A split of a prepared dataset or the path of a ``.rec`` (its ``.idx`` beside it).
    preprocessing : gluon_inception.preprocessing.Preprocessing
        Resize, crop and mean/std, as the weights expect.
    batch_size : int, default 32
        Images per forward pass on each rank.
    dist : gluon_inception.dist.Dist, optional
        Ranks to shard over and sum across; ``None`` is a single process.
    ctx : mxnet.Context, optional
        Where the network runs (default: the CPU).
    num_threads : int, optional
        Decoding threads.

    Returns
    -------
    EvalResult
    """
    ctx = ctx or mx.cpu()
    start = time.perf_counter()
    it = build_val_iter(
        split_or_rec,
        batch_size,
        data_shape=preprocessing.data_shape,
        resize=preprocessing.resize,
        mean=preprocessing.mean,
        std=preprocessing.std,
        dist=dist,
        num_threads=num_threads,
        inter_method=preprocessing.interp,
    )
    counts = _Counts()
    for batch in it:
        real = batch.data[0].shape[0] - (batch.pad or 0)
        logits = net(batch.data[0].as_in_context(ctx)).asnumpy()[:real]
        if real == 0:
            continue
        log_probs = log_softmax(logits)
        counts.add(np.exp(log_probs), batch.label[0].asnumpy()[:real], log_probs=log_probs)
    return counts.result(1, time.perf_counter() - start, dist, name="eval_1crop")


class TenCropReader:
    """This rank's share of a record file, as ten normalised crops per image.

    Records are taken in file order and split into contiguous shards with the same rule as
    the validation iterator (:func:`gluon_inception.data.shard_sizes`).

    Parameters
    ----------
    rec : str
        The ``.rec`` file (its ``.idx`` beside it, or ``idx``).
    preprocessing : Preprocessing
    batch_size : int
        Images per yielded batch (each batch holds ``10 * images`` crops).
    dist : Dist, optional
    idx : str, optional

    Yields
    ------
    (numpy.ndarray, numpy.ndarray)
        Crops ``(10 * n, 3, crop, crop)`` float32, normalised, in image-major order (image 0's
        ten crops first), and the ``n`` labels.
    """

    def __init__(self, rec, preprocessing, batch_size=8, dist=None, idx=None):
        self.info = check_record_file(rec, idx)
        self.preprocessing = preprocessing
        self.batch_size = int(batch_size)
        rank, size = (dist.rank, dist.size) if dist is not None else (0, 1)
        sizes = shard_sizes(self.info.count, size)
        if min(sizes) == 0:
            raise ValueError(
                "%s holds %d records, too few to give each of %d ranks a shard" % (rec, self.info.count, size)
            )
        begin = sum(sizes[:rank])
        self.offsets = self.info.offsets[begin : begin + sizes[rank]]

    def __len__(self):
        return math.ceil(len(self.offsets) / self.batch_size)

    def _image(self, f, offset):
        label, data = read_image_record(f, offset)
        if isinstance(label, (list, tuple)):
            label = label[0]
        image = decode_image(data, name="record at byte %d of %s" % (offset, self.info.rec))
        return self.preprocessing.ten_crop(image), int(label)

    def __iter__(self):
        mean = np.asarray(self.preprocessing.mean, dtype=np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(self.preprocessing.std, dtype=np.float32).reshape(1, 3, 1, 1)
        with open(self.info.rec, "rb") as f:
            for first in range(0, len(self.offsets), self.batch_size):
                crops, labels = [], []
                for offset in self.offsets[first : first + self.batch_size]:
                    ten, label = self._image(f, offset)
                    crops.append(ten)
                    labels.append(label)
                stacked = np.concatenate(crops).astype(np.float32).transpose(0, 3, 1, 2)
                yield (stacked - mean) / std, np.asarray(labels, dtype=np.int64)


def evaluate_ten_crop(net, rec, preprocessing, batch_size=8, dist=None, ctx=None):
    """Rank-1/rank-5/cross-entropy with the softmax averaged over 10 crops per image.

    Parameters
    ----------
    net : callable
        Maps an NCHW float32 NDArray of normalised crops to logits.
    rec : Split or str
        A split of a prepared dataset or the path of a ``.rec``.
    preprocessing : Preprocessing
    batch_size : int, default 8
        Images per forward pass (each contributes 10 crops).
    dist : Dist, optional
    ctx : mxnet.Context, optional

    Returns
    -------
    EvalResult
    """
    ctx = ctx or mx.cpu()
    rec_path = getattr(rec, "rec", rec)
    idx = getattr(rec, "idx", None)
    start = time.perf_counter()
    counts = _Counts()
    for crops, labels in TenCropReader(rec_path, preprocessing, batch_size, dist=dist, idx=idx):
        logits = net(mx.nd.array(crops, ctx=ctx)).asnumpy()
        probs = softmax(logits).reshape(len(labels), 10, -1).mean(axis=1)
        counts.add(probs, labels)
    return counts.result(10, time.perf_counter() - start, dist, name="eval_10crop")


def evaluate(net, split_or_rec, preprocessing, crops=(1,), batch_size=32, dist=None, ctx=None, num_threads=None):
    """Evaluate with each requested crop mode; returns ``{crops: EvalResult}``.

    Parameters
    ----------
    net : callable
        NCHW normalised float32 NDArray -> logits.
    split_or_rec : Split or str
    preprocessing : Preprocessing
    crops : sequence of {1, 10}, default (1,)
    batch_size : int, default 32
        Images per forward pass for 1 crop; 10-crop passes take ``max(1, batch_size // 10)``
        images (so about the same number of crops).
    dist : Dist, optional
    ctx : mxnet.Context, optional
    num_threads : int, optional

    Returns
    -------
    dict
        ``{1: EvalResult, 10: EvalResult}`` for the modes asked for.

    Examples
    --------
    >>> from gluon_inception.preprocessing import Preprocessing
    >>> results = evaluate(net, "data/demo/test.rec", Preprocessing(crop_size=56), crops=(1, 10))  # doctest: +SKIP
    >>> results[1].top1, results[10].top1  # doctest: +SKIP
    (0.97, 0.98)
    """
    results = {}
    for mode in crops:
        if mode not in CROP_MODES:
            raise ValueError("crops must be 1 or 10, got %r" % (mode,))
        if mode == 1:
            results[1] = evaluate_center_crop(net, split_or_rec, preprocessing, batch_size, dist, ctx, num_threads)
        else:
            results[10] = evaluate_ten_crop(net, split_or_rec, preprocessing, max(1, batch_size // 10), dist, ctx)
    return results


def format_table(results, title=None):
    """The results as a fixed-width text table (one row per crop mode)."""
    lines = []
    if title:
        lines.append(title)
    lines.append("%-8s %8s %9s %9s %10s %8s" % ("crops", "images", "rank-1", "rank-5", "cross-ent", "seconds"))
    for mode in sorted(results):
        r = results[mode]
        lines.append(
            "%-8s %8d %8.2f%% %8.2f%% %10.4f %8.1f"
            % ("%d-crop" % mode, r.count, 100 * r.top1, 100 * r.top5, r.cross_entropy, r.seconds)
        )
    return "\n".join(lines)


def write_report(path, results, extra=None, dist=None):
    """Write the results as JSON atomically, on rank 0 only; returns the path (None elsewhere)."""

    if dist is not None and not dist.is_root:
        return None
    payload = dict(extra or {})
    payload["results"] = {"%d-crop" % mode: results[mode].to_dict() for mode in sorted(results)}
    write_json(os.fspath(path), payload)
    return path
