"""What a run tells its user: console and human log file, JSON-lines metrics, progress.

Only rank 0 writes; on the other ranks every method here does nothing (so calling code needs
no ``if rank == 0``). :class:`EpochMetrics` sums an epoch's metrics over the ranks first (every
rank calls it).
"""

import json
import logging
import math
import os
import sys
import time

import numpy as np

from .. import fileio
from .._compat import mx
from ..deploy.metrics import MetricSums, topk_label
from .config import ConfigError

LOGGER_NAME = "gluon_inception.train"


def metrics_log_path(folder, prefix):
    """Where a run's JSON-lines metrics go: ``DIR/PREFIX-metrics.jsonl``."""
    return os.path.join(os.fspath(folder), "%s-metrics.jsonl" % prefix)


def human_log_path(folder, prefix):
    """Where a run's human-readable log goes: ``DIR/PREFIX.log``."""
    return os.path.join(os.fspath(folder), "%s.log" % prefix)


def read_metrics_log(path):
    """Records of a JSON-lines metrics log, skipping a torn last line.

    Returns
    -------
    epochs : list of dict
        One record per epoch (``"epoch"``, ``"lr"``, ``"train_loss"`` ...), the latest record of
        each epoch when a resumed run wrote it twice, sorted by epoch.
    events : list of dict
        Other records (e.g. ``{"event": "final_eval", ...}``).
    """
    by_epoch, events = {}, []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                logging.getLogger(LOGGER_NAME).warning("%s:%d is not JSON; skipped", path, number)
                continue
            if "event" in record:
                events.append(record)
            elif "epoch" in record:
                by_epoch[int(record["epoch"])] = record
    return [by_epoch[e] for e in sorted(by_epoch)], events


