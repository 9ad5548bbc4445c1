"""The training engine behind ``examples/train_imagenet.py`` and ``gluon-inception train``.

One :class:`Training` object walks a run through its stages, each a method; :meth:`Training.run`
calls them in order (init, data, model, trainer, restore, the epochs, the final evaluation), and
:meth:`Training.train_step` is the path of one batch.

Horovod rules it follows: gradients are averaged by ``hvd.DistributedTrainer``; parameters are
broadcast from rank 0 after initialisation and after a resume; every rank runs the same number of
steps (checked with an allreduce each epoch); metrics are sums allreduced over ranks; BatchNorm's
running statistics are averaged over ranks at the end of each epoch, so every rank holds the same
network; stopping (a non-finite loss) is decided on allreduced flags, so all ranks stop together.
"""

import math
import os
import time

import numpy as np

from .. import dist as dist_module
from .._compat import mx
from ..checkpoint import (
    CheckpointError,
    find_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    prune_checkpoints,
    read_checkpoint_meta,
    restore_trainer_states,
    save_checkpoint,
    verify_checkpoint_files,
)
from ..data import DatasetSource, verify_dataset
from ..data.demo import demo_banner
from ..deploy.evaluate import evaluate_batches
from ..deploy.metrics import MetricSums, batch_stats, topk_label
from ..errors import GluonInceptionError
from ..fileio import remove_stale_partials
from ..models.googlenet import GoogLeNet, describe_model, model_summary
from ..zoo.registry import get_model
from .config import ConfigError, merge_for_resume
from .hooks import FaultInjection
from .logs import RunLog
from .precision import check_dtype, init_amp, loss_scaler_state, restore_loss_scaler, trainer_kwargs
from .schedules import LRSchedule

NO_DATA_MESSAGE = (
    "no training data given. Either\n"
    "  * prepare ImageNet (or any folder-per-class image tree) once:\n"
    "      gluon-inception prepare ILSVRC2012/train data/imagenet --val-dir ILSVRC2012/val\n"
    "    and pass --data data/imagenet, or\n"
    "  * pass --demo to train on the embedded demo dataset (sklearn digits, built on first use)."
)


class TrainingStopped(GluonInceptionError, RuntimeError):
    """Training stopped on purpose (a guard fired); the last good checkpoint is intact.

    Attributes
    ----------
    exit_code : int
        The process exit status the command line uses (3).
    """

    exit_code = 3


class NonFiniteLoss(TrainingStopped):
    """The training loss became NaN or infinite."""


def _seed_for(*values):
    """A 31-bit seed that depends on all ``values`` (run seed, epoch, rank...)."""
    return int(np.random.SeedSequence([int(v) for v in values]).generate_state(1)[0] % (2**31 - 1))


