"""Hook points of a training run, and the fault injection the tests of its guards use.

:class:`Training` calls its ``hooks`` object at three points; :class:`TrainingHooks` does
nothing at any of them. :class:`FaultInjection`, driven by environment variables, is what a
run gets by default, so that tests can break a real multi-process run from outside:

- ``GLUON_INCEPTION_DEBUG_NAN=E:S[:R]`` turns rank R's (default 0) parameters into NaN before
  epoch E, step S (both 1-based), so that its loss there is NaN, as after a divergence;
- ``GLUON_INCEPTION_DEBUG_KILL=E:S:R`` SIGKILLs rank R after that step;
- ``GLUON_INCEPTION_DEBUG_SIGNAL=E:S:R:NUM[:COUNT]`` sends signal NUM (15 = SIGTERM) COUNT times
  (default once) to rank R after that step, as a scheduler or a user would;
- ``GLUON_INCEPTION_DEBUG_DUMP=DIR`` makes every rank write its parameters and optimizer state
  into DIR after a resume and at the end.
"""
import os
import pickle
import signal


class TrainingHooks:
    """The hook points of :class:`~gluon_inception.training.Training`; every one does nothing here."""

    def before_step(self, net, epoch, step):
        """Called before the forward pass of ``(epoch, step)`` (both 0-based)."""

    def after_step(self, net, epoch, step):
        """Called after the update of ``(epoch, step)``."""

    def state(self, tag, net, trainer):
        """Called with ``tag`` "restored" after a resume and "final" after the last epoch."""


class FaultInjection(TrainingHooks):
    """The faults and dumps the module docstring describes, for rank ``rank``."""

    def __init__(self, rank):
        self.rank = rank
        self.nan_at = self._parse("GLUON_INCEPTION_DEBUG_NAN")
        self.kill_at = self._parse("GLUON_INCEPTION_DEBUG_KILL")
        self.signal_at = self._parse("GLUON_INCEPTION_DEBUG_SIGNAL")
        self.dump_dir = os.environ.get("GLUON_INCEPTION_DEBUG_DUMP")

    @staticmethod
    def _parse(name):
        value = os.environ.get(name)
        if not value:
            return None
        parts = [int(v) for v in value.split(":")]
        if len(parts) == 2:
            parts.append(0)
        return tuple(parts)

    def before_step(self, net, epoch, step):
        if self.nan_at == (epoch + 1, step + 1, self.rank):
            for param in net.collect_params().values():
                param.set_data(param.data() * float("nan"))

    def after_step(self, net, epoch, step):
        if self.kill_at == (epoch + 1, step + 1, self.rank):
            os.kill(os.getpid(), signal.SIGKILL)
        if self.signal_at and self.signal_at[:3] == (epoch + 1, step + 1, self.rank):
            for _ in range(self.signal_at[4] if len(self.signal_at) > 4 else 1):
                os.kill(os.getpid(), self.signal_at[3])

    def state(self, tag, net, trainer):
        if not self.dump_dir:
            return
        os.makedirs(self.dump_dir, exist_ok=True)
        stem = os.path.join(self.dump_dir, "rank%d-%s" % (self.rank, tag))
        net.save_parameters(stem + ".params")
        optimizer = trainer._optimizer
        states = trainer._updaters[0].states

        def to_numpy(state):
            if isinstance(state, (tuple, list)):
                return [to_numpy(s) for s in state]
            return None if state is None else state.asnumpy()

        summary = {
            "optimizer": type(optimizer).__name__,
            "num_update": optimizer.num_update,
            "counts": dict(optimizer._index_update_count),
            "lr": optimizer.learning_rate,
            "states": {index: to_numpy(state) for index, state in states.items()},
        }
        with open(stem + "-states.pkl", "wb") as f:
            pickle.dump(summary, f)