class RunLog:
    """Console + ``PREFIX.log`` + ``PREFIX-metrics.jsonl`` of one training run (rank 0 only).

    Parameters
    ----------
    folder, prefix : str
        Checkpoint folder and prefix; the logs sit beside the checkpoints.
    enabled : bool
        False on ranks other than 0.
    progress : bool
        Show each epoch's progress: a tqdm bar on a terminal, plain lines elsewhere.
    """

    def __init__(self, folder, prefix, enabled=True, progress=True):
        self.enabled = enabled
        self.progress = progress and enabled
        self.metrics_path = metrics_log_path(folder, prefix)
        self.human_path = human_log_path(folder, prefix)
        self.logger = logging.getLogger(LOGGER_NAME)
        self.folder = os.fspath(folder)
        self._handlers = []

    def _attach(self):
        """Create the folder and the handlers on the first line written (not for a run refused early)."""
        if self._handlers or not self.enabled:
            return
        os.makedirs(self.folder, exist_ok=True)
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        console = logging.StreamHandler(sys.stdout)
        console.setFormatter(logging.Formatter("%(message)s"))
        logfile = logging.FileHandler(self.human_path, encoding="utf-8")
        logfile.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        for handler in (console, logfile):
            self.logger.addHandler(handler)
            self._handlers.append(handler)

    def info(self, message, *args):
        """Log a line on the console and in the human log."""
        if self.enabled:
            self._attach()
            self.logger.info(message, *args)

    def warning(self, message, *args):
        """Log a warning line."""
        if self.enabled:
            self._attach()
            self.logger.warning("WARNING: " + message, *args)

    def record(self, record):
        """Append one JSON line to the metrics log (flushed at once)."""
        if not self.enabled:
            return
        os.makedirs(self.folder, exist_ok=True)
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(_finite(record), sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def truncate_after(self, epoch):
        """Drop metrics records of epochs after ``epoch`` (a resumed run rewrites them)."""
        if not self.enabled or not os.path.isfile(self.metrics_path):
            return
        keep = []
        with open(self.metrics_path, encoding="utf-8") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if "event" not in record and int(record.get("epoch", 0)) <= epoch:
                    keep.append(line if line.endswith("\n") else line + "\n")
        with fileio.atomic_open(self.metrics_path, "w", encoding="utf-8") as f:
            f.writelines(keep)

    def bar(self, total, description):
        """Progress of one epoch: a live tqdm bar on a terminal, else plain lines.

        Where stderr is not a terminal (a pipe, a file, ``horovodrun``'s forwarding of each rank's
        output, a batch scheduler) a bar's carriage-return redraws become fragments, so each
        update logs one line instead: step, the running figures, and the time left.
        """
        if not self.progress:
            return _NoBar()
        if not sys.stderr.isatty():
            return _ProgressLines(self, total, description)
        from tqdm import tqdm

        return tqdm(total=total, desc=description, unit="step", dynamic_ncols=True, leave=True, file=sys.stderr)

    def close(self):
        """Detach the handlers (a second run in the same process gets fresh ones)."""
        for handler in self._handlers:
            self.logger.removeHandler(handler)
            handler.close()
        self._handlers = []




def require_tensorboardx():
    """The ``tensorboardX`` module, or a :class:`ConfigError` saying how to install it."""
    try:
        import tensorboardX
    except ImportError:
        raise ConfigError(
            "--tensorboard needs tensorboardX, which is not installed: pip install tensorboardX "
            "(or pip install 'gluon-inception[tensorboard]')"
        ) from None
    return tensorboardX


class TensorBoardLog:
    """Scalars in TensorBoard event files under ``logdir`` (rank 0; does nothing elsewhere or without a folder).

    Parameters
    ----------
    logdir : str or None
        ``--tensorboard DIR``.
    enabled : bool
        False on ranks other than 0.
    """

    def __init__(self, logdir, enabled=True):
        self.writer = None
        if logdir and enabled:
            self.writer = require_tensorboardx().SummaryWriter(logdir=os.fspath(logdir), flush_secs=30)

    def scalars(self, values, step):
        """Add ``{tag: value}`` at ``step`` (non-finite values are left out)."""
        if self.writer is None:
            return
        for tag, value in values.items():
            if value is not None and math.isfinite(value):
                self.writer.add_scalar(tag, float(value), int(step))

    def flush(self):
        """Write what is buffered to the event file."""
        if self.writer is not None:
            self.writer.flush()

    def close(self):
        """Flush and close the event file."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class EpochMetrics:
    """One epoch's training metrics summed over all ranks, and the progress bar and scalars that show them.

    Each step's (loss sum, top-1 hits, top-k hits, samples) of this rank's batch stays on the device
    until :meth:`sync` sums the pending steps over the ranks, in one allreduce with a flag per step
    whose loss was not finite.

    Parameters
    ----------
    log : RunLog
    tensorboard : TensorBoardLog
    dist : gluon_inception.dist.Dist
    description : str
        The bar's title (``"epoch 3/90"``).
    steps, interval : int
        Steps in the epoch, and ``--log-interval`` (at most that many steps are synced at once).
    position : dict, optional
        Where a mid-epoch checkpoint left the epoch: ``step``, ``sums`` and ``time`` (s).
    """

    def __init__(self, log, tensorboard, dist, description, steps, interval, position=None):
        self.tensorboard, self.dist, self.steps, self.interval = tensorboard, dist, steps, interval
        self.sums, self.pending = MetricSums(), []
        self.bar = log.bar(steps, description)
        elapsed = 0.0
        if position is not None:
            self.sums.add(position["sums"])
            self.bar.update(position["step"])
            elapsed = float(position["time"])
        self.start, self._interval_start = time.time() - elapsed, time.time()

    def add(self, stats):
        """Keep one step's stats (an NDArray of 4 on the device) until the next :meth:`sync`."""
        self.pending.append(stats)

    def sync(self, done, lr, global_step):
        """Sum the pending steps over the ranks (``done`` steps are done) and show them with ``lr`` at
        ``global_step``. Returns the 1-based step of the first loss that was not finite on any rank
        (nothing is added then), or None."""
        local = mx.nd.stack(*self.pending).asnumpy().astype(np.float64)
        flags = np.zeros(self.interval)
        flags[: len(self.pending)] = ~np.isfinite(local).all(axis=1)
        vector = np.concatenate([np.where(np.isfinite(local), local, 0.0).sum(axis=0), flags])
        total = self.dist.allreduce_sum(vector, name="train_interval")
        bad = np.flatnonzero(total[4:])
        if bad.size:
            return done - len(self.pending) + int(bad[0]) + 1
        total = total[:4]
        self.sums.add(total)
        now = time.time()
        samples = max(total[3], 1.0)
        self.tensorboard.scalars(
            {
                "train/loss": total[0] / samples,
                "train/top1": total[1] / samples,
                "train/top5": total[2] / samples,
                "train/lr": lr,
                "train/img_per_sec": total[3] / max(now - self._interval_start, 1e-9),
            },
            global_step,
        )
        self._interval_start = now
        summary, img_per_sec = self.sums.summary(), self.sums.samples / max(now - self.start, 1e-9)
        running = "loss %.4f top-1 %.1f%% lr %.3g %.0f img/s" % (summary["loss"], 100 * summary["top1"], lr,
                                                                  img_per_sec)  # fmt: skip
        self.bar.set_postfix_str(running, refresh=False)
        self.bar.update(len(self.pending))
        self.pending = []
        return None

    def position(self, lr):
        """Where the epoch stands, for a mid-epoch checkpoint: the sums, the time taken, ``lr`` (of its first step)."""
        return {"sums": self.sums.values.tolist(), "time": time.time() - self.start, "lr": lr}

    def close(self):
        """End the progress bar."""
        self.bar.close()

    def result(self, lr, lr_end):
        """The epoch's metrics: ``loss``, ``top1``, ``top5``, ``samples``, ``time``, ``img_per_sec``,
        ``lr`` (first step), ``lr_end`` (last step) and ``steps``."""
        elapsed = time.time() - self.start
        result = self.sums.summary()
        result.update(time=elapsed, img_per_sec=self.sums.samples / max(elapsed, 1e-9), lr=lr, lr_end=lr_end,
                      steps=self.steps)  # fmt: skip
        return result


def log_epoch(log, tensorboard, epoch, epochs, train, val, classes):
    """0-based ``epoch``'s ``train`` and ``val`` (or None) metrics: a line on the console and in the human
    log, a JSON record, TensorBoard scalars. The ``top5`` fields hold top-k hits, k = min(5, ``classes``)."""
    record = {
        "epoch": epoch + 1,
        "lr": train["lr"],
        "lr_end": train["lr_end"],
        "train_loss": train["loss"],
        "train_top1": train["top1"],
        "train_top5": train["top5"],
        "train_samples": train["samples"],
        "steps": train["steps"],
        "time": round(train["time"], 3),
        "img_per_sec": round(train["img_per_sec"], 2),
    }
    topk = topk_label(classes)
    line = "epoch %d/%d  lr %.3g  train loss %.4f top-1 %.2f%% %s %.2f%%" % (
        epoch + 1, epochs, train["lr"], train["loss"], 100 * train["top1"], topk, 100 * train["top5"]
    )  # fmt: skip
    if val is not None:
        record.update(val_loss=val["loss"], val_top1=val["top1"], val_top5=val["top5"], val_samples=val["samples"])
        record.update({"val_" + k: v for k, v in val.items() if k.startswith("ema_")})
        line += "  | val loss %.4f top-1 %.2f%% %s %.2f%%" % (val["loss"], 100 * val["top1"], topk, 100 * val["top5"])
    line += "  | %.1f s, %.1f img/s" % (train["time"], train["img_per_sec"])
    log.info(line)
    log.record(record)
    shown = ("lr", "train_loss", "train_top1", "train_top5", "img_per_sec", "val_loss", "val_top1", "val_top5")
    tensorboard.scalars({"epoch/" + k: record[k] for k in shown if k in record}, epoch + 1)
    tensorboard.flush()


def log_final_evaluation(log, result, epochs, classes, demo=False, ema_decay=None):
    """The final evaluation's lines (raw weights, then the weight EMA's when there is one) and JSON record."""
    topk = topk_label(classes)
    log.info("final evaluation on the %s split%s, %d images: top-1 %.2f%%  %s %.2f%%  loss %.4f",
             result["split"], " (DEMO DATA: sklearn digits)" if demo else "", result["samples"],
             100 * result["top1"], topk, 100 * result["top5"], result["loss"])  # fmt: skip
    if ema_decay is not None:
        log.info("final evaluation of the weight EMA (decay %g): top-1 %.2f%%  %s %.2f%%  loss %.4f",
                 ema_decay, 100 * result["ema_top1"], topk, 100 * result["ema_top5"], result["ema_loss"])  # fmt: skip
    record = {"event": "final_eval", "epoch": epochs}
    record.update(result)
    log.record(record)


class _ProgressLines:
    """The bar's interface, writing ``description  step i/n (p%)  figures  ETA`` at each update."""

    def __init__(self, log, total, description):
        self.log, self.total, self.description = log, total, description
        self.done, self.postfix, self.start = 0, "", time.monotonic()

    def update(self, n=1):
        self.done += n
        elapsed = time.monotonic() - self.start
        left = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        self.log.info(
            "%s  step %d/%d (%d%%)  %s  ETA %s",
            self.description,
            self.done,
            self.total,
            100 * self.done // max(self.total, 1),
            self.postfix,
            _duration(left),
        )

    def set_postfix_str(self, text, refresh=False):
        self.postfix = text

    def close(self):
        pass


def _duration(seconds):
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return "%d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)


class _NoBar:
    def update(self, n=1):
        pass

    def set_postfix_str(self, text, refresh=False):
        pass

    def close(self):
        pass


def _finite(record):
    """JSON has no NaN: write non-finite floats as null."""
    out = {}
    for key, value in record.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        elif isinstance(value, dict):
            value = _finite(value)
        out[key] = value
    return out
