"""The training engine behind ``examples/train_imagenet.py`` and ``gluon-inception train``.

One :class:`Training` object walks a run through its stages, each a method; :meth:`Training.run`
calls them in order (init, data, model, trainer, restore, the epochs, the final evaluation), and
:meth:`Training.train_step` is the path of one batch.

Horovod rules it follows: gradients are averaged by ``hvd.DistributedTrainer``; parameters are
broadcast from rank 0 after initialisation and after a resume; every rank runs the same number of
steps (checked with an allreduce each epoch); metrics are sums allreduced over ranks; BatchNorm's
running statistics are averaged over ranks at the end of each epoch, so every rank holds the same
network; stopping (a non-finite loss, a signal, a request for a checkpoint) is decided on
allreduced flags, so all ranks stop together, at the same step.
"""

import io
import math
import os
import time

import numpy as np

from .. import dist as dist_module
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
from ..cpu import amx_in_use
from ..data import DatasetSource, verify_dataset
from ..data.demo import demo_banner
from ..deploy.evaluate import evaluate_batches
from ..deploy.metrics import MetricSums, batch_stats, topk_label
from ..errors import GluonInceptionError
from ..fileio import remove_stale_partials
from ..models.googlenet import GoogLeNet, describe_model, model_summary
from ..zoo.registry import get_model
from . import amx
from .config import ConfigError, merge_for_resume
from .distill import Teacher, build_like, distillation_loss, load_teacher, teacher_preprocessing
from .ema import WeightEMA, read_ema, save_ema
from .finetune import configure_backbone, load_pretrained_start
from .hooks import FaultInjection
from .logs import RunLog, TensorBoardLog, require_tensorboardx
from .precision import check_precision, init_amp, loss_scaler_state, restore_loss_scaler, trainer_kwargs
from .preemption import EXIT_INTERRUPTED, EXIT_PREEMPTED, STOP_SIGNALS, StopSignals, resume_command, signal_name
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


class TrainingInterrupted(TrainingStopped):
    """A signal stopped the run at a step boundary, after a checkpoint of that step was written.

    Attributes
    ----------
    exit_code : int
        75 after SIGTERM or SIGUSR1 (preemption), 130 after SIGINT.
    """

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


