"""Stopping a run on a signal, and checkpoints on request: the flags, the ranks' agreement, the exit statuses.

The handlers of :class:`StopSignals` only record which signal came first. A watchdog thread, woken by
Python's signal wakeup file descriptor (written by the C-level handler, so even while the main thread
is blocked inside MXNet or Horovod), ends the process at once on a second signal, or when the orderly
stop has not finished ``timeout`` seconds after the first one.

:class:`Requests` turns those flags, and rank 0's wish for a checkpoint (a ``SAVE_NOW`` file,
``--save-every-minutes``), into one decision that every rank reads at the same step boundary: the
flags are summed by an allreduce started at one step and read at the next, so that it overlaps the
step (bench/preemption_overhead.py measures what it costs). :meth:`Requests.act` then writes a
mid-epoch checkpoint and, after a signal, every rank raises :class:`TrainingInterrupted`.
"""

import os
import select
import shlex
import signal
import sys
import threading
import time

from .. import dist as dist_module
from ..checkpoint import checkpoint_paths
from ..errors import GluonInceptionError

#: Exit status after an orderly stop on SIGTERM or SIGUSR1 (``EX_TEMPFAIL``: try again later).
EXIT_PREEMPTED = 75
#: Exit status after an orderly stop on SIGINT (Ctrl-C), as for any interrupted command.
EXIT_INTERRUPTED = 130

#: The signals that stop a run at the next step boundary, in the order of the flags exchanged.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)

#: A file that asks rank 0 for a mid-epoch checkpoint at the next step (removed once written).
SAVE_NOW = "SAVE_NOW"


class TrainingStopped(GluonInceptionError, RuntimeError):
    """Training stopped on purpose (a guard fired); the last good checkpoint is intact.

    Attributes
    ----------
    exit_code : int
        The process exit status the command line uses (3).
    """

    exit_code = 3


class TrainingInterrupted(TrainingStopped):
    """A signal stopped the run at a step boundary, after a checkpoint of that step was written.

    Attributes
    ----------
    exit_code : int
        75 after SIGTERM or SIGUSR1 (preemption), 130 after SIGINT.
    """

    #: Leave through the interpreter's normal teardown, not :func:`gluon_inception.dist.leave`: the
    #: launcher that sent the signal is ending the job itself. Its reaping of the ranks races (one CI run
    #: lost every status with ``os._exit`` here, a later one reported 137 for a rank without it); this
    #: path keeps the exit it has always had.
    normal_teardown = True

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


def signal_name(signum):
    """``"SIGTERM"`` for ``signal.SIGTERM`` ..."""
    return signal.Signals(signum).name


class StopSignals:
    """Flag-only handlers for :data:`STOP_SIGNALS`, and the watchdog behind them.

    Parameters
    ----------
    timeout : float
        Seconds the orderly stop may take after the first signal; then the process exits with
        status 128 + signal number. 0 waits forever.

    Attributes
    ----------
    received : int or None
        The first stop signal's number, set by the handler.
    """

    def __init__(self, timeout):
        self.timeout = float(timeout)
        self.received = None
        self._previous = {}
        self._wakeup = None
        self.failure = None  # what ended the watchdog thread early; check() raises it
        self._pipe = None

    def install(self):
        """Install the handlers (main thread only); returns False where that is impossible."""
        if self in _INSTALLED or threading.current_thread() is not threading.main_thread():
            return False
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        self._pipe = (read_fd, write_fd)
        self._wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handler)
        _INSTALLED.append(self)
        threading.Thread(target=self._watch, args=(read_fd,), name="stop-signal-watchdog", daemon=True).start()
        return True

    def uninstall(self, ignore_termination=False):
        """Put the previous handlers back and end the watchdog (idempotent).

        With ``ignore_termination``, SIGTERM and SIGUSR1 are ignored from now on instead.
        """
        if self not in _INSTALLED:
            return
        index = _INSTALLED.index(self)
        del _INSTALLED[index]
        previous = {
            signum: signal.SIG_IGN if ignore_termination and signum != signal.SIGINT else handler
            for signum, handler in self._previous.items()
        }
        if index < len(_INSTALLED):
            # Closed out of order (two runs in one process): the one installed after this one saved
            # this one's handlers; it restores what this one saved instead.
            _INSTALLED[index]._previous, _INSTALLED[index]._wakeup = previous, self._wakeup
        else:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            signal.set_wakeup_fd(self._wakeup if self._wakeup is not None else -1)
        self._previous = {}
        os.close(self._pipe[1])  # the watchdog reads end-of-file and returns

    def _handler(self, signum, frame):
        if self.received is None:
            self.received = signum

    def _watch(self, read_fd):
        first, deadline = None, None
        try:
            while True:
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                ready, _, _ = select.select([read_fd], [], [], wait)
                if not ready:
                    reason = "%s: the orderly stop did not finish within %g s" % (signal_name(first), self.timeout)
                    _exit_now(reason, first)
                data = os.read(read_fd, 64)
                if not data:
                    return
                for signum in data:
                    if signum not in STOP_SIGNALS:
                        continue
                    if first is None:
                        first = signum
                        deadline = time.monotonic() + self.timeout if self.timeout > 0 else None
                    else:
                        _exit_now("second stop signal (%s)" % signal_name(signum), signum)
        except Exception as err:  # noqa: BLE001 - handed to the training thread by check()
            self.failure = err
        finally:
            os.close(read_fd)

    def check(self):
        """Raise in the caller's thread if the watchdog thread failed (it then no longer guards the stop).

        Raises
        ------
        RuntimeError
            Naming the watchdog's error.
        """
        if self.failure is not None:
            raise RuntimeError(
                "the stop-signal watchdog failed (%r): a second signal or --stop-timeout would no longer end "
                "the run" % (self.failure,)
            ) from self.failure


