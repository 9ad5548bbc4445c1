"""Learning-rate schedules built from GluonCV's ``LRScheduler``/``LRSequential``.

A schedule is a function of the global step (iterations since training began), so resuming
at epoch N continues exactly where a straight run would be, whatever the batch size.
"""

import math

from .config import ConfigError


def lr_scale_factor(rule, global_batch, base_batch=256):
    """How much ``--lr`` is multiplied by for a global batch of ``global_batch`` images.

    Parameters
    ----------
    rule : {"none", "linear", "sqrt"}
        ``linear`` (Goyal et al. 2017): ``B / base``; ``sqrt``: ``sqrt(B / base)``; ``none``: 1.
    global_batch : int
        Per-rank batch size times the number of ranks.
    base_batch : int, default 256
        The batch size the given learning rate refers to.

    Examples
    --------
    >>> lr_scale_factor("linear", 3 * 128)
    1.5
    """
    ratio = global_batch / float(base_batch)
    if rule == "linear":
        return ratio
    if rule == "sqrt":
        return math.sqrt(ratio)
    if rule == "none":
        return 1.0
    raise ConfigError("--lr-scaling must be none, linear or sqrt, got %r" % (rule,))


class LRSchedule:
    """The learning rate at every global step of a run.

    Parameters
    ----------
    cfg : TrainConfig
        Uses ``lr``, ``lr_scaling``, ``lr_base_batch``, ``lr_schedule``, ``lr_steps``,
        ``lr_factor``, ``lr_step_every``, ``warmup_epochs``, ``warmup_lr``, ``final_lr``,
        ``poly_power`` and ``epochs``.
    iters_per_epoch : int
        Steps per epoch (identical on every rank).
    global_batch : int
        Images per step over all ranks, for the lr scaling rule.

    Attributes
    ----------
    scale : float
        Extra factor on the whole schedule; resuming with a new ``--lr`` sets it (see
        :meth:`override_from`).

    Examples
    --------
    The chapter's Adam table: 1e-3, then 1e-4 from epoch 30 and 1e-5 from epoch 45.

    >>> from gluon_inception.training import TrainConfig
    >>> cfg = TrainConfig(optimizer="adam", lr=1e-3, lr_scaling="none", lr_steps=[30, 45]).finalize()
    >>> sched = LRSchedule(cfg, iters_per_epoch=100, global_batch=384)
    >>> ["%.0e" % sched.at_epoch(e) for e in (0, 29, 30, 45)]
    ['1e-03', '1e-03', '1e-04', '1e-05']
    """

    def __init__(self, cfg, iters_per_epoch, global_batch):
        from gluoncv.utils import LRScheduler, LRSequential

        if iters_per_epoch < 1:
            raise ValueError("iters_per_epoch must be >= 1, got %r" % (iters_per_epoch,))
        self.iters_per_epoch = int(iters_per_epoch)
        self.factor = lr_scale_factor(cfg.lr_scaling, global_batch, cfg.lr_base_batch)
        self.base_lr = cfg.lr * self.factor
        self.kind = cfg.lr_schedule
        self.scale = 1.0
        ipe = self.iters_per_epoch
        total = cfg.epochs * ipe
        warm = int(round(cfg.warmup_epochs * ipe))
        main = total - warm
        parts = []
        if warm:
            parts.append(
                LRScheduler("linear", base_lr=cfg.warmup_lr * self.factor, target_lr=self.base_lr, niters=warm)
            )
        self.drops = []  # (epoch, factor) of a step schedule
        if self.kind == "constant":
            parts.append(LRScheduler("constant", base_lr=self.base_lr, niters=main))
        elif self.kind in ("cosine", "poly"):
            parts.append(
                LRScheduler(
                    self.kind,
                    base_lr=self.base_lr,
                    target_lr=cfg.final_lr * self.factor,
                    niters=main,
                    power=cfg.poly_power,
                )
            )
        elif self.kind == "step":
            steps = list(cfg.lr_steps)
            if cfg.lr_step_every:
                n = 1
                while n * cfg.lr_step_every < cfg.epochs:
                    steps.append(n * cfg.lr_step_every)
                    n += 1
            factors = list(cfg.lr_factor) if len(cfg.lr_factor) == len(steps) else [cfg.lr_factor[0]] * len(steps)
            for epoch in steps:
                if epoch <= cfg.warmup_epochs:
                    raise ConfigError(
                        "--lr-steps epoch %s falls inside the warmup (%s epochs)" % (epoch, cfg.warmup_epochs)
                    )
            self.drops = [(e, f) for e, f in zip(steps, factors) if e < cfg.epochs]
            step_iters = [int(round(e * ipe)) - warm for e, _ in self.drops]
            if len(set(factors)) <= 1:
                parts.append(
                    LRScheduler(
                        "step",
                        base_lr=self.base_lr,
                        niters=main,
                        step_iter=step_iters,
                        step_factor=factors[0] if factors else 1.0,
                    )
                )
            else:
                # Different factors per drop: a constant segment per level.
                bounds = [0] + step_iters + [main]
                lr = self.base_lr
                for i in range(len(bounds) - 1):
                    if i:
                        lr *= self.drops[i - 1][1]
                    if bounds[i + 1] > bounds[i]:
                        parts.append(LRScheduler("constant", base_lr=lr, niters=bounds[i + 1] - bounds[i]))
        else:
            raise ConfigError("unknown --lr-schedule %r" % (self.kind,))
        self._scheduler = LRSequential(parts)
        self.warmup_epochs = cfg.warmup_epochs

    def unscaled(self, step):
        """The schedule's learning rate at global ``step`` before :attr:`scale`."""
        return float(self._scheduler(int(step)))

    def __call__(self, step):
        return self.scale * self.unscaled(step)

    def at_epoch(self, epoch):
        """Learning rate at the first step of 0-based ``epoch``."""
        return self(int(round(epoch * self.iters_per_epoch)))

    def override_from(self, epoch, lr):
        """Make the rate at the start of ``epoch`` equal ``lr`` (already scaled); the rest keeps its shape.

        This is the book chapter's workflow: stop, then restart from a checkpoint with a new
        learning rate.
        """
        current = self.unscaled(int(round(epoch * self.iters_per_epoch)))
        if current <= 0:
            raise ConfigError("cannot set the learning rate at epoch %d: the schedule is 0 there" % epoch)
        self.scale = lr / current

    def resume(self, meta, cfg, epoch):
        """Continue the schedule of checkpoint ``meta`` after ``epoch`` epochs: its ``lr_scale``, or the rate
        ``--lr`` sets when it was given and differs from the checkpoint's. Returns how, for the log."""
        saved_lr = meta.get("config", {}).get("lr")
        if "lr" in getattr(cfg, "explicit", ()) and saved_lr is not None and not math.isclose(cfg.lr, saved_lr):
            self.override_from(epoch, cfg.lr * self.factor)
            return "set by --lr"
        self.scale = float(meta.get("lr_scale", 1.0))
        return "continuing the schedule"

    def describe(self):
        """One line for the log, e.g. ``step: 0.001, x0.1 at epoch 30, x0.1 at epoch 45``."""
        text = "%s from %.4g" % (self.kind, self.scale * self.base_lr)
        if self.warmup_epochs:
            text = "linear warmup over %g epochs, then %s" % (self.warmup_epochs, text)
        if self.kind == "step" and self.drops:
            shown = self.drops if len(self.drops) <= 6 else self.drops[:5]
            text += ", " + ", ".join("x%g at epoch %g" % (f, e) for e, f in shown)
            if len(self.drops) > len(shown):
                text += ", ... (%d drops)" % len(self.drops)
        if self.factor != 1.0:
            text += " (lr scaled x%.4g for the global batch)" % self.factor
        return text