class Training:
    """One training run; :meth:`run` calls the stages in order.

    Parameters
    ----------
    cfg : TrainConfig
        Finalized config (:func:`~gluon_inception.training.config_from_args` or
        ``TrainConfig(...).finalize()``).
    dist : gluon_inception.dist.Dist, optional
        Default :func:`gluon_inception.dist.get` (Horovod when launched by ``horovodrun``).
    hooks : TrainingHooks, optional
        Called at fixed points of a step (:mod:`gluon_inception.training.hooks`); default the
        fault injection that tests drive through environment variables.

    Attributes
    ----------
    cfg : TrainConfig
        On a resume, the checkpoint's config with this invocation's explicit options on top.
    start_epoch : int
        Epochs already done (0, or the resumed checkpoint's epoch).
    net, trainer, schedule, data
        Set by the stages.

    Raises
    ------
    ConfigError
        Bad combination of options, no data, float16 without a GPU, a checkpoint folder that
        already holds a run (without ``--resume``/``--start-epoch``).
    CheckpointError
        ``--start-epoch N`` without that checkpoint (the message lists the available epochs).
    """

    def __init__(self, cfg, dist=None, hooks=None):
        self.dist = dist if dist is not None else dist_module.get()
        self.cfg = cfg
        self.ctx = self.dist.context()
        self.log = RunLog(cfg.checkpoints, cfg.prefix, enabled=self.dist.is_root, progress=cfg.progress)
        self.hooks = hooks if hooks is not None else FaultInjection(self.dist.rank)
        self.resume_meta = self._root_decides(self._locate_checkpoint, "resume_meta")
        if self.resume_meta is not None:
            self.cfg = merge_for_resume(self.resume_meta["config"], cfg)
        self.start_epoch = int(self.resume_meta["epoch"]) if self.resume_meta else 0
        check_dtype(self.cfg.dtype, self.ctx)
        if not (self.cfg.demo or self.cfg.data):
            raise ConfigError(NO_DATA_MESSAGE)
        if self.dist.hvd is None:
            self.log.info("Horovod is not available (horovod.mxnet cannot be imported): training in a single process.")
        self.net = self.trainer = self.schedule = self.data = self.amp = None
        self.global_step = 0
        self.iters_per_epoch = self._last_lr = self._train_iter = self._train_iter_epoch = None
        self._ce_sparse = mx.gluon.loss.SoftmaxCrossEntropyLoss()
        self._ce_dense = mx.gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False)

    # -- helpers ---------------------------------------------------------------------------
    def _root_decides(self, func, name):
        """Run ``func`` on rank 0 and give every rank its result (or raise its error everywhere)."""
        outcome = None
        if self.dist.is_root:
            try:
                outcome = ("ok", func())
            except (ConfigError, CheckpointError) as err:
                outcome = ("error", type(err).__name__, str(err))
        outcome = self.dist.broadcast_object(outcome, name=name)
        if outcome[0] == "error":
            raise (ConfigError if outcome[1] == "ConfigError" else CheckpointError)(outcome[2])
        return outcome[1]

    def _locate_checkpoint(self):
        cfg = self.cfg
        folder, prefix = cfg.checkpoints, cfg.prefix
        remove_stale_partials(folder)  # temporary files of checkpoint writers that were killed
        if cfg.start_epoch:
            paths = find_checkpoint(folder, prefix, cfg.start_epoch)
            return read_checkpoint_meta(paths["params"])
        if cfg.resume:
            latest = latest_checkpoint(folder, prefix)
            if latest is None:
                self.log.info("--resume: no checkpoint of %r in %s yet, starting from scratch", prefix, folder)
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

    def _check_same_steps(self, steps):
        total = self.dist.allreduce_sum([steps, steps * steps], name="steps_per_epoch")
        if self.dist.size * total[1] != total[0] * total[0]:
            raise RuntimeError(
                "the ranks would run different numbers of steps per epoch (this rank: %d, mean: %.2f); "
                "Horovod would hang. The training iterator must give every rank the same len()."
                % (steps, total[0] / self.dist.size)
            )

    # -- stages ----------------------------------------------------------------------------
    def open_data(self, data=None):
        """Open the dataset (``--data``) or build the demo one (``--demo``), or use ``data``.

        Returns
        -------
        DatasetSource
        """
        cfg = self.cfg
        if data is None:
            if not cfg.demo and not os.path.isdir(cfg.data):
                raise ConfigError(
                    "--data %s is not a folder: give the folder written by `gluon-inception prepare ... OUTPUT` "
                    "(it holds dataset.json), or --demo" % cfg.data
                )
            data = DatasetSource.open(
                cfg.demo_root if cfg.demo else cfg.data, demo=cfg.demo, dist=self.dist, batch_size=cfg.batch_size,
                image_size=cfg.image_size, augment=cfg.augment, mirror=cfg.mirror, val_resize=cfg.val_resize,
                seed=cfg.seed, num_threads=cfg.data_threads,
            )  # fmt: skip
            if cfg.verify_data and self.dist.is_root:
                verify_dataset(data.info)  # raises naming the damaged images; the other ranks end with this one
            if cfg.demo:
                self.log.info(demo_banner(data.info))
            self.log.info("data: %s (%d classes; %s)", data.info.root, data.num_classes, data.info.counts())
        self.data = data
        return data

    def build_model(self, net=None):
        """Build (or take) the network, broadcast rank 0's initial weights, hybridize.

        Parameters
        ----------
        net : mxnet.gluon.HybridBlock, optional
            An initialised network on this rank's context; default: ``cfg.model``.
        """
        cfg = self.cfg
        self.amp = init_amp(cfg.dtype)  # the loss-scaling AMP (float16) or None; bfloat16 needs no scaling
        if net is None:
            kwargs = {"classes": self.data.num_classes, "aux_logits": cfg.aux_logits, "dropout": cfg.dropout}
            if cfg.model == "googlenet":
                kwargs["topology"] = cfg.topology
            mx.random.seed(cfg.seed)
            net = get_model(cfg.model, ctx=self.ctx, **kwargs)
        if isinstance(net, GoogLeNet):
            try:
                net.check_input_size(cfg.image_size)
            except ValueError as err:
                raise ConfigError("--image-size %d: %s" % (cfg.image_size, err)) from None
        if cfg.no_wd_bn_bias:
            for param in net.collect_params(".*(gamma|beta|bias)$").values():
                param.wd_mult = 0.0
        self.dist.broadcast_parameters(net.collect_params())
        if cfg.hybridize:
            net.hybridize(static_alloc=True, static_shape=True)
        self.net = net
        self.log.info("model: %s", model_summary(net))
        return net

    def build_trainer(self):
        """``hvd.DistributedTrainer`` (``gluon.Trainer`` without Horovod) and the lr schedule."""
        cfg = self.cfg
        it = self._train_iter_for(self.start_epoch)
        self.iters_per_epoch = len(it)
        global_batch = cfg.batch_size * self.dist.size
        self.schedule = LRSchedule(cfg, self.iters_per_epoch, global_batch)
        self.global_step = self.start_epoch * self.iters_per_epoch
        params = {"learning_rate": self.schedule(self.global_step), "wd": cfg.wd}
        if cfg.optimizer in ("sgd", "nag"):
            params["momentum"] = cfg.momentum
        if self.dist.hvd is not None:
            trainer = self.dist.hvd.DistributedTrainer(
                self.net.collect_params(), cfg.optimizer, params, **trainer_kwargs(self.dist.hvd, cfg.fp16_allreduce)
            )
        else:
            trainer = mx.gluon.Trainer(self.net.collect_params(), cfg.optimizer, params, kvstore=None)
        if self.amp is not None:
            self.amp.init_trainer(trainer)
        self.trainer = trainer
        self.log.info(
            "optimizer: %s, %d rank(s) x batch %d = %d per step, %d steps per epoch; lr %s",
            cfg.optimizer,
            self.dist.size,
            cfg.batch_size,
            global_batch,
            self.iters_per_epoch,
            self.schedule.describe(),
        )
        return trainer

    def restore(self):
        """Load the resumed checkpoint's weights (rank 0, then broadcast) and optimizer state (all ranks).

        Returns
        -------
        int
            The epoch training continues after (0 when not resuming).
        """
        meta = self.resume_meta
        if meta is None:
            return 0
        cfg = self.cfg
        states = None
        if self.dist.is_root:
            verify_checkpoint_files(meta, kinds=("params", "states"))
            self.net.load_parameters(meta["paths"]["params"], ctx=self.ctx)
            saved_optimizer = meta.get("optimizer", {}).get("name")
            if saved_optimizer != cfg.optimizer:
                self.log.warning(
                    "the checkpoint was trained with %s, this run uses %s: starting the optimizer state afresh",
                    saved_optimizer,
                    cfg.optimizer,
                )
            elif not os.path.isfile(meta["paths"]["states"]):
                self.log.warning("%s is missing: starting the optimizer state afresh", meta["paths"]["states"])
            else:
                with open(meta["paths"]["states"], "rb") as f:
                    states = f.read()
        self.dist.broadcast_parameters(self.net.collect_params())
        states = self.dist.broadcast_object(states, name="trainer_states")
        if states is not None:
            restore_trainer_states(self.trainer, states)
            optimizer = self.trainer._optimizer
            optimizer.wd = cfg.wd
            if hasattr(optimizer, "momentum"):
                optimizer.momentum = cfg.momentum
            if self.amp is not None and meta.get("amp_loss_scale"):
                restore_loss_scaler(self.trainer, meta["amp_loss_scale"])
        saved_lr = meta.get("config", {}).get("lr")
        if "lr" in getattr(cfg, "explicit", ()) and saved_lr is not None and not math.isclose(cfg.lr, saved_lr):
            self.schedule.override_from(self.start_epoch, cfg.lr * self.schedule.factor)
            how = "set by --lr"
        else:
            self.schedule.scale = float(meta.get("lr_scale", 1.0))
            how = "continuing the schedule"
        self.global_step = self.start_epoch * self.iters_per_epoch
        self.trainer.set_learning_rate(self.schedule(self.global_step))
        self.log.info(
            "resumed from %s (after epoch %d): lr %.4g (%s)",
            meta["paths"]["params"],
            self.start_epoch,
            self.schedule(self.global_step),
            how,
        )
        self.log.truncate_after(self.start_epoch)
        self.hooks.state("restored", self.net, self.trainer)
        return self.start_epoch

    def epochs(self):
        """The 0-based epochs still to train: ``range(start_epoch, cfg.epochs)``."""
        return range(self.start_epoch, self.cfg.epochs)

    def _train_iter_for(self, epoch):
        if self._train_iter_epoch != epoch:
            self._train_iter = None  # let the previous iterator's threads go first
            self._train_iter = self.data.train_iter(epoch)
            self._train_iter_epoch = epoch
            self._check_same_steps(len(self._train_iter))
        return self._train_iter

    def _targets(self, x, y, rng, mixup):
        """(input, loss targets, labels for accuracy): sparse labels, or smoothed/mixed one-hot rows."""
        cfg = self.cfg
        if not mixup and not cfg.label_smoothing:
            return x, y, y
        classes = self.data.num_classes
        eps = cfg.label_smoothing
        targets = mx.nd.one_hot(y, classes) * (1.0 - eps) + eps / classes
        if not mixup:
            return x, targets, y
        lam = float(rng.beta(cfg.mixup, cfg.mixup))
        x = lam * x + (1.0 - lam) * mx.nd.flip(x, axis=0)
        targets = lam * targets + (1.0 - lam) * mx.nd.flip(targets, axis=0)
        # Accuracy against the label that dominates the mixed image.
        return x, targets, (y if lam >= 0.5 else mx.nd.flip(y, axis=0))

    def _loss(self, outputs, targets):
        sparse = targets.ndim == 1
        loss_fn = self._ce_sparse if sparse else self._ce_dense
        if isinstance(outputs, (tuple, list)):
            main, aux = outputs[0], outputs[1:]
            loss = loss_fn(main, targets)
            for head in aux:
                loss = loss + self.cfg.aux_weight * loss_fn(head, targets)
            return main, loss
        return outputs, loss_fn(outputs, targets)

    def train_epoch(self, epoch):
        """One pass over every rank's shard; returns the allreduced train metrics.

        Parameters
        ----------
        epoch : int
            0-based epoch.

        Returns
        -------
        dict
            ``loss`` (the training objective, with smoothing/mixup/aux terms), ``top1``,
            ``top5`` (fractions; under mixup against the dominant label), ``samples``,
            ``time`` (s), ``img_per_sec``, ``lr`` (first step) and ``lr_end`` (last step).

        Raises
        ------
        NonFiniteLoss
            On every rank, when any rank's loss is NaN or infinite; no checkpoint is written.
        """
        cfg = self.cfg
        it = self._train_iter_for(epoch)
        steps = len(it)
        mx.random.seed(_seed_for(cfg.seed, epoch, self.dist.rank))
        rng = np.random.RandomState(_seed_for(cfg.seed, epoch, self.dist.rank, 1))
        sums = MetricSums()
        pending = []
        first_lr = self.schedule(self.global_step)
        bar = self.log.bar(steps, "epoch %d/%d" % (epoch + 1, cfg.epochs))
        start = time.time()
        try:
            for step, batch in enumerate(it):
                pending.append(self.train_step(batch, epoch, step, rng))
                if len(pending) == cfg.log_interval or step == steps - 1:
                    self._sync_interval(pending, sums, epoch, step + 1 - len(pending), steps)
                    elapsed = time.time() - start
                    summary = _running(sums.summary(), sums.samples / max(elapsed, 1e-9), self._last_lr)
                    bar.set_postfix_str(summary, refresh=False)
                    bar.update(len(pending))
                    pending = []
        finally:
            bar.close()
        elapsed = time.time() - start
        self._average_bn_statistics()
        result = sums.summary()
        result.update(
            time=elapsed, img_per_sec=sums.samples / max(elapsed, 1e-9), lr=first_lr, lr_end=self._last_lr, steps=steps
        )
        return result

    def train_step(self, batch, epoch, step, rng):
        """One step on this rank's ``batch``: data, forward, loss, backward, allreduce and update, metrics.

        Parameters
        ----------
        batch : mxnet.io.DataBatch
        epoch, step : int
            0-based; they decide the learning rate, mixup and the hooks.
        rng : numpy.random.RandomState
            Draws the mixup weights.

        Returns
        -------
        NDArray, shape (4,)
            This rank's (loss sum, top-1 hits, top-5 hits, samples) of the batch; the caller sums
            them over the ranks.
        """
        cfg = self.cfg
        self.hooks.before_step(self.net, epoch, step)
        # Data: this rank's batch on its device; label smoothing and mixup make soft targets.
        x = batch.data[0].as_in_context(self.ctx)
        y = batch.label[0].as_in_context(self.ctx)
        mixup = cfg.mixup > 0 and epoch < cfg.epochs - cfg.mixup_off_epochs
        x, targets, labels = self._targets(x, y, rng, mixup)
        with mx.autograd.record():
            # Forward: with aux heads the network returns (logits, aux1, aux2) while recording.
            outputs = self.net(x)
            # Loss: cross-entropy of the logits, plus aux_weight times that of each aux head.
            logits, loss = self._loss(outputs, targets)
            # Backward: under float16, on the loss scaled by AMP's dynamic loss scale.
            if self.amp is not None:
                with self.amp.scale_loss(loss, self.trainer) as scaled:
                    mx.autograd.backward(scaled)
            else:
                loss.backward()
        # Allreduce and update: hvd.DistributedTrainer averages the gradients over the ranks.
        lr = self.schedule(self.global_step)
        self.trainer.set_learning_rate(lr)
        self.trainer.step(x.shape[0])
        self.global_step += 1
        self._last_lr = lr
        self.hooks.after_step(self.net, epoch, step)
        # Metrics: computed on the device; train_epoch sums them over the ranks now and then.
        return batch_stats(loss, logits, labels, batch.pad)

    def _sync_interval(self, pending, sums, epoch, first_step, steps):
        """Sum the last steps' stats over ranks; stop everywhere if any loss was not finite."""
        local = mx.nd.stack(*pending).asnumpy().astype(np.float64)
        finite = np.isfinite(local).all(axis=1)
        flags = np.zeros(self.cfg.log_interval)
        flags[: len(pending)] = ~finite
        vector = np.concatenate([np.where(np.isfinite(local), local, 0.0).sum(axis=0), flags])
        total = self.dist.allreduce_sum(vector, name="train_interval")
        bad = np.flatnonzero(total[4:])
        if bad.size:
            step = first_step + int(bad[0]) + 1
            raise NonFiniteLoss(self._non_finite_message(epoch, step, steps))
        sums.add(total[:4])

    def _non_finite_message(self, epoch, step, steps):
        cfg = self.cfg
        done = [e for _, e in list_checkpoints(cfg.checkpoints, cfg.prefix)] if self.dist.is_root else []
        if done:
            last = (
                "the last good checkpoint is %s-%04d in %s (epoch %d): continue from it with --resume, e.g. "
                "with a lower --lr" % (cfg.prefix, done[-1], cfg.checkpoints, done[-1])
            )
        else:
            last = "no checkpoint was written yet; start again, e.g. with a lower --lr or a warmup"
        return "non-finite training loss (NaN or inf) in epoch %d, step %d of %d (lr %.4g): training stopped; %s." % (
            epoch + 1,
            step,
            steps,
            self._last_lr or 0.0,
            last,
        )

    def _average_bn_statistics(self):
        """Average BatchNorm running mean/var over ranks (each rank saw only its own shard)."""
        if self.dist.size == 1:
            return
        stats = [p for p in self.net.collect_params().values() if p.grad_req == "null"]
        if not stats:
            return
        arrays = [p.data(self.ctx) for p in stats]
        flat = np.concatenate([a.asnumpy().ravel().astype(np.float64) for a in arrays])
        mean = self.dist.allreduce_sum(flat, name="bn_statistics") / self.dist.size
        offset = 0
        for param, array in zip(stats, arrays):
            size = array.size
            param.set_data(mx.nd.array(mean[offset : offset + size].reshape(array.shape), dtype=array.dtype))
            offset += size

    def evaluate(self, split):
        """Loss, top-1 and top-5 on a whole split, every image counted once over all ranks.

        The same loop as ``gluon-inception evaluate`` (:func:`~gluon_inception.deploy.evaluate.evaluate_batches`).

        Returns
        -------
        dict
            ``loss``, ``top1``, ``top5`` (fractions), ``samples``, ``split``.
        """
        r = evaluate_batches(self.net, self.data.eval_iter(split), self.ctx, self.dist, name="eval_" + split)
        return {"loss": r.cross_entropy, "top1": r.top1, "top5": r.top5, "samples": r.count, "split": split}

    def validate(self, epoch):
        """Evaluate on the ``val`` split when due (every ``--val-every`` epochs and after the last).

        Returns
        -------
        dict or None
        """
        cfg = self.cfg
        due = (epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs
        if not due or not self.data.has_split("val"):
            return None
        return self.evaluate("val")

    def end_epoch(self, epoch, train, val=None):
        """Log the epoch (console, human log, JSON line) and write its checkpoint when due (rank 0)."""
        cfg = self.cfg
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
        topk = topk_label(self.data.num_classes)  # "top5" fields hold top-k hits, k = min(5, classes)
        line = "epoch %d/%d  lr %.3g  train loss %.4f top-1 %.2f%% %s %.2f%%" % (
            epoch + 1,
            cfg.epochs,
            train["lr"],
            train["loss"],
            100 * train["top1"],
            topk,
            100 * train["top5"],
        )
        if val is not None:
            record.update(val_loss=val["loss"], val_top1=val["top1"], val_top5=val["top5"], val_samples=val["samples"])
            line += "  | val loss %.4f top-1 %.2f%% %s %.2f%%" % (
                val["loss"], 100 * val["top1"], topk, 100 * val["top5"]
            )
        line += "  | %.1f s, %.1f img/s" % (train["time"], train["img_per_sec"])
        self.log.info(line)
        self.log.record(record)
        due = (epoch + 1) % cfg.save_every == 0 or epoch + 1 == cfg.epochs
        if due and self.dist.is_root:
            self.save_checkpoint(epoch + 1, train, val)
        if epoch + 1 == cfg.epochs:
            self.hooks.state("final", self.net, self.trainer)

    def save_checkpoint(self, epoch, train=None, val=None):
        """Write checkpoint ``epoch`` (completed epochs) atomically; rank 0 only."""
        if not self.dist.is_root:
            return None
        cfg = self.cfg
        meta = {
            "lr": self._last_lr,
            "lr_scale": self.schedule.scale,
            "global_step": self.global_step,
            "metrics": {"train": train, "val": val},
            "config": cfg.to_dict(),
            "model": describe_model(self.net),
            "data": self.data.describe(),
            "preprocessing": self.data.preprocessing.to_dict(),
            "optimizer": {"name": cfg.optimizer, "num_update": int(self.trainer._optimizer.num_update)},
            "ranks": self.dist.size,
        }
        if self.amp is not None:
            meta["amp_loss_scale"] = loss_scaler_state(self.trainer)
        paths = save_checkpoint(cfg.checkpoints, cfg.prefix, epoch, self.net, self.trainer, meta)
        removed = prune_checkpoints(cfg.checkpoints, cfg.prefix, cfg.keep_last)
        self.log.info(
            "checkpoint %s%s", paths["params"], " (removed epochs %s)" % _epoch_ranges(removed) if removed else ""
        )
        return paths

    def final_evaluation(self):
        """Evaluate on ``--final-eval`` (auto: test if present, else val) and print top-1/top-5.

        Returns
        -------
        dict or None
        """
        cfg = self.cfg
        split = cfg.final_eval
        if split == "none":
            return None
        if split == "auto":
            split = "test" if self.data.has_split("test") else "val"
        if not self.data.has_split(split):
            self.log.warning("no %s split to evaluate on", split)
            return None
        result = self.evaluate(split)
        demo = " (DEMO DATA: sklearn digits)" if cfg.demo else ""
        self.log.info(
            "final evaluation on the %s split%s, %d images: top-1 %.2f%%  %s %.2f%%  loss %.4f",
            split,
            demo,
            result["samples"],
            100 * result["top1"],
            topk_label(self.data.num_classes),
            100 * result["top5"],
            result["loss"],
        )
        record = {"event": "final_eval", "epoch": self.cfg.epochs}
        record.update(result)
        self.log.record(record)
        return result

    def run(self, data=None, net=None):
        """Every stage in order: the whole run. Returns the final evaluation (or None).

        Parameters
        ----------
        data : DatasetSource, optional
            Passed to :meth:`open_data`.
        net : mxnet.gluon.HybridBlock, optional
            Passed to :meth:`build_model`.
        """
        self.open_data(data)
        self.build_model(net)
        self.build_trainer()
        self.restore()
        for epoch in self.epochs():
            train = self.train_epoch(epoch)
            val = self.validate(epoch)
            self.end_epoch(epoch, train, val)
        return self.final_evaluation()

    def close(self):
        """Release the log files."""
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def run_training(cfg, dist=None, hooks=None):
    """Run a whole :class:`Training` for ``cfg``; returns the final evaluation (or None).

    Examples
    --------
    >>> from gluon_inception.training import TrainConfig, run_training
    >>> cfg = TrainConfig(demo=True, optimizer="adam", epochs=1).finalize()  # doctest: +SKIP
    >>> run_training(cfg)["top1"]  # doctest: +SKIP
    0.93
    """
    with Training(cfg, dist, hooks) as training:
        return training.run()


# -- formatting ----------------------------------------------------------------------------
def _epoch_ranges(epochs):
    epochs = sorted(epochs)
    if not epochs:
        return ""
    if len(epochs) > 6:
        return "%d-%d" % (epochs[0], epochs[-1])
    return ", ".join(map(str, epochs))


def _running(summary, img_per_sec, lr):
    return "loss %.4f top-1 %.1f%% lr %.3g %.0f img/s" % (summary["loss"], 100 * summary["top1"], lr, img_per_sec)