class Requests:
    """The stop and checkpoint requests of all ranks, agreed on at every step boundary.

    Parameters
    ----------
    dist : gluon_inception.dist.Dist
    cfg : TrainConfig
        Its ``checkpoints`` (where ``SAVE_NOW`` is looked for), ``save_every_minutes`` and
        ``stop_timeout``.
    log : RunLog
    checkpoints : Checkpoints
        Writes the mid-epoch checkpoints asked for.

    Attributes
    ----------
    signals : StopSignals
        Installed and uninstalled by the run.
    """

    def __init__(self, dist, cfg, log, checkpoints):
        self.dist, self.log, self.checkpoints = dist, log, checkpoints
        self.folder, self.prefix = cfg.checkpoints, cfg.prefix
        self.signals = StopSignals(cfg.stop_timeout)
        self.save_now = os.path.join(cfg.checkpoints, SAVE_NOW)
        self.save_every = 60.0 * cfg.save_every_minutes
        self._flags = None  # the flags sent at the last step, being summed
        self._held = None  # a request that came inside an --accumulate group
        self._at_epoch_end = None  # one that came at an epoch's last step
        self._last_save = time.monotonic()

    def send(self):
        """Start summing this rank's flags over the ranks: one per stop signal received, and (rank 0)
        whether a checkpoint is due. :meth:`read`, at the same step boundary, waits for the sum: a
        signal that arrives during a step stops every rank after that step, which under a launcher
        leaves most of its grace period (5 s for horovodrun) to the checkpoint."""
        self.signals.check()
        flags = [float(self.signals.received == signum) for signum in STOP_SIGNALS]
        save = False
        if self.dist.is_root:
            due = self.save_every > 0 and time.monotonic() - self._last_save >= self.save_every
            save = due or os.path.exists(self.save_now)
        self._flags = self.dist.allreduce_async(flags + [float(save)], name="stop_save_requests")

    def read(self, update_due, last_step):
        """The request of the flags :meth:`send` has just sent (every rank waits for the sum).

        Parameters
        ----------
        update_due : bool
            Whether this step ends an optimizer update. The gradients of a part-done ``--accumulate``
            group are not saved: a request that comes inside one is held until the group's end.
        last_step : bool
            Whether this step ends the epoch: a request then waits for :meth:`end_epoch`.

        Returns
        -------
        dict or None
            ``{"stop": signal number or None, "save": bool}`` when any rank asked for something.
        """
        previous, self._flags = self._flags, None
        flags = previous.result() if previous is not None else None
        request = None
        if flags is not None and flags.any():
            stops = [signum for signum, flag in zip(STOP_SIGNALS, flags) if flag > 0]
            request = {"stop": stops[0] if stops else None, "save": bool(flags[-1] > 0)}
        held, self._held = self._held, None
        if held is not None and request is not None:
            request = {"stop": held["stop"] if held["stop"] is not None else request["stop"],
                       "save": held["save"] or request["save"]}  # fmt: skip
        request = request or held
        if request and not update_due:
            self._held, request = request, None
        elif request and last_step:
            self._at_epoch_end, request = request, None
        return request

    def act(self, request, epoch, step, position):
        """Write the mid-epoch checkpoint ``request`` asks for, after ``step`` steps of 0-based ``epoch``
        (``position``: as :meth:`~gluon_inception.training.checkpointing.Checkpoints.save_mid_epoch`
        takes it); after a signal, stop every rank."""
        signum = request["stop"]
        if signum is not None:
            self.log.info("%s received: stopping every rank after step %d of epoch %d", signal_name(signum), step,
                          epoch + 1)  # fmt: skip
        paths = self.checkpoints.save_mid_epoch(epoch, step, position)
        self.saved(remove_save_now=True)
        if signum is not None:
            self.stop(signum, paths)

    def end_epoch(self, epoch, written, last, position):
        """After 0-based ``epoch`` and its checkpoint (``written`` when one was due), act on a request
        that came at its last step: a stop uses that checkpoint, else one is written at step 0 of the
        next epoch (at ``position``). After the ``last`` epoch nothing is left to stop."""
        if written:
            self.saved()
        request, self._at_epoch_end = self._at_epoch_end, None
        if last:
            self.finish()
        elif request is not None and not written:
            self.act(request, epoch + 1, 0, position)
        elif request is not None and request["stop"] is not None:
            self.stop(request["stop"], checkpoint_paths(self.folder, self.prefix, epoch + 1))

    def saved(self, remove_save_now=False):
        """A checkpoint was written: restart the ``--save-every-minutes`` clock (and remove ``SAVE_NOW``)."""
        if remove_save_now and self.dist.is_root and os.path.exists(self.save_now):
            os.remove(self.save_now)
        self._last_save = time.monotonic()

    def finish(self):
        """Wait for the flags of the run's last step: nothing is left to stop."""
        if self._flags is not None:
            self._flags.result()
            self._flags = None

    def stop(self, signum, paths):
        """Every rank: wait until rank 0 has written the checkpoint ``paths``, then end the run.

        Raises
        ------
        TrainingInterrupted
            With the command line that continues the run.
        """
        self.dist.barrier("stopped_on_signal")
        # Under a launcher, the SIGTERM it sends once the first rank has left must not cut the others short.
        self.signals.uninstall(ignore_termination=dist_module.launched_by_horovod())
        code = EXIT_INTERRUPTED if signum == STOP_SIGNALS[0] else EXIT_PREEMPTED
        written = " %s written;" % os.path.splitext(paths["params"])[0] if paths else ""
        raise TrainingInterrupted(
            "stopped by %s at a step boundary;%s continue with:\n  %s"
            % (signal_name(signum), written, resume_command(self.dist.size)),
            code,
        )


