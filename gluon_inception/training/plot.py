"""The book chapter's training figure from a run's JSON-lines metrics log.

Loss and accuracy per epoch, train against validation, with the epochs where the learning rate
jumped (a step, or a restart with a new ``--lr``) marked by vertical lines.
"""
import glob
import math
import os

from .. import fileio
from ..errors import MissingInputError, UsageError
from .logs import read_metrics_log


def find_metrics_log(path):
    """The metrics log at ``path``: the file itself, or the single ``*-metrics.jsonl`` in a folder.

    Raises
    ------
    FileNotFoundError
        When there is no log (or no single one) at ``path``; the message says what was found.
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        return path
    if os.path.isdir(path):
        logs = sorted(glob.glob(os.path.join(path, "*-metrics.jsonl")))
        if len(logs) == 1:
            return logs[0]
        if logs:
            raise MissingInputError(
                "%s holds several metrics logs (%s): name one" % (path, ", ".join(map(os.path.basename, logs)))
            )
        raise MissingInputError("%s holds no *-metrics.jsonl (written by gluon-inception train)" % path)
    raise MissingInputError("no such metrics log or folder: %s" % path)


def lr_changes(epochs):
    """``(epoch, new lr)`` for the 1-based epochs at whose start the learning rate jumped.

    A jump is a change between the last step of one epoch and the first of the next that is over
    1% and much larger than the per-step drift inside those epochs: steps of a step schedule and
    restarts with a new ``--lr`` are marked, the smooth change of cosine, poly or warmup is not.

    Parameters
    ----------
    epochs : list of dict
        Per-epoch records with ``lr`` (first step), ``lr_end`` (last step) and ``steps``.
    """
    changes = []
    for previous, record in zip(epochs, epochs[1:]):
        before = previous.get("lr_end", previous.get("lr"))
        after = record.get("lr")
        if not before or after is None:
            continue
        jump = abs(after - before)
        drift = 0.0
        for rec in (previous, record):
            if rec.get("lr_end") is not None and rec.get("lr") is not None:
                drift = max(drift, abs(rec["lr_end"] - rec["lr"]) / max(1, int(rec.get("steps", 1)) - 1))
        if jump > 0.01 * abs(before) and jump > 3 * drift:
            changes.append((int(record["epoch"]), float(after)))
    return changes


def _series(epochs, key, scale=1.0):
    xs, ys = [], []
    for record in epochs:
        value = record.get(key)
        if value is not None and math.isfinite(value):
            xs.append(record["epoch"])
            ys.append(value * scale)
    return xs, ys


def plot_metrics(log_path, output=None, title=None):
    """Draw loss, top-1/top-5 accuracy and the learning rate per epoch into a PNG.

    Parameters
    ----------
    log_path : str
        A ``PREFIX-metrics.jsonl`` or the checkpoint folder holding it.
    output : str, optional
        PNG to write; default: the log's path with ``.png``.
    title : str, optional
        Figure title; default: the log's file name.

    Returns
    -------
    str
        The written PNG's path.

    Raises
    ------
    FileNotFoundError
        No log at ``log_path``.
    ValueError
        The log holds no epoch records yet.

    Examples
    --------
    >>> plot_metrics("runs/googlenet")  # doctest: +SKIP
    'runs/googlenet/googlenet-metrics.png'
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    log_path = find_metrics_log(log_path)
    epochs, events = read_metrics_log(log_path)
    if not epochs:
        raise UsageError("%s has no epoch records yet: let the run finish an epoch first" % log_path)
    if output is None:
        output = os.path.splitext(log_path)[0] + ".png"
    fig = Figure(figsize=(9, 9), dpi=100)
    FigureCanvasAgg(fig)
    loss_ax, acc_ax, lr_ax = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 3, 1.3]})
    loss_ax.plot(*_series(epochs, "train_loss"), "-", color="tab:blue", label="train loss")
    loss_ax.plot(*_series(epochs, "val_loss"), "-", color="tab:orange", label="val loss")
    loss_ax.set_ylabel("cross-entropy loss")
    acc_ax.plot(*_series(epochs, "train_top1", 100), "-", color="tab:blue", label="train top-1")
    acc_ax.plot(*_series(epochs, "val_top1", 100), "-", color="tab:orange", label="val top-1")
    acc_ax.plot(*_series(epochs, "train_top5", 100), "--", color="tab:blue", alpha=0.6, label="train top-5")
    acc_ax.plot(*_series(epochs, "val_top5", 100), "--", color="tab:orange", alpha=0.6, label="val top-5")
    acc_ax.set_ylabel("accuracy (%)")
    for event in events:
        if event.get("event") == "final_eval" and event.get("top1") is not None:
            acc_ax.plot(
                [event.get("epoch", epochs[-1]["epoch"])],
                [100 * event["top1"]],
                "*",
                color="tab:red",
                markersize=11,
                label="%s top-1 %.2f%%" % (event.get("split", "final"), 100 * event["top1"]),
            )
    # Epoch e runs from x = e - 1 to x = e; its metrics are plotted at x = e (its end).
    xs, lrs = [], []
    for record in epochs:
        if record.get("lr") is not None:
            xs += [record["epoch"] - 1, record["epoch"]]
            lrs += [record["lr"], record.get("lr_end", record["lr"])]
    lr_ax.plot(xs, lrs, color="tab:green")
    if lrs and min(lrs) > 0:
        lr_ax.set_yscale("log")
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_xlabel("epoch")
    for epoch, lr in lr_changes(epochs):
        for ax in (loss_ax, acc_ax, lr_ax):
            ax.axvline(epoch - 1, color="gray", linestyle=":", linewidth=1)
        loss_ax.annotate(
            " lr %.0e" % lr, (epoch - 1, 1), xycoords=("data", "axes fraction"), fontsize=8, ha="left", va="top"
        )
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    lr_ax.grid(alpha=0.3)
    fig.suptitle(title or "Training loss and accuracy: %s" % os.path.basename(log_path))
    fig.tight_layout()
    with fileio.atomic_path(output) as tmp:
        fig.savefig(tmp, format="png")
    return output
