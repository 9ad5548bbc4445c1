"""A run's checkpoints: which one a resumed run continues, writing each kind, restoring one on every rank.

The kinds (their files: :mod:`gluon_inception.checkpoint`): an epoch's (parameters, optimizer states,
``.json``), a mid-epoch one (the same at a step boundary, plus ``.ranks``: every rank's BatchNorm
running statistics, which differ until the epoch ends) and ``PREFIX-best`` (parameters and ``.json``);
with ``--ema-decay``, the weight EMA's file beside each. Rank 0 writes and reads the files; the other
ranks get their content by broadcast, so resuming works where only rank 0 sees the folder.
"""

import io
import os

import numpy as np

from .._compat import mx
from ..checkpoint import (
    CheckpointError,
    checkpoint_paths,
    find_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    list_mid_epoch_checkpoints,
    prune_checkpoints,
    prune_mid_epoch_checkpoints,
    read_checkpoint_meta,
    restore_trainer_states,
    save_checkpoint,
    verify_checkpoint_files,
)
from ..fileio import remove_stale_partials
from ..models.googlenet import describe_model
from .config import ConfigError
from .ema import read_ema, save_ema
from .precision import loss_scaler_state, restore_loss_scaler


def locate_resume(cfg, log):
    """The ``.json`` content of the checkpoint this run continues (``--resume``, ``--start-epoch N``), or None.

    ``--resume`` takes a mid-epoch checkpoint newer than the last epoch's over that one.

    Raises
    ------
    ConfigError
        A fresh run in a folder that already holds checkpoints of ``--prefix``.
    CheckpointError
        ``--start-epoch N`` without that checkpoint (the message lists the available epochs).
    """
    folder, prefix = cfg.checkpoints, cfg.prefix
    remove_stale_partials(folder)  # temporary files of checkpoint writers that were killed
    if cfg.start_epoch:
        paths = find_checkpoint(folder, prefix, cfg.start_epoch)
        return read_checkpoint_meta(paths["params"])
    if cfg.resume:
        latest = latest_checkpoint(folder, prefix)
        done = list_checkpoints(folder, prefix)[-1][1] if latest else 0
        mid = [pos for pos in list_mid_epoch_checkpoints(folder, prefix) if pos[0] >= done]
        if mid:  # a mid-epoch checkpoint newer than the last epoch's: continue from its step
            return read_checkpoint_meta(checkpoint_paths(folder, prefix, *mid[-1])["params"])
        if latest is None:
            log.info("--resume: no checkpoint of %r in %s yet, starting from scratch", prefix, folder)
            return None
        return read_checkpoint_meta(latest)
    existing = [e for _, e in list_checkpoints(folder, prefix)]
    if existing and cfg.start_epoch is None:
        raise ConfigError(
            "%s already holds checkpoints of %r (epochs %s). Pass --resume to continue that run, "
            "--start-epoch N to restart from epoch N, or choose another --checkpoints folder or --prefix."
            % (os.path.abspath(folder), prefix, _epoch_ranges(existing))
        )
    return None


def check_position(meta, cfg, ranks, steps, start_epoch, streams=1):
    """A mid-epoch checkpoint ``meta`` continues only where every rank's shard and batches are the same.

    Raises
    ------
    ConfigError
        Another number of ranks, ``--batch-size``, steps per epoch, ``--accumulate`` or decoding
        streams (``--data-threads``, which decide the epoch's order).
    """
    position = meta["position"]
    if position.get("streams", streams) != streams:
        raise ConfigError(
            "%s was written mid-epoch with %d decoding stream(s) per rank, which decide the order of the epoch; "
            "this run has %d: continue it with --data-threads %d, or restart from the last epoch's checkpoint "
            "with --start-epoch %d" % (meta["paths"]["params"], position["streams"], streams, position["streams"],
                                       start_epoch)
        )
    now = {"ranks": ranks, "batch_size": cfg.batch_size, "steps": steps}
    if position.get("accumulate", 1) != cfg.accumulate:
        raise ConfigError(
            "%s was written mid-epoch with --accumulate %d: continue it with the same --accumulate, or restart "
            "from the last epoch's checkpoint with --start-epoch %d"
            % (meta["paths"]["params"], position.get("accumulate", 1), start_epoch)
        )
    if any(position[key] != value for key, value in now.items()):
        raise ConfigError(
            "%s was written mid-epoch by %d rank(s) with --batch-size %d (%d steps per epoch); this run has %d "
            "rank(s), --batch-size %d, %d steps: continue it with the same ranks and batch size, or restart from "
            "the last epoch's checkpoint with --start-epoch %d"
            % (meta["paths"]["params"], position["ranks"], position["batch_size"], position["steps"],
               now["ranks"], now["batch_size"], now["steps"], start_epoch)
        )  # fmt: skip


