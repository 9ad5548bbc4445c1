"""Stopping a run on a signal: flags set by the handlers, the exit statuses, the resume command.

The handlers of :class:`StopSignals` only record which signal came first; the training loop
reads that flag at each step boundary and the ranks agree on it through an allreduce (see
:meth:`gluon_inception.training.engine.Training.train_epoch`). A watchdog thread, woken by Python's
signal wakeup file descriptor (written by the C-level handler, so even while the main thread is
blocked inside MXNet or Horovod), ends the process at once on a second signal, or when the
orderly stop has not finished ``timeout`` seconds after the first one.
"""
import os
import select
import shlex
import signal
import sys
import threading
import time

#: Exit status after an orderly stop on SIGTERM or SIGUSR1 (``EX_TEMPFAIL``: try again later).
EXIT_PREEMPTED = 75
#: Exit status after an orderly stop on SIGINT (Ctrl-C), as for any interrupted command.
EXIT_INTERRUPTED = 130

#: The signals that stop a run at the next step boundary, in the order of the flags exchanged.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)


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
