"""The training engine behind ``examples/train_imagenet.py`` and ``gluon-inception train``.

One :class:`Training` object walks a run through its stages, each a method; :meth:`Training.run`
calls them in order (init, data, model, trainer, restore, the epochs, the final evaluation), and
:meth:`Training.train_step` is the path of one batch. Its collaborators each do one job:
:class:`~gluon_inception.training.checkpointing.Checkpoints` writes and restores the checkpoints,
:class:`~gluon_inception.training.preemption.Requests` agrees with the other ranks on stop and
checkpoint requests, ``precision`` sets up float16/bfloat16, and ``logs`` tells the user.

Horovod rules it follows: gradients are averaged by ``hvd.DistributedTrainer``; parameters are
broadcast from rank 0 after initialisation and after a resume; every rank runs the same number of
steps (checked with an allreduce each epoch); metrics are sums allreduced over ranks; BatchNorm's
running statistics are averaged over ranks at the end of each epoch, so every rank holds the same
network; stopping (a non-finite loss, a signal, a request for a checkpoint) is decided on
allreduced flags, so all ranks stop together, at the same step.
"""

import contextlib
import os
import time

import numpy as np

from .. import dist as dist_module
from .._compat import mx
from ..checkpoint import CheckpointError, list_checkpoints
from ..cpu import amx_in_use
from ..data import DatasetSource, verify_dataset
from ..data.demo import demo_banner
from ..deploy.evaluate import evaluate_batches
from ..deploy.metrics import MetricSums, batch_stats
from ..errors import GluonInceptionError
from ..fileio import file_lock
from ..models.googlenet import GoogLeNet, model_summary
from ..zoo.registry import get_model
from . import amx
from .checkpointing import Checkpoints, check_position, locate_resume, running_statistics
from .config import ConfigError, merge_for_resume
from .distill import Teacher, build_like, distillation_loss, load_teacher, teacher_preprocessing
from .ema import WeightEMA
from .finetune import configure_backbone, load_pretrained_start, normalise_as
from .hooks import FaultInjection
from .logs import (
    EpochMetrics,
    RunLog,
    TensorBoardLog,
    log_epoch,
    log_final_evaluation,
    require_tensorboardx,
)
from .precision import check_precision, init_amp, trainer_kwargs
from .preemption import Requests, TrainingStopped
from .schedules import LRSchedule

#: The lock file a run holds in its checkpoint folder (``fileio.file_lock``: it names the holder).
RUN_LOCK = ".run.lock"

NO_DATA_MESSAGE = (
    "no training data given. Either\n"
    "  * prepare ImageNet (or any folder-per-class image tree) once:\n"
    "      gluon-inception prepare ILSVRC2012/train data/imagenet --val-dir ILSVRC2012/val\n"
    "    and pass --data data/imagenet, or\n"
    "  * pass --demo to train on the embedded demo dataset (sklearn digits, built on first use)."
)