#: The installed :class:`StopSignals`, oldest first; each saved the handlers of the one before it.
_INSTALLED = []


def _exit_now(reason, signum):
    os.write(2, ("gluon-inception: %s: exiting at once, without a checkpoint\n" % reason).encode())
    os._exit(128 + int(signum))


def resume_command(ranks, argv=None):
    """The command line that continues this run: the same arguments with ``--resume``.

    ``--start-epoch N`` is dropped; under Horovod the line starts with ``horovodrun -np N``
    (add the host options the job was started with).

    Examples
    --------
    >>> resume_command(1, ["train_imagenet.py", "--demo", "--start-epoch", "3"])
    'python train_imagenet.py --demo --resume'
    """
    argv = list(sys.argv if argv is None else argv)
    program, args = argv[0], []
    rest = iter(argv[1:])
    for arg in rest:
        if arg == "--start-epoch":
            next(rest, None)
        elif not arg.startswith("--start-epoch="):
            args.append(arg)
    if "--resume" not in args:
        args.append("--resume")
    if os.path.basename(os.path.dirname(program)) == "cli" and program.endswith("__main__.py"):
        launch = ["gluon-inception"]  # python -m gluon_inception.cli
    elif program.endswith(".py"):
        launch = ["python", program]
    else:
        launch = [os.path.basename(program)]
    if ranks > 1:
        launch = ["horovodrun", "-np", str(ranks)] + launch
    return " ".join(shlex.quote(a) for a in launch + args)