#: A file that asks rank 0 for a mid-epoch checkpoint at the next step (removed once written).
SAVE_NOW = "SAVE_NOW"


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
        self.start_step = int(self.resume_meta.get("step") or 0) if self.resume_meta else 0
        check_precision(self.cfg.precision, self.ctx)
        # bfloat16 on a CPU whose AMX the user switched on: the AMX rules apply (training/amx.py).
        self.on_amx = self.cfg.precision == "bfloat16" and self.ctx.device_type == "cpu" and amx_in_use()
        if not (self.cfg.demo or self.cfg.data):
            raise ConfigError(NO_DATA_MESSAGE)
        if self.dist.hvd is None:
            self.log.info("Horovod is not available (horovod.mxnet cannot be imported): training in a single process.")
        if self.cfg.tensorboard:
            self._root_decides(lambda: bool(require_tensorboardx()), "tensorboard")  # one clear line if missing
        self.tensorboard = TensorBoardLog(self.cfg.tensorboard, enabled=self.dist.is_root)
        self.best = (self.resume_meta or {}).get("best")  # {"epoch", "val_top1"} of PREFIX-best
        self.stop_signals = StopSignals(self.cfg.stop_timeout)
        self._requests = None  # the ranks' stop/save flags of the last step, being summed
        self._held_request = None  # a request that came inside an --accumulate group
        self._epoch_end_request = None
        self._epoch_end_written = False
        self._last_save = time.monotonic()
        self.net = self.trainer = self.schedule = self.data = self.amp = None
        self.teacher = self.ema = None
        self.global_step = self._accumulated = 0
        self.iters_per_epoch = self._last_lr = self._train_iter = self._train_iter_epoch = None
        self.updates_per_epoch = None
        self._ce_sparse = mx.gluon.loss.SoftmaxCrossEntropyLoss()
        self._ce_dense = mx.gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False)
        self.stop_signals.install()  # last: a refused run leaves the handlers as they were

    # -- helpers ---------------------------------------------------------------------------
    def _root_decides(self, func, name):
        """Run ``func`` on rank 0 and give every rank its result (or raise its error everywhere)."""
        outcome = None
        if self.dist.is_root:
            try:
                outcome = ("ok", func())
            except (ConfigError, CheckpointError, amx.LayoutProbeError) as err:
                outcome = ("error", type(err).__name__, str(err))
        outcome = self.dist.broadcast_object(outcome, name=name)
        if outcome[0] == "error":
            kinds = {cls.__name__: cls for cls in (ConfigError, CheckpointError, amx.LayoutProbeError)}
            raise kinds[outcome[1]](outcome[2])
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
            done = list_checkpoints(folder, prefix)[-1][1] if latest else 0
            mid = [pos for pos in list_mid_epoch_checkpoints(folder, prefix) if pos[0] >= done]
            if mid:  # a mid-epoch checkpoint newer than the last epoch's: continue from its step
                return read_checkpoint_meta(checkpoint_paths(folder, prefix, *mid[-1])["params"])
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
        self.amp = init_amp(cfg.precision)  # the loss-scaling AMP (float16) or None; bfloat16 needs no scaling
        built_here = net is None
        if built_here:
            mx.random.seed(cfg.seed)
            if cfg.pretrained:
                net = self._pretrained_start()
            else:
                net = get_model(cfg.model, ctx=self.ctx, **self._model_kwargs())
        if isinstance(net, GoogLeNet):
            try:
                net.check_input_size(cfg.image_size)
            except ValueError as err:
                raise ConfigError("--image-size %d: %s" % (cfg.image_size, err)) from None
        if self.on_amx:
            self._prepare_for_amx(net, train=built_here and cfg.hybridize)
        if cfg.no_wd_bn_bias:
            for param in net.collect_params(".*(gamma|beta|bias)$").values():
                param.wd_mult = 0.0
        if cfg.freeze_backbone or cfg.backbone_lr_mult != 1.0:
            count = configure_backbone(net, freeze=cfg.freeze_backbone, lr_mult=cfg.backbone_lr_mult)
            how = "frozen (BatchNorm in inference mode)" if cfg.freeze_backbone else "lr x %g" % cfg.backbone_lr_mult
            self.log.info("backbone: %s weights %s; the classifier learns at the full lr", format(count, ","), how)
        if cfg.accumulate > 1:  # gradients add up over the micro-batches of one update (zeroed after it)
            for param in net.collect_params().values():
                if param.grad_req == "write":
                    param.grad_req = "add"
        # Structural names: the same on every rank, whatever else a rank built before.
        self.dist.broadcast_parameters(net._collect_params_with_prefix())
        if cfg.hybridize:
            net.hybridize(static_alloc=True, static_shape=True)
        self.net = net
        self.log.info("model: %s", model_summary(net))
        if cfg.teacher:
            self.teacher = self._build_teacher()
        if cfg.ema_decay:
            self.ema = WeightEMA(net, cfg.ema_decay, warmup=cfg.ema_warmup)
            self.log.info("weight EMA: decay %g%s, evaluated beside the raw weights", cfg.ema_decay,
                          " with warm-up" if cfg.ema_warmup else "")  # fmt: skip
        return net

    def _model_kwargs(self):
        """The keyword arguments ``get_model(cfg.model, ...)`` builds this run's network with."""
        cfg = self.cfg
        kwargs = {"classes": self.data.num_classes, "aux_logits": cfg.aux_logits, "dropout": cfg.dropout}
        if cfg.model == "googlenet":
            kwargs["topology"] = cfg.topology
        return kwargs

    def _prepare_for_amx(self, net, train=True, what="--precision bfloat16"):
        """bfloat16 on AMX (:func:`.amx.prepare_network`): refuse a broken ``--image-size``; for the network
        that trains, pad its inputs and keep in float32 the BatchNorms that rank 0's probe names (every
        rank applies the same list)."""
        cfg = self.cfg

        def probe():  # on rank 0, its answer (or its error) on every rank
            return amx.find_reference_norms(cfg.model, self._model_kwargs(), cfg.batch_size, cfg.image_size)

        find_norms = (lambda: self._root_decides(probe, "layouts")) if train else None
        padded, norms = amx.prepare_network(net, cfg.image_size, find_norms, what)
        if padded:
            self.log.info("bfloat16 on AMX: %d convolution(s) read their input zero-padded to a multiple of 32 "
                          "channels, for AMX kernels: %s", len(padded), ", ".join(padded))  # fmt: skip
        if norms:
            self.log.info("bfloat16 on AMX: %d BatchNorm layer(s) run in float32, where oneDNN has no fast bfloat16 "
                          "kernel for their mixed layouts: %s", len(norms), ", ".join(norms))  # fmt: skip

    def _pretrained_start(self):
        """The network of ``--pretrained``: loaded on rank 0, built alike elsewhere (broadcast follows).

        On a resume the checkpoint's weights replace these anyway: nothing is loaded then. The data
        is normalised as the weights expect (on a resume: as the checkpoint records).
        """
        cfg, classes, holder = self.cfg, self.data.num_classes, {}

        def load():
            if self.resume_meta is not None:
                return {"source": None, "topology": cfg.topology, "preprocessing": self.resume_meta["preprocessing"]}
            holder["net"], info = load_pretrained_start(cfg, classes, self.ctx)
            return info

        info = self._root_decides(load, "pretrained")
        cfg.topology = info["topology"] or cfg.topology  # saved with the checkpoints' config
        net = holder.get("net")
        if net is None:
            net = get_model(cfg.model, ctx=self.ctx, **self._model_kwargs())
        mean, std = tuple(info["preprocessing"]["mean"]), tuple(info["preprocessing"]["std"])
        if not hasattr(self.data, "mean"):
            self.log.warning("the data source has no mean/std to set: make sure it normalises as the weights "
                             "expect, mean %s and std %s", _rgb(mean), _rgb(std))  # fmt: skip
        elif (tuple(self.data.mean), tuple(self.data.std)) != (mean, std):
            self.data.mean, self.data.std = mean, std
            self.log.info("normalisation: the pretrained weights' mean %s and std %s (not the dataset's)",
                          _rgb(mean), _rgb(std))  # fmt: skip
        if info["source"]:
            self.log.info("fine-tuning from %s: a new %d-class classifier", info["source"], classes)
        return net

    def _build_teacher(self):
        """``--teacher``: loaded and checked on rank 0, built alike and broadcast on the others."""
        cfg, holder = self.cfg, {}

        def load():
            holder["net"], info = load_teacher(
                cfg.teacher, self.data.num_classes, getattr(self.data, "classes", None), cfg.image_size, self.ctx
            )
            return info

        info = self._root_decides(load, "teacher")
        net = holder.get("net") or build_like(info, self.ctx)
        if self.on_amx:  # the teacher runs in bfloat16 too
            self._prepare_for_amx(net, train=False, what="--precision bfloat16 with --teacher %s" % cfg.teacher)
        self.dist.broadcast_parameters({"teacher." + k: p for k, p in net._collect_params_with_prefix().items()})
        expects = teacher_preprocessing(info)
        teacher = Teacher(net, expects, self.data.preprocessing, self.ctx)
        self.log.info(
            "distilling from %s (T %g, weight %g)%s", info["source"], cfg.distill_temperature, cfg.distill_weight,
            "; its input is re-normalised to its own mean/std" if teacher.adapted else "",
        )  # fmt: skip
        if expects.crop_size != cfg.image_size:
            self.log.info("the teacher expects %d px crops and sees %d px ones (it pools globally)",
                          expects.crop_size, cfg.image_size)  # fmt: skip
        return teacher

    def _updates_done(self):
        """Optimizer updates before the resume point (a mid-epoch stop is always at an update boundary)."""
        return self.start_epoch * self.updates_per_epoch + -(-self.start_step // self.cfg.accumulate)

    def build_trainer(self):
        """``hvd.DistributedTrainer`` (``gluon.Trainer`` without Horovod) and the lr schedule."""
        cfg = self.cfg
        it = self._train_iter_for(self.start_epoch)
        self.iters_per_epoch = len(it)
        # The schedule counts updates: with --accumulate N one per N steps (the last may take fewer).
        self.updates_per_epoch = -(-self.iters_per_epoch // cfg.accumulate)
        global_batch = cfg.batch_size * self.dist.size * cfg.accumulate
        self.schedule = LRSchedule(cfg, self.updates_per_epoch, global_batch)
        self._check_position()
        self.global_step = self._updates_done()
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
        accumulate = " x %d accumulated" % cfg.accumulate if cfg.accumulate > 1 else ""
        self.log.info(
            "optimizer: %s, %d rank(s) x batch %d%s = %d per update, %d steps (%d updates) per epoch; lr %s",
            cfg.optimizer,
            self.dist.size,
            cfg.batch_size,
            accumulate,
            global_batch,
            self.iters_per_epoch,
            self.updates_per_epoch,
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
        self.restore_ema(meta)
        if self.start_step:
            self._restore_rank_state(meta)
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
        self.global_step = self._updates_done()
        self.trainer.set_learning_rate(self.schedule(self.global_step))
        where = "after epoch %d" % self.start_epoch
        if self.start_step:
            where = "epoch %d, after step %d of %d" % (self.start_epoch + 1, self.start_step, self.iters_per_epoch)
        self.log.info(
            "resumed from %s (%s): lr %.4g (%s)",
            meta["paths"]["params"],
            where,
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

    def _loss(self, outputs, targets, teacher_logits=None):
        sparse = targets.ndim == 1
        loss_fn = self._ce_sparse if sparse else self._ce_dense
        main, aux = (outputs[0], outputs[1:]) if isinstance(outputs, (tuple, list)) else (outputs, ())
        loss = loss_fn(main, targets)
        if teacher_logits is not None:  # the main head only; aux heads keep their plain cross-entropy
            cfg = self.cfg
            loss = distillation_loss(main, teacher_logits, loss, cfg.distill_temperature, cfg.distill_weight)
        for head in aux:
            loss = loss + self.cfg.aux_weight * loss_fn(head, targets)
        return main, loss

    def train_epoch(self, epoch):
        """One pass over every rank's shard; returns the allreduced train metrics.

        After a resume from a mid-epoch checkpoint, the resumed epoch continues at its saved
        step: the iterator of the epoch skips the batches already trained on (decoding them), and
        the metrics start from the saved sums. Dropout and mixup are seeded per step, so the rest
        of the epoch is the one an uninterrupted run would have trained.

        At every step boundary the ranks exchange their stop/save flags (an allreduce started at
        one step and read at the next, so that it can overlap the step; its cost is measured by
        bench/preemption_overhead.py): a signal on any rank stops all of them at the same
        boundary, after a mid-epoch checkpoint.

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
        TrainingInterrupted
            On every rank, after SIGTERM, SIGUSR1 or SIGINT on any rank, once the checkpoint of
            the step is written.
        """
        cfg = self.cfg
        it = self._train_iter_for(epoch)
        steps = len(it)
        self._act_on_epoch_end_request(epoch)
        sums = MetricSums()
        first, elapsed_before, first_lr = 0, 0.0, self.schedule(self.global_step)
        batches = iter(it)
        if epoch == self.start_epoch and self.start_step:
            first, position = self.start_step, self.resume_meta["position"]
            sums.add(position["sums"])
            elapsed_before, first_lr = float(position["time"]), float(position["lr"])
            skip_start = time.time()
            for _ in range(first):  # ImageRecordIter cannot seek: decode the batches already trained on
                next(batches)
            self.log.info("skipped %d batches already trained on in %.1f s", first, time.time() - skip_start)
            self.start_step = 0
        pending = []
        bar = self.log.bar(steps, "epoch %d/%d" % (epoch + 1, cfg.epochs))
        if first:
            bar.update(first)
        start = time.time() - elapsed_before
        interval_start = time.time()
        try:
            for step, batch in enumerate(batches, start=first):
                # Seeded per step, so that a run resumed mid-epoch draws the same dropout and mixup.
                mx.random.seed(_seed_for(cfg.seed, epoch, self.dist.rank, step), ctx=self.ctx)
                rng = np.random.RandomState(_seed_for(cfg.seed, epoch, self.dist.rank, 1, step))
                pending.append(self.train_step(batch, epoch, step, rng))
                done = step + 1
                request, self._held_request = _merge_requests(self._held_request, self._read_requests()), None
                if request and not self.update_due(step):
                    # Gradients of a part-done --accumulate group are not saved: stop or save at its end.
                    self._held_request, request = request, None
                if pending and (done % cfg.log_interval == 0 or done == steps or request):
                    total = self._sync_interval(pending, sums, epoch, done - len(pending), steps)
                    now = time.time()
                    self._interval_scalars(total, now - interval_start)
                    interval_start = now
                    summary = _running(sums.summary(), sums.samples / max(now - start, 1e-9), self._last_lr)
                    bar.set_postfix_str(summary, refresh=False)
                    bar.update(len(pending))
                    pending = []
                if request and done == steps:
                    self._epoch_end_request = request  # end_epoch acts on it after the epoch's checkpoint
                elif request:
                    position = {"sums": sums.values.tolist(), "time": time.time() - start, "lr": first_lr}
                    self._save_position(epoch, done, position, request)
                self._send_requests()
        finally:
            bar.close()
        elapsed = time.time() - start
        self._average_bn_statistics()
        result = sums.summary()
        result.update(
            time=elapsed, img_per_sec=sums.samples / max(elapsed, 1e-9), lr=first_lr, lr_end=self._last_lr, steps=steps
        )
        return result

    def _local_requests(self):
        """This rank's flags: one per stop signal received, and (rank 0) whether a checkpoint is due."""
        self.stop_signals.check()
        flags = [float(self.stop_signals.received == signum) for signum in STOP_SIGNALS]
        save = 0.0
        if self.dist.is_root:
            minutes = self.cfg.save_every_minutes
            due = minutes > 0 and time.monotonic() - self._last_save >= 60.0 * minutes
            save = float(due or os.path.exists(os.path.join(self.cfg.checkpoints, SAVE_NOW)))
        return flags + [save]

    def _send_requests(self):
        """Start summing this step's flags over the ranks; :meth:`_read_requests` reads them a step later."""
        self._requests = self.dist.allreduce_async(self._local_requests(), name="stop_save_requests")

    def _read_requests(self):
        """The ranks' flags sent at the previous step (the allreduce has had a whole step to finish).

        Returns
        -------
        dict or None
            ``{"stop": signal number or None, "save": bool}`` when any rank asked for something.
        """
        previous, self._requests = self._requests, None
        flags = previous.result() if previous is not None else None
        if flags is None or not flags.any():
            return None
        stops = [signum for signum, flag in zip(STOP_SIGNALS, flags) if flag > 0]
        return {"stop": stops[0] if stops else None, "save": bool(flags[-1] > 0)}

    def _save_position(self, epoch, step, position, request):
        """Write the mid-epoch checkpoint of (``epoch`` done, ``step`` done); stop if a signal asked."""
        if request["stop"] is not None:
            name = signal_name(request["stop"])
            self.log.info("%s received: stopping every rank after step %d of epoch %d", name, step, epoch + 1)
        position.update(step=step, steps=self.iters_per_epoch, ranks=self.dist.size, batch_size=self.cfg.batch_size,
                        accumulate=self.cfg.accumulate)
        ranks = self._gather_rank_state()
        paths = None
        if self.dist.is_root:
            paths = self._write_checkpoint(epoch, self._checkpoint_meta(), step=step, ranks=ranks, position=position)
            removed = prune_mid_epoch_checkpoints(self.cfg.checkpoints, self.cfg.prefix, keep=(epoch, step))
            self.log.info("mid-epoch checkpoint %s%s", paths["params"], " (older ones removed)" if removed else "")
            save_now = os.path.join(self.cfg.checkpoints, SAVE_NOW)
            if os.path.exists(save_now):
                os.remove(save_now)
        self._last_save = time.monotonic()
        if request["stop"] is not None:
            self._stop(request["stop"], paths)

    def _act_on_epoch_end_request(self, epoch):
        """A request that came at the last step of the previous epoch: stop (or save) before this one."""
        request, self._epoch_end_request = self._epoch_end_request, None
        if request is None:
            return
        if self._epoch_end_written:
            if request["stop"] is not None:
                self._stop(request["stop"], checkpoint_paths(self.cfg.checkpoints, self.cfg.prefix, epoch))
            return
        zero = MetricSums()
        position = {"sums": zero.values.tolist(), "time": 0.0, "lr": self.schedule(self.global_step)}
        self._save_position(epoch, 0, position, request)

    def _stop(self, signum, paths):
        """Every rank: wait until rank 0 has written the checkpoint, then end the run."""
        self.dist.barrier("stopped_on_signal")
        # Under a launcher, the SIGTERM it sends once the first rank has left must not cut the others short.
        self.stop_signals.uninstall(ignore_termination=dist_module.launched_by_horovod())
        code = EXIT_INTERRUPTED if signum == STOP_SIGNALS[0] else EXIT_PREEMPTED
        written = " %s written;" % os.path.splitext(paths["params"])[0] if paths else ""
        raise TrainingInterrupted(
            "stopped by %s at a step boundary;%s continue with:\n  %s"
            % (signal_name(signum), written, resume_command(self.dist.size)),
            code,
        )

    def _gather_rank_state(self):
        """Every rank's BatchNorm running statistics (they differ until the epoch ends), as .npz bytes on rank 0."""
        stats = _running_statistics(self.net)
        flat = [p.data(self.ctx).asnumpy().ravel() for _, p in stats]
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
        data = None
        if self.dist.is_root:
            verify_checkpoint_files(meta, kinds=("ranks",))
            with open(meta["paths"]["ranks"], "rb") as f:
                data = f.read()
        data = self.dist.broadcast_object(data, name="rank_state")
        saved = np.load(io.BytesIO(data), allow_pickle=False)
        stats = _running_statistics(self.net)
        if [name for name, _ in stats] != [str(n) for n in saved["names"]]:
            raise CheckpointError("%s holds the statistics of another network" % meta["paths"]["ranks"])
        row, offset = saved["stats"][self.dist.rank], 0
        for _, param in stats:
            shape = param.shape
            size = int(np.prod(shape))
            param.set_data(mx.nd.array(row[offset : offset + size].reshape(shape), dtype=param.dtype))
            offset += size

    def _check_position(self):
        """A mid-epoch checkpoint continues only where every rank's shard and batches are the same."""
        if not self.start_step:
            return
        position = self.resume_meta["position"]
        now = {"ranks": self.dist.size, "batch_size": self.cfg.batch_size, "steps": self.iters_per_epoch}
        if position.get("accumulate", 1) != self.cfg.accumulate:
            raise ConfigError(
                "%s was written mid-epoch with --accumulate %d: continue it with the same --accumulate, or restart "
                "from the last epoch's checkpoint with --start-epoch %d"
                % (self.resume_meta["paths"]["params"], position.get("accumulate", 1), self.start_epoch)
            )
        if any(position[key] != value for key, value in now.items()):
            raise ConfigError(
                "%s was written mid-epoch by %d rank(s) with --batch-size %d (%d steps per epoch); this run has %d "
                "rank(s), --batch-size %d, %d steps: continue it with the same ranks and batch size, or restart from "
                "the last epoch's checkpoint with --start-epoch %d"
                % (self.resume_meta["paths"]["params"], position["ranks"], position["batch_size"], position["steps"],
                   now["ranks"], now["batch_size"], now["steps"], self.start_epoch)
            )  # fmt: skip

    def _interval_scalars(self, total, seconds):
        samples = max(total[3], 1.0)
        self.tensorboard.scalars(
            {
                "train/loss": total[0] / samples,
                "train/top1": total[1] / samples,
                "train/top5": total[2] / samples,
                "train/lr": self._last_lr,
                "train/img_per_sec": total[3] / max(seconds, 1e-9),
            },
            self.global_step,
        )

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
        if x.dtype == np.uint8:  # the iterator left colour jitter, cast and mean/std to this device
            x = self.data.device_augment(x)
        y = batch.label[0].as_in_context(self.ctx)
        mixup = cfg.mixup > 0 and epoch < cfg.epochs - cfg.mixup_off_epochs
        x, targets, labels = self._targets(x, y, rng, mixup)
        # Teacher (--teacher): its logits of the same (mixed) images, in inference mode, no gradient.
        teacher_logits = self.teacher(x) if self.teacher is not None else None
        with mx.autograd.record():
            # Forward: with aux heads the network returns (logits, aux1, aux2) while recording.
            outputs = self.net(x)
            # Loss: cross-entropy of the logits (with a teacher: and the distillation term), plus
            # aux_weight times that of each aux head.
            logits, loss = self._loss(outputs, targets, teacher_logits)
            # Backward: under float16, on the loss scaled by AMP's dynamic loss scale.
            if self.amp is not None:
                with self.amp.scale_loss(loss, self.trainer) as scaled:
                    mx.autograd.backward(scaled)
            else:
                loss.backward()
        # Allreduce and update: hvd.DistributedTrainer averages the gradients over the ranks; with
        # --accumulate N only after the N-th micro-batch, over all the images they hold.
        lr = self.schedule(self.global_step)
        self._accumulated += x.shape[0]
        if self.update_due(step):
            self.trainer.set_learning_rate(lr)
            self.trainer.step(self._accumulated)
            self._accumulated = 0
            if cfg.accumulate > 1:
                self.net.collect_params().zero_grad()
            if self.ema is not None:
                self.ema.update()
            self.global_step += 1
        self._last_lr = lr
        self.hooks.after_step(self.net, epoch, step)
        # Metrics: computed on the device; train_epoch sums them over the ranks now and then.
        return batch_stats(loss, logits, labels, batch.pad)

    def update_due(self, step):
        """Whether 0-based ``step`` of an epoch ends an update: every ``--accumulate`` steps, and the last."""
        return (step + 1) % self.cfg.accumulate == 0 or step + 1 == self.iters_per_epoch

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
        return total[:4]

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
        stats = [
            p for p in self.net.collect_params().values()
            if p.grad_req == "null" and p.name.endswith(("running_mean", "running_var"))
        ]  # fmt: skip
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
        result = {"loss": r.cross_entropy, "top1": r.top1, "top5": r.top5, "samples": r.count, "split": split}
        if self.ema is not None:
            with self.ema.applied():
                r = evaluate_batches(self.net, self.data.eval_iter(split), self.ctx, self.dist, name="ema_" + split)
            result.update(ema_loss=r.cross_entropy, ema_top1=r.top1, ema_top5=r.top5)
        return result

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
            record.update({"val_" + k: v for k, v in val.items() if k.startswith("ema_")})
            line += "  | val loss %.4f top-1 %.2f%% %s %.2f%%" % (
                val["loss"], 100 * val["top1"], topk, 100 * val["top5"]
            )
        line += "  | %.1f s, %.1f img/s" % (train["time"], train["img_per_sec"])
        self.log.info(line)
        self.log.record(record)
        shown = ("lr", "train_loss", "train_top1", "train_top5", "img_per_sec", "val_loss", "val_top1", "val_top5")
        self.tensorboard.scalars({"epoch/" + k: record[k] for k in shown if k in record}, epoch + 1)
        self.tensorboard.flush()
        if val is not None and (self.best is None or val["top1"] > self.best["val_top1"]):
            self.best = {"epoch": epoch + 1, "val_top1": val["top1"]}
            if self.dist.is_root:
                self.save_checkpoint(epoch + 1, train, val, best=True)
        due = (epoch + 1) % cfg.save_every == 0 or epoch + 1 == cfg.epochs
        if due and self.dist.is_root:
            self.save_checkpoint(epoch + 1, train, val)
        self._epoch_end_written = due
        if due:
            self._last_save = time.monotonic()
        if epoch + 1 == cfg.epochs:
            if self._requests is not None:  # the last step's flags: nothing is left to stop
                self._requests, _ = None, self._requests.result()
            self.hooks.state("final", self.net, self.trainer)

    def save_checkpoint(self, epoch, train=None, val=None, best=False):
        """Write checkpoint ``epoch`` (completed epochs), or ``PREFIX-best``, atomically; rank 0 only.

        An epoch's checkpoint replaces the mid-epoch ones (they are removed) and is pruned to
        ``--keep-last``; ``PREFIX-best`` is never pruned.
        """
        if not self.dist.is_root:
            return None
        cfg = self.cfg
        paths = self._write_checkpoint(epoch, self._checkpoint_meta(train, val), best=best)
        if best:
            self.log.info("best validation top-1 so far (%.2f%%): %s", 100 * val["top1"], paths["params"])
            return paths
        prune_mid_epoch_checkpoints(cfg.checkpoints, cfg.prefix)
        removed = prune_checkpoints(cfg.checkpoints, cfg.prefix, cfg.keep_last)
        self.log.info(
            "checkpoint %s%s", paths["params"], " (removed epochs %s)" % _epoch_ranges(removed) if removed else ""
        )
        return paths

    def _checkpoint_meta(self, train=None, val=None):
        """The ``.json`` content every kind of checkpoint shares."""
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
            "best": self.best,
        }
        if self.amp is not None:
            meta["amp_loss_scale"] = loss_scaler_state(self.trainer)
        return meta

    def _write_checkpoint(self, epoch, meta, step=None, ranks=None, position=None, best=False):
        """The one place every checkpoint (epoch end, mid-epoch, best) is written through; rank 0.

        Parameters
        ----------
        epoch : int
            Completed epochs.
        meta : dict
            From :meth:`_checkpoint_meta`.
        step, ranks, position
            A mid-epoch checkpoint: steps done in epoch ``epoch + 1``, every rank's state
            (``.ranks``), and where the epoch stood (metric sums, time, first lr).
        best : bool
            ``PREFIX-best``: parameters and ``.json`` only.
        """
        cfg = self.cfg
        if step is not None:
            meta = dict(meta, step=step, position=position)
        at = checkpoint_paths(cfg.checkpoints, cfg.prefix, "best" if best else epoch, step)
        meta["ema"] = self.save_ema(at["params"])  # the weight EMA's file is written before the .json
        trainer = None if best else self.trainer
        return save_checkpoint(
            cfg.checkpoints, cfg.prefix, epoch, self.net, trainer, meta, step=step, ranks=ranks, best=best
        )

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
        if self.ema is not None:
            self.log.info(
                "final evaluation of the weight EMA (decay %g): top-1 %.2f%%  %s %.2f%%  loss %.4f",
                self.ema.decay,
                100 * result["ema_top1"],
                topk_label(self.data.num_classes),
                100 * result["ema_top5"],
                result["ema_loss"],
            )
        record = {"event": "final_eval", "epoch": self.cfg.epochs}
        record.update(result)
        self.log.record(record)
        return result

    def save_ema(self, params_path):
        """Write the weight EMA beside the checkpoint ``params_path`` (rank 0, before its ``.json``).

        Returns the dict the checkpoint's ``.json`` keeps as ``"ema"`` (None without ``--ema-decay``).
        """
        return save_ema(self.ema, params_path) if self.dist.is_root else None

    def restore_ema(self, meta):
        """Put the EMA of the resumed checkpoint ``meta`` back on every rank (rank 0 reads, then broadcast).

        A checkpoint written without an EMA starts the average from the restored weights.
        """
        if self.ema is None:
            return
        self.ema.reset()

        def read():
            saved = read_ema(meta)
            if saved is not None:
                self.ema.load_arrays(*saved)
            return saved is not None

        if self._root_decides(read, "ema_found"):
            self.dist.broadcast_parameters({"ema.%s" % n: a for n, a in zip(self.ema.names, self.ema.shadow)})
            self.ema.updates = int(self.dist.broadcast_object(self.ema.updates, name="ema_updates"))
        else:
            self.log.info("%s holds no weight EMA: the average starts from its weights", meta["paths"]["params"])

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
        """Release the log files and the signal handlers."""
        self.stop_signals.uninstall()
        self.tensorboard.close()
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
def _running_statistics(net):
    """``(name, parameter)`` of the BatchNorm running mean/var (not of weights a frozen backbone holds fixed)."""
    return [(name, p) for name, p in net.collect_params().items()
            if p.grad_req == "null" and name.endswith(("running_mean", "running_var"))]  # fmt: skip


def _merge_requests(held, new):
    """One stop/save request from one held back at a step inside an accumulation group and a new one."""
    if held is None or new is None:
        return held or new
    return {"stop": held["stop"] if held["stop"] is not None else new["stop"], "save": held["save"] or new["save"]}


def _epoch_ranges(epochs):
    epochs = sorted(epochs)
    if not epochs:
        return ""
    if len(epochs) > 6:
        return "%d-%d" % (epochs[0], epochs[-1])
    return ", ".join(map(str, epochs))


def _rgb(values):
    return "(%s)" % ", ".join("%.1f" % v for v in values)


def _running(summary, img_per_sec, lr):
    return "loss %.4f top-1 %.1f%% lr %.3g %.0f img/s" % (summary["loss"], 100 * summary["top1"], lr, img_per_sec)
