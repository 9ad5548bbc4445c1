"""Loss and top-1/top-5 accuracy as sums and counts, so that ranks can add them up exactly.

Training and ``gluon-inception evaluate`` count top-k hits with :func:`batch_stats` only (on the
device, without waiting); :class:`MetricSums` adds the vectors on the host once summed over ranks.

Ties: when the true class scores exactly as high as other classes, it counts as the expected hit
under a random order of the tied classes: with ``g`` classes scoring higher and ``e`` scoring
the same, a top-k hit is worth ``clip((k - g) / (e + 1), 0, 1)``. A network whose scores are all
equal thus gets the chance rate ``k / classes``, not 100% or 0%. A NaN score of the true class is
never a hit.
"""

import numpy as np

from .._compat import mx

#: Order of the values in a stats vector.
FIELDS = ("loss", "top1", "top5", "samples")


def batch_stats(loss, scores, labels, pad=0):
    """``[loss sum, top-1 hits, top-5 hits, samples]`` of one batch, as a float32 NDArray of shape (4,).

    Parameters
    ----------
    loss : NDArray, shape (N,)
        Per-sample loss.
    scores : NDArray, shape (N, C)
        Logits or (log-)probabilities: only their order matters. Top-5 becomes top-C when there
        are fewer than 5 classes.
    labels : NDArray, shape (N,)
        Class ids (the un-mixed, dominant label under mixup).
    pad : int
        Trailing rows that are padding (the validation iterator fills its last batch) and
        must not count.

    Examples
    --------
    >>> import mxnet as mx
    >>> scores = mx.nd.array([[3, 1, 2], [1, 1, 1]])  # second row: a three-way tie
    >>> [round(v, 4) for v in batch_stats(mx.nd.zeros(2), scores, mx.nd.array([0, 2])).asnumpy().tolist()]
    [0.0, 1.3333, 2.0, 2.0]
    """
    n = scores.shape[0] - int(pad)
    if n <= 0:
        return mx.nd.zeros((4,), ctx=scores.context)
    if pad:
        loss, scores, labels = loss[:n], scores[:n], labels[:n]
    scores = scores.astype("float32")
    true = mx.nd.pick(scores, labels, axis=1).reshape((-1, 1))
    higher = mx.nd.broadcast_greater(scores, true).sum(axis=1)
    level = mx.nd.broadcast_equal(scores, true).sum(axis=1)  # the true class and its ties; 0 for NaN

    def hits(k):
        return (mx.nd.clip((k - higher) / mx.nd.maximum(level, 1), 0, 1) * (level > 0)).sum()

    return mx.nd.concat(
        loss.astype("float32").sum().reshape((1,)),
        hits(1).reshape((1,)),
        hits(min(5, scores.shape[1])).reshape((1,)),
        mx.nd.full((1,), n, ctx=scores.context),
        dim=0,
    )


class MetricSums:
    """Running sums of stats vectors; :meth:`summary` turns them into means and accuracies.

    Examples
    --------
    >>> sums = MetricSums()
    >>> sums.add([2.0, 3, 4, 4])
    >>> sums.summary()
    {'loss': 0.5, 'top1': 0.75, 'top5': 1.0, 'samples': 4}
    """

    def __init__(self):
        self.values = np.zeros(4, dtype=np.float64)

    def add(self, stats):
        """Add a vector ``[loss sum, top-1 hits, top-5 hits, samples]`` (or several stacked)."""
        stats = np.asarray(stats, dtype=np.float64).reshape(-1, 4)
        self.values += stats.sum(axis=0)

    @property
    def samples(self):
        """Number of samples added so far."""
        return int(round(self.values[3]))

    def summary(self):
        """``{"loss": mean loss, "top1": fraction, "top5": fraction, "samples": n}``; NaN when empty."""
        n = self.values[3]
        means = self.values[:3] / n if n else [float("nan")] * 3
        summary = {field: float(mean) for field, mean in zip(FIELDS, means)}
        summary["samples"] = int(round(n))
        return summary


def topk_k(classes):
    """The k of the "top-5" figures: 5, or the number of classes when there are fewer."""
    return min(5, int(classes))


def topk_label(classes):
    """How top-k accuracy is labelled: ``"top-5"``, or ``"top-K"`` with K classes when there are fewer."""
    return "top-%d" % topk_k(classes)