class Checkpoints:
    """Writes the checkpoints of one run (rank 0) and puts a resumed one back (every rank).

    Parameters
    ----------
    run : Training
        The run whose network, trainer, weight EMA, data and progress the checkpoints hold.

    Attributes
    ----------
    best : dict or None
        ``{"epoch", "val_top1"}`` of ``PREFIX-best`` (kept in every checkpoint's ``.json``).
    """

    def __init__(self, run):
        self.run, self.cfg, self.dist, self.log = run, run.cfg, run.dist, run.log
        self.best = (run.resume_meta or {}).get("best")

    def end_epoch(self, epoch, train, val):
        """After 0-based ``epoch``: ``PREFIX-best`` when ``val`` is the best so far, the epoch's own
        checkpoint when due (every ``--save-every`` epochs and after the last). Returns whether it was due."""
        if val is not None and (self.best is None or val["top1"] > self.best["val_top1"]):
            self.best = {"epoch": epoch + 1, "val_top1": val["top1"]}
            self.save(epoch + 1, train, val, best=True)
        due = (epoch + 1) % self.cfg.save_every == 0 or epoch + 1 == self.cfg.epochs
        if due:
            self.save(epoch + 1, train, val)
        return due

    def save(self, epoch, train=None, val=None, best=False):
        """Write checkpoint ``epoch`` (completed epochs), or ``PREFIX-best``, atomically; rank 0 only.

        An epoch's checkpoint replaces the mid-epoch ones (they are removed) and is pruned to
        ``--keep-last``; ``PREFIX-best`` is never pruned.
        """
        cfg = self.cfg

        def write():
            paths = self._write(epoch, self._meta(train, val), best=best)
            if best:
                self.log.info("best validation top-1 so far (%.2f%%): %s", 100 * val["top1"], paths["params"])
                return paths
            prune_mid_epoch_checkpoints(cfg.checkpoints, cfg.prefix)
            removed = prune_checkpoints(cfg.checkpoints, cfg.prefix, cfg.keep_last)
            self.log.info(
                "checkpoint %s%s", paths["params"], " (removed epochs %s)" % _epoch_ranges(removed) if removed else ""
            )
            return paths

        return self.run._root_decides(write, "checkpoint")  # a full disk ends every rank the same way

    def save_mid_epoch(self, epoch, step, position):
        """Write the checkpoint after ``step`` steps of 0-based epoch ``epoch``; every rank takes part.

        Parameters
        ----------
        position : dict
            Where the epoch stands: ``sums`` (the metric sums), ``time`` (s), ``lr`` (of its first step).

        Returns
        -------
        dict or None
            The paths written, on rank 0.
        """
        cfg = self.cfg
        position = dict(position, step=step, steps=self.run.iters_per_epoch, ranks=self.dist.size,
                        batch_size=cfg.batch_size, accumulate=cfg.accumulate,
                        streams=getattr(self.run._train_iter, "streams", 1))  # fmt: skip
        ranks = self._gather_rank_state()

        def write():
            paths = self._write(epoch, self._meta(), step=step, ranks=ranks, position=position)
            removed = prune_mid_epoch_checkpoints(cfg.checkpoints, cfg.prefix, keep=(epoch, step))
            self.log.info("mid-epoch checkpoint %s%s", paths["params"], " (older ones removed)" if removed else "")
            return paths

        return self.run._root_decides(write, "mid_epoch_checkpoint")

    def _meta(self, train=None, val=None):
        """The ``.json`` content every kind of checkpoint shares."""
        run, cfg = self.run, self.cfg
        meta = {
            "lr": run.last_lr,
            "lr_scale": run.schedule.scale,
            "global_step": run.global_step,
            "metrics": {"train": train, "val": val},
            "config": cfg.to_dict(),
            "model": describe_model(run.net),
            "data": run.data.describe(),
            "preprocessing": run.data.preprocessing.to_dict(),
            "optimizer": {"name": cfg.optimizer, "num_update": int(run.trainer._optimizer.num_update)},
            "ranks": self.dist.size,
            "best": self.best,
        }
        if run.amp is not None:
            meta["amp_loss_scale"] = loss_scaler_state(run.trainer)
        return meta

    def _write(self, epoch, meta, step=None, ranks=None, position=None, best=False):
        """The one place every checkpoint is written through (rank 0): after ``epoch`` completed epochs;
        mid-epoch with ``step`` (steps done in the next epoch), ``ranks`` (``.ranks`` bytes) and ``position``;
        or ``PREFIX-best`` (parameters and ``.json`` only)."""
        cfg, run = self.cfg, self.run
        if step is not None:
            meta = dict(meta, step=step, position=position)
        at = checkpoint_paths(cfg.checkpoints, cfg.prefix, "best" if best else epoch, step)
        meta["ema"] = save_ema(run.ema, at["params"])  # the weight EMA's file is written before the .json
        trainer = None if best else run.trainer
        return save_checkpoint(cfg.checkpoints, cfg.prefix, epoch, run.net, trainer, meta, step=step, ranks=ranks,
                               best=best)  # fmt: skip

    def restore(self, meta):
        """Put checkpoint ``meta`` on every rank: weights (rank 0 reads, then broadcast), weight EMA,
        each rank's own BatchNorm statistics (mid-epoch) and the optimizer state."""
        run, cfg = self.run, self.cfg

        def read():  # rank 0; a damaged file ends every rank with its one line
            verify_checkpoint_files(meta, kinds=("params", "states"))
            run.net.load_parameters(meta["paths"]["params"], ctx=run.ctx)
            saved_optimizer = meta.get("optimizer", {}).get("name")
            if saved_optimizer != cfg.optimizer:
                self.log.warning("the checkpoint was trained with %s, this run uses %s: starting the optimizer state "
                                 "afresh", saved_optimizer, cfg.optimizer)  # fmt: skip
            elif not os.path.isfile(meta["paths"]["states"]):
                self.log.warning("%s is missing: starting the optimizer state afresh", meta["paths"]["states"])
            else:
                with open(meta["paths"]["states"], "rb") as f:
                    return f.read()
            return None

        states = self.run._root_decides(read, "trainer_states")
        self.dist.broadcast_parameters(run.net.collect_params())
        self._restore_ema(meta)
        if meta.get("step"):
            self._restore_rank_state(meta)
        if states is not None:
            restore_trainer_states(run.trainer, states)
            optimizer = run.trainer._optimizer
            optimizer.wd = cfg.wd
            if hasattr(optimizer, "momentum"):
                optimizer.momentum = cfg.momentum
            if run.amp is not None and meta.get("amp_loss_scale"):
                restore_loss_scaler(run.trainer, meta["amp_loss_scale"])

    def _restore_ema(self, meta):
        """The weight EMA of ``meta`` on every rank; without one, the average starts from the restored weights."""
        ema = self.run.ema
        if ema is None:
            return
        ema.reset()

        def read():
            saved = read_ema(meta)
            if saved is not None:
                ema.load_arrays(*saved)
            return saved is not None

        if self.run._root_decides(read, "ema_found"):
            self.dist.broadcast_parameters({"ema.%s" % n: a for n, a in zip(ema.names, ema.shadow)})
            ema.updates = int(self.dist.broadcast_object(ema.updates, name="ema_updates"))
        else:
            self.log.info("%s holds no weight EMA: the average starts from its weights", meta["paths"]["params"])

    def _gather_rank_state(self):
        """Every rank's BatchNorm running statistics (they differ until the epoch ends), as .npz bytes on rank 0."""
        stats = running_statistics(self.run.net)
        flat = [p.data(self.run.ctx).asnumpy().ravel() for _, p in stats]
        local = np.concatenate(flat) if flat else np.zeros(0)
        table = np.zeros((self.dist.size, local.size))
        table[self.dist.rank] = local
        table = self.dist.allreduce_sum(table.ravel(), name="rank_state").reshape(table.shape)
        if not self.dist.is_root:
            return None
        out = io.BytesIO()
        np.savez(out, stats=table.astype(np.float32), names=np.array([name for name, _ in stats]))
        return out.getvalue()

    def _restore_rank_state(self, meta):
        """Give each rank its own BatchNorm running statistics of a mid-epoch checkpoint."""
        def read():
            verify_checkpoint_files(meta, kinds=("ranks",))
            with open(meta["paths"]["ranks"], "rb") as f:
                return f.read()

        data = self.run._root_decides(read, "rank_state")
        saved = np.load(io.BytesIO(data), allow_pickle=False)
        stats = running_statistics(self.run.net)
        if [name for name, _ in stats] != [str(n) for n in saved["names"]]:
            raise CheckpointError("%s holds the statistics of another network" % meta["paths"]["ranks"])
        row, offset = saved["stats"][self.dist.rank], 0
        for _, param in stats:
            shape = param.shape
            size = int(np.prod(shape))
            param.set_data(mx.nd.array(row[offset : offset + size].reshape(shape), dtype=param.dtype))
            offset += size


def running_statistics(net):
    """``(name, parameter)`` of the BatchNorm running mean/var (not of weights a frozen backbone holds fixed)."""
    return [(name, p) for name, p in net.collect_params().items()
            if p.grad_req == "null" and name.endswith(("running_mean", "running_var"))]  # fmt: skip


def _epoch_ranges(epochs):
    """``"1, 2, 3"``, or ``"1-9"`` for more than six epochs."""
    epochs = sorted(epochs)
    if not epochs:
        return ""
    if len(epochs) > 6:
        return "%d-%d" % (epochs[0], epochs[-1])
    return ", ".join(map(str, epochs))
