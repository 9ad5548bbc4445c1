"""Rank-1 / rank-5 accuracy and cross-entropy of a network on a record file, with 1 or 10 crops per image,
sharded over Horovod ranks (:doc:`/tutorials/evaluate`)."""
import logging
import math
import os
import time
from dataclasses import asdict, dataclass

from .._compat import mx, np
from ..data import build_val_iter, check_record_file, shard_sizes
from ..data.records import read_image_record
from ..errors import UsageError
from ..fileio import write_json
from .images import decode_image
from .metrics import MetricSums, batch_stats, topk_k

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
        Rank-1 and rank-k accuracy in [0, 1], k = :attr:`k`.
    cross_entropy : float
        Mean negative log-probability of the true class.
    seconds : float
        Wall time of this rank's evaluation.
    k : int
        The k of :attr:`top5`: 5, or the number of classes when there are fewer.
    """

    crops: int
    count: int
    top1: float
    top5: float
    cross_entropy: float
    seconds: float = 0.0
    k: int = 5

    def to_dict(self):
        """A JSON-ready dict."""
        return asdict(self)


def evaluate_batches(net, batches, ctx=None, dist=None, crops=1, name="eval"):
    """Rank-1/rank-5/cross-entropy of ``net`` over batches: the one evaluation loop.

    ``gluon-inception evaluate`` and training's validation both come here, so they count the
    same way (:func:`gluon_inception.deploy.metrics.batch_stats`, ties included). Nothing waits
    for the device until the end, when the sums are allreduced once.

    Parameters
    ----------
    net : callable
        NCHW float32 NDArray of normalised images -> logits ``(N, classes)`` (or a tuple whose
        first item they are).
    batches : iterable
        ``mx.io.DataBatch`` objects (``data[0]``, ``label[0]``, ``pad``), e.g. from
        :func:`gluon_inception.data.build_val_iter`; with ``crops > 1`` each image's crops are
        consecutive rows of ``data[0]`` and ``label[0]`` holds one label per image.
    ctx : mxnet.Context, optional
    dist : gluon_inception.dist.Dist, optional
        Ranks to sum across; ``None`` is a single process.
    crops : int, default 1
        Crops per image; their softmax is averaged.
    name : str
        Name of the allreduce (the same on every rank).

    Returns
    -------
    EvalResult
    """
    ctx = ctx or mx.cpu()
    start = time.perf_counter()
    total, classes = mx.nd.zeros((5,), ctx=ctx), 0
    for batch in batches:
        logits = net(batch.data[0].as_in_context(ctx))
        logits = (logits[0] if isinstance(logits, (tuple, list)) else logits).astype("float32")
        labels, pad, classes = batch.label[0].as_in_context(ctx), batch.pad or 0, logits.shape[1]
        log_probs = mx.nd.log_softmax(logits)
        scores = logits  # rank by the logits: a float32 softmax could round close ones into a tie
        if crops > 1:  # the log of each image's probabilities averaged over its crops
            log_probs = log_probs.reshape((-1, crops, classes))
            top = log_probs.max(axis=1, keepdims=True)
            log_probs = top + mx.nd.log(mx.nd.exp(log_probs - top).mean(axis=1, keepdims=True))
            log_probs = scores = log_probs.reshape((-1, classes))
        n = labels.shape[0] - pad
        bad = ((labels[:n] < 0) + (labels[:n] >= classes)).sum() if n > 0 else mx.nd.zeros((1,), ctx=ctx)
        stats = batch_stats(-mx.nd.pick(log_probs, labels, axis=1), scores, labels, pad)
        total += mx.nd.concat(stats, bad.reshape((1,)), dim=0)
    totals = total.asnumpy().astype(np.float64)
    totals = totals if dist is None else dist.allreduce_sum(totals, name=name)
    if totals[4]:
        raise UsageError(
            "%d labels lie outside the network's %d classes: the record file and the model do not belong "
            "together" % (totals[4], classes)
        )
    sums = MetricSums()
    sums.add(totals[:4])
    if sums.samples == 0:
        raise UsageError("no images were evaluated")
    s = sums.summary()
    return EvalResult(crops, s["samples"], s["top1"], s["top5"], s["loss"], time.perf_counter() - start,
                      k=topk_k(classes))


def evaluate_center_crop(net, split_or_rec, preprocessing, batch_size=32, dist=None, ctx=None, num_threads=None):
    """Rank-1/rank-5/cross-entropy with one centre crop per image (the shorter side resized first).

    Parameters
    ----------
    net, split_or_rec, preprocessing, batch_size, dist, ctx, num_threads
        As for :func:`evaluate`.

    Returns
    -------
    EvalResult
    """
    it = build_val_iter(split_or_rec, batch_size, preprocessing=preprocessing, dist=dist, num_threads=num_threads)
    return evaluate_batches(net, it, ctx, dist, crops=1, name="eval_1crop")


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
            raise UsageError(
                "%s holds %d records, too few to give each of %d ranks a shard" % (rec, self.info.count, size)
            )
        begin = sum(sizes[:rank])
        self.offsets = self.info.offsets[begin : begin + sizes[rank]]

    def __len__(self):
        return math.ceil(len(self.offsets) / self.batch_size)

    def __iter__(self):
        with open(self.info.rec, "rb") as f:
            for first in range(0, len(self.offsets), self.batch_size):
                crops, labels = [], []
                for offset in self.offsets[first : first + self.batch_size]:
                    label, data = read_image_record(f, offset)
                    image = decode_image(data, name="record at byte %d of %s" % (offset, self.info.rec))
                    crops.append(self.preprocessing.ten_crop(image))
                    labels.append(int(label[0] if isinstance(label, (list, tuple)) else label))
                stacked = np.concatenate(crops).astype(np.float32).transpose(0, 3, 1, 2)
                yield self.preprocessing.normalize(stacked), np.asarray(labels, dtype=np.int64)


def evaluate_ten_crop(net, rec, preprocessing, batch_size=8, dist=None, ctx=None):
    """Rank-1/rank-5/cross-entropy with the softmax averaged over 10 crops per image: the four corners
    and the centre of the resized image, and the same five mirrored.

    Parameters
    ----------
    net, preprocessing, dist, ctx
        As for :func:`evaluate`.
    rec : Split or str
        As ``split_or_rec`` for :func:`evaluate`.
    batch_size : int, default 8
        Images per forward pass (each contributes 10 crops).

    Returns
    -------
    EvalResult
    """
    reader = TenCropReader(getattr(rec, "rec", rec), preprocessing, batch_size, dist, getattr(rec, "idx", None))
    batches = (mx.io.DataBatch([mx.nd.array(crops)], [mx.nd.array(labels)], pad=0) for crops, labels in reader)
    return evaluate_batches(net, batches, ctx, dist, crops=10, name="eval_10crop")


def evaluate(net, split_or_rec, preprocessing, crops=(1,), batch_size=32, dist=None, ctx=None, num_threads=None):
    """Evaluate with each requested crop mode; returns ``{crops: EvalResult}``.

    Parameters
    ----------
    net : callable
        Maps an NCHW float32 NDArray of normalised images to logits ``(N, classes)``.
    split_or_rec : Split or str
        A split of a prepared dataset or the path of a ``.rec`` (its ``.idx`` beside it).
    preprocessing : gluon_inception.preprocessing.Preprocessing
        Resize, crop and mean/std, as the weights expect.
    crops : sequence of {1, 10}, default (1,)
        1: the centre crop (:func:`evaluate_center_crop`); 10: :func:`evaluate_ten_crop`.
    batch_size : int, default 32
        Images per forward pass on each rank for 1 crop; 10-crop passes take ``max(1, batch_size // 10)``
        images (so about the same number of crops).
    dist : gluon_inception.dist.Dist, optional
        Ranks to shard over and sum across; ``None`` is a single process.
    ctx : mxnet.Context, optional
        Where the network runs (default: the CPU).
    num_threads : int, optional
        Decoding threads (1 crop).

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
            raise UsageError("crops must be 1 or 10, got %r" % (mode,))
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
    k = min(r.k for r in results.values()) if results else 5
    lines.append("%-8s %8s %9s %9s %10s %8s" % ("crops", "images", "rank-1", "rank-%d" % k, "cross-ent", "seconds"))
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