#: The errors :meth:`Training._root_decides` raises on every rank when rank 0 meets them.
_SHARED_ERRORS = (ConfigError, CheckpointError)


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
        Finalized config (:func:`~gluon_inception.training.config_from_args` or ``TrainConfig(...).finalize()``);
        on a resume, :attr:`cfg` is the checkpoint's with this invocation's explicit options on top.
    dist : gluon_inception.dist.Dist, optional
        Default :func:`gluon_inception.dist.get` (Horovod when launched by ``horovodrun``).
    hooks : TrainingHooks, optional
        Called at fixed points of a step (:mod:`gluon_inception.training.hooks`); default the fault
        injection that tests drive through environment variables.

    Attributes
    ----------
    start_epoch : int
        Epochs already done (0, or the resumed checkpoint's epoch).
    net, trainer, schedule, data
        Set by the stages.
    checkpoints, requests : Checkpoints, Requests
        Write and restore the checkpoints; agree with the other ranks on stop and checkpoint requests.

    Raises
    ------
    ConfigError
        Bad options, no data, float16 without a GPU, a folder that holds a run (without ``--resume``).
    CheckpointError
        ``--start-epoch N`` without that checkpoint (the message lists the available epochs).
    """

    def __init__(self, cfg, dist=None, hooks=None):
        self.dist = dist if dist is not None else dist_module.get()
        self.cfg = cfg
        self.ctx = self.dist.context()
        self.log = RunLog(cfg.checkpoints, cfg.prefix, enabled=self.dist.is_root, progress=cfg.progress)
        self.hooks = hooks if hooks is not None else FaultInjection(self.dist.rank)
        # One run per checkpoint folder, from here to close(): a second one refuses, naming this one.
        self._held = contextlib.ExitStack()
        self._root_decides(self._hold_folder, "run_lock")
        try:
            self._setup()
        except BaseException:
            self._held.close()
            raise

    def _hold_folder(self):
        folder = self.cfg.checkpoints
        if not os.path.isdir(folder):
            os.makedirs(folder)
            self._held.callback(_remove_if_empty, folder)  # a refused run leaves no folder behind
        what = "checkpoint folder %s" % folder
        return self._held.enter_context(file_lock(os.path.join(folder, RUN_LOCK), what=what, exclusive=True))

    def _setup(self):
        cfg = self.cfg
        self.resume_meta = self._root_decides(lambda: locate_resume(cfg, self.log), "resume_meta")
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
        self.checkpoints = Checkpoints(self)
        self.requests = Requests(self.dist, self.cfg, self.log, self.checkpoints)
        self.net = self.trainer = self.schedule = self.data = self.amp = self.teacher = self.ema = None
        self.global_step = self._accumulated = 0
        self.iters_per_epoch = self.updates_per_epoch = self.last_lr = self._train_iter = self._train_iter_epoch = None
        self._ce_sparse = mx.gluon.loss.SoftmaxCrossEntropyLoss()
        self._ce_dense = mx.gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False)
        self.requests.signals.install()  # last: a refused run leaves the handlers as they were

    def _root_decides(self, func, name):
        """Run ``func`` on rank 0 and give every rank its result (or raise its error everywhere)."""
        return self.dist.agree(func, name, errors=_SHARED_ERRORS + (GluonInceptionError, OSError))

    def open_data(self, data=None):
        """Open the dataset (``--data``) or build the demo one (``--demo``), or use ``data``; returns it."""
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
            if cfg.verify_data:  # rank 0 checks; a damaged image ends every rank with its one line
                self._root_decides(lambda: verify_dataset(data.info), "verify_data")
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
            self._prepare_for_amx(net, pad=built_here and cfg.hybridize)
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

    def _prepare_for_amx(self, net, pad=True, what="--precision bfloat16"):
        """bfloat16 on AMX (:func:`.amx.prepare_network`): refuse a broken ``--image-size``; with ``pad``
        (the network that trains), pad its convolution inputs for AMX kernels."""
        padded = amx.prepare_network(net, self.cfg.image_size, pad, what)
        if padded:
            self.log.info("bfloat16 on AMX: %d convolution(s) read their input zero-padded to a multiple of 32 "
                          "channels, for AMX kernels: %s", len(padded), ", ".join(padded))  # fmt: skip

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
        normalise_as(self.data, info["preprocessing"], self.log)
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
            self._prepare_for_amx(net, pad=False, what="--precision bfloat16 with --teacher %s" % cfg.teacher)
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
        self.iters_per_epoch = len(self._train_iter_for(self.start_epoch))
        # The schedule counts updates: with --accumulate N one per N steps (the last may take fewer).
        self.updates_per_epoch = -(-self.iters_per_epoch // cfg.accumulate)
        global_batch = cfg.batch_size * self.dist.size * cfg.accumulate
        self.schedule = LRSchedule(cfg, self.updates_per_epoch, global_batch)
        if self.start_step:  # a mid-epoch checkpoint continues only with the same shards and batches
            check_position(self.resume_meta, cfg, self.dist.size, self.iters_per_epoch, self.start_epoch,
                           getattr(self._train_iter, "streams", 1))
        self.global_step = self._updates_done()
        params = {"learning_rate": self.schedule(self.global_step), "wd": cfg.wd}
        if cfg.optimizer in ("sgd", "nag"):
            params["momentum"] = cfg.momentum
        hvd = self.dist.hvd
        if hvd is not None:
            trainer = hvd.DistributedTrainer(self.net.collect_params(), cfg.optimizer, params,
                                             **trainer_kwargs(hvd, cfg.fp16_allreduce))  # fmt: skip
        else:
            trainer = mx.gluon.Trainer(self.net.collect_params(), cfg.optimizer, params, kvstore=None)
        if self.amp is not None:
            self.amp.init_trainer(trainer)
        self.trainer = trainer
        accumulate = " x %d accumulated" % cfg.accumulate if cfg.accumulate > 1 else ""
        self.log.info("optimizer: %s, %d rank(s) x batch %d%s = %d per update, %d steps (%d updates) per epoch; lr %s",
                      cfg.optimizer, self.dist.size, cfg.batch_size, accumulate, global_batch, self.iters_per_epoch,
                      self.updates_per_epoch, self.schedule.describe())  # fmt: skip
        return trainer

    def restore(self):
        """Continue the resumed checkpoint on every rank (weights, weight EMA, optimizer state, lr schedule);
        returns the epoch training continues after (0 when not resuming)."""
        meta = self.resume_meta
        if meta is None:
            return 0
        self.checkpoints.restore(meta)
        how = self.schedule.resume(meta, self.cfg, self.start_epoch)
        self.global_step = self._updates_done()
        self.trainer.set_learning_rate(self.schedule(self.global_step))
        where = "after epoch %d" % self.start_epoch
        if self.start_step:
            where = "epoch %d, after step %d of %d" % (self.start_epoch + 1, self.start_step, self.iters_per_epoch)
        self.log.info("resumed from %s (%s): lr %.4g (%s)", meta["paths"]["params"], where,
                      self.schedule(self.global_step), how)  # fmt: skip
        self.log.truncate_after(self.start_epoch)
        self.hooks.state("restored", self.net, self.trainer)
        return self.start_epoch

    def epochs(self):
        """The 0-based epochs still to train: ``range(start_epoch, cfg.epochs)``."""
        return range(self.start_epoch, self.cfg.epochs)

    def _train_iter_for(self, epoch):
        """This rank's iterator of ``epoch``, checked to run as many steps as every other rank's."""
        if self._train_iter_epoch != epoch:
            self._train_iter = None  # let the previous iterator's threads go first
            self._train_iter, self._train_iter_epoch = self.data.train_iter(epoch), epoch
            steps = len(self._train_iter)
            total = self.dist.allreduce_sum([steps, steps * steps], name="steps_per_epoch")
            if self.dist.size * total[1] != total[0] * total[0]:
                raise RuntimeError(
                    "the ranks would run different numbers of steps per epoch (this rank: %d, mean: %.2f); "
                    "Horovod would hang. The training iterator must give every rank the same len()."
                    % (steps, total[0] / self.dist.size)
                )
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
        """One pass over every rank's shard (0-based ``epoch``); returns the train metrics summed over the ranks:
        ``loss`` (with smoothing/mixup/aux terms), ``top1``, ``top5`` (under mixup against the dominant label),
        ``samples``, ``time`` (s), ``img_per_sec``, ``lr`` and ``lr_end`` (first and last step), ``steps``.

        Dropout and mixup are seeded per step, so a run resumed from a mid-epoch checkpoint trains the rest
        of the epoch as an uninterrupted run would. At each step boundary the ranks agree on the stop and
        checkpoint requests (:class:`~gluon_inception.training.preemption.Requests`), so they raise
        :class:`NonFiniteLoss` (no checkpoint is written) or, after SIGTERM, SIGUSR1 or SIGINT and the step's
        checkpoint, :class:`~gluon_inception.training.preemption.TrainingInterrupted` together.
        """
        cfg = self.cfg
        it = self._train_iter_for(epoch)
        steps, batches = len(it), iter(it)
        position = self._skip_trained_steps(epoch, it, batches)
        first_lr = float(position["lr"]) if position else self.schedule(self.global_step)
        metrics = EpochMetrics(self.log, self.tensorboard, self.dist, "epoch %d/%d" % (epoch + 1, cfg.epochs), steps,
                               cfg.log_interval, position)  # fmt: skip
        try:
            for step, batch in enumerate(batches, start=position["step"] if position else 0):
                # Seeded per step, so that a run resumed mid-epoch draws the same dropout and mixup.
                mx.random.seed(_seed_for(cfg.seed, epoch, self.dist.rank, step), ctx=self.ctx)
                rng = np.random.RandomState(_seed_for(cfg.seed, epoch, self.dist.rank, 1, step))
                metrics.add(self.train_step(batch, epoch, step, rng))
                done = step + 1
                self.requests.send()  # and read at once: a signal during this step stops after it
                request = self.requests.read(self.update_due(step), last_step=done == steps)
                if done % cfg.log_interval == 0 or done == steps or request:
                    bad = metrics.sync(done, self.last_lr, self.global_step)
                    if bad is not None:  # a non-finite loss on any rank stops every rank
                        raise NonFiniteLoss(_non_finite_message(cfg, self.dist, epoch, bad, steps, self.last_lr))
                if request:
                    self.requests.act(request, epoch, done, metrics.position(first_lr))
        finally:
            metrics.close()
        result = metrics.result(first_lr, self.last_lr)
        # Each rank saw only its own shard: average BatchNorm's running statistics, so all hold the same network.
        self.dist.average_parameters([p for _, p in running_statistics(self.net)], self.ctx, name="bn_statistics")
        return result

    def _skip_trained_steps(self, epoch, it, batches):
        """Resumed mid-epoch: skip the batches already trained on; returns the checkpoint's position (or None)."""
        if epoch != self.start_epoch or not self.start_step:
            return None
        skip_start = time.time()
        if hasattr(it, "skip"):  # RecordBatches: each stream opens the window of its next batch
            it.skip(self.start_step)
        else:
            for _ in range(self.start_step):
                next(batches)
        self.log.info("skipped %d batches already trained on in %.1f s", self.start_step, time.time() - skip_start)
        self.start_step = 0
        return self.resume_meta["position"]

    def train_step(self, batch, epoch, step, rng):
        """One step on this rank's ``batch``: data, forward, loss, backward, allreduce and update, metrics.

        ``epoch`` and ``step`` (0-based) decide the lr, mixup and the hooks; ``rng`` draws the mixup weights.
        Returns this rank's (loss sum, top-1 hits, top-5 hits, samples) of the batch, summed over ranks later.
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
        self.last_lr = lr
        self.hooks.after_step(self.net, epoch, step)
        # Metrics: computed on the device; train_epoch sums them over the ranks now and then.
        return batch_stats(loss, logits, labels, batch.pad)

    def update_due(self, step):
        """Whether 0-based ``step`` of an epoch ends an update: every ``--accumulate`` steps, and the last."""
        return (step + 1) % self.cfg.accumulate == 0 or step + 1 == self.iters_per_epoch

    def evaluate(self, split):
        """``loss``, ``top1``, ``top5`` and ``samples`` of a whole split, each image counted once over the ranks
        (the loop of ``gluon-inception evaluate``); with ``--ema-decay`` also ``ema_*`` of the weight EMA."""
        r = evaluate_batches(self.net, self.data.eval_iter(split), self.ctx, self.dist, name="eval_" + split)
        result = {"loss": r.cross_entropy, "top1": r.top1, "top5": r.top5, "samples": r.count, "split": split}
        if self.ema is not None:
            with self.ema.applied():
                r = evaluate_batches(self.net, self.data.eval_iter(split), self.ctx, self.dist, name="ema_" + split)
            result.update(ema_loss=r.cross_entropy, ema_top1=r.top1, ema_top5=r.top5)
        return result

    def validate(self, epoch):
        """:meth:`evaluate` the ``val`` split when due (every ``--val-every`` epochs and after the last), else None."""
        due = (epoch + 1) % self.cfg.val_every == 0 or epoch + 1 == self.cfg.epochs
        return self.evaluate("val") if due and self.data.has_split("val") else None

    def end_epoch(self, epoch, train, val=None):
        """Log the epoch (console, human log, JSON line) and write its checkpoints when due (rank 0)."""
        cfg = self.cfg
        log_epoch(self.log, self.tensorboard, epoch, cfg.epochs, train, val, self.data.num_classes)
        written = self.checkpoints.end_epoch(epoch, train, val)
        next_start = {"sums": MetricSums().values.tolist(), "time": 0.0, "lr": self.schedule(self.global_step)}
        self.requests.end_epoch(epoch, written, epoch + 1 == cfg.epochs, next_start)
        if epoch + 1 == cfg.epochs:
            self.hooks.state("final", self.net, self.trainer)

    def final_evaluation(self):
        """:meth:`evaluate` the ``--final-eval`` split (auto: test if present, else val) and log it; or None."""
        split = self.cfg.final_eval
        if split == "none":
            return None
        if split == "auto":
            split = "test" if self.data.has_split("test") else "val"
        if not self.data.has_split(split):
            self.log.warning("no %s split to evaluate on", split)
            return None
        result = self.evaluate(split)
        log_final_evaluation(self.log, result, self.cfg.epochs, self.data.num_classes, demo=self.cfg.demo,
                             ema_decay=self.ema.decay if self.ema is not None else None)  # fmt: skip
        return result

    def run(self, data=None, net=None):
        """Every stage in order: the whole run (``data`` for :meth:`open_data`, ``net`` for
        :meth:`build_model`). Returns the final evaluation (or None)."""
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
        """Release the log files, the signal handlers and the checkpoint folder."""
        self.requests.signals.uninstall()
        self.tensorboard.close()
        self.log.close()
        self._held.close()

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


def _remove_if_empty(folder):
    with contextlib.suppress(OSError):
        os.rmdir(folder)


def _non_finite_message(cfg, dist, epoch, step, steps, lr):
    done = [e for _, e in list_checkpoints(cfg.checkpoints, cfg.prefix)] if dist.is_root else []
    if done:
        last = (
            "the last good checkpoint is %s-%04d in %s (epoch %d): continue from it with --resume, e.g. "
            "with a lower --lr" % (cfg.prefix, done[-1], cfg.checkpoints, done[-1])
        )
    else:
        last = "no checkpoint was written yet; start again, e.g. with a lower --lr or a warmup"
    return "non-finite training loss (NaN or inf) in epoch %d, step %d of %d (lr %.4g): training stopped; %s." % (
        epoch + 1, step, steps, lr or 0.0, last
    )  # fmt: skip

