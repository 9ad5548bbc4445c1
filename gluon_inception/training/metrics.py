"""Loss and top-1/top-5 accuracy as sums and counts, so that ranks can add them up exactly.

Per batch, :func:`batch_stats` computes ``[loss sum, top-1 hits, top-5 hits, samples]`` on the
device without waiting for it; :class:`MetricSums` adds such vectors on the host (float64) once
they have been summed over all ranks with :meth:`gluon_inception.dist.Dist.allreduce_sum`.
"""

import numpy as np

from .._compat import mx

#: Order of the values in a stats vector.
FIELDS = ("loss", "top1", "top5", "samples")


def batch_stats(loss, logits, labels, pad=0):
    """``[loss sum, top-1 hits, top-5 hits, samples]`` of one batch, as a float32 NDArray of shape (4,).

    Parameters
    ----------
    loss : NDArray, shape (N,)
        Per-sample loss.
    logits : NDArray, shape (N, C)
        Scores; top-5 becomes top-C when there are fewer than 5 classes.
    labels : NDArray, shape (N,)
        Class ids (the un-mixed, dominant label under mixup).
    pad : int
        Trailing rows that are padding (the validation iterator fills its last batch) and
        must not count.
    """
    n = logits.shape[0] - int(pad)
    if n <= 0:
        return mx.nd.zeros((4,), ctx=logits.context)
    if pad:
        loss, logits, labels = loss[:n], logits[:n], labels[:n]
    k = min(5, logits.shape[1])
    top = mx.nd.topk(logits, axis=1, k=k, ret_typ="indices").astype("float32")
    hits = top == labels.astype("float32").reshape((-1, 1))
    return mx.nd.stack(
        loss.astype("float32").sum(),
        hits[:, 0].sum(),
        hits.sum(),
        mx.nd.full((1,), n, ctx=logits.context),
    ).reshape((4,))


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
        if n == 0:
            return {"loss": float("nan"), "top1": float("nan"), "top5": float("nan"), "samples": 0}
        return {
            "loss": float(self.values[0] / n),
            "top1": float(self.values[1] / n),
            "top5": float(self.values[2] / n),
            "samples": int(round(n)),
        }
