"""The one place that knows about ranks: Horovod when it is there, a single process otherwise.

Every other module asks :func:`get` for the current :class:`Dist` instead of importing
Horovod itself, so the same code runs under ``horovodrun -np N`` and as a plain script.
"""
import contextlib
import logging
import os
import pickle
import sys
import threading

import numpy as np

from ._compat import mx
from .errors import GluonInceptionError

log = logging.getLogger(__name__)

_LAUNCHER_VARS = ("HOROVOD_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK")


class HorovodUnavailableError(GluonInceptionError, RuntimeError):
    """``horovodrun`` started this process but ``horovod.mxnet`` cannot be imported."""


class RankError(GluonInceptionError):
    """The error rank 0 met in :meth:`Dist.agree`, on the other ranks: the same message and exit status
    (rank 0 printed the message; the others end with it quietly)."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


class Dist:
    """Rank information and collectives for the running job.

    Attributes
    ----------
    rank, size, local_rank, local_size : int
        Horovod's values, or 0/1/0/1 for a single process.
    hvd : module or None
        ``horovod.mxnet`` when Horovod is initialised, else ``None``.

    Examples
    --------
    >>> from gluon_inception.dist import Dist
    >>> single = Dist()  # what a plain script (not started by horovodrun) gets
    >>> single.rank, single.size, single.is_root, single.distributed
    (0, 1, True, False)
    >>> single.allreduce_sum([3.0, 4.0], name="counts")  # the sum over all ranks
    array([3., 4.])
    """

    def __init__(self, hvd=None):
        self.hvd = hvd
        if hvd is None:
            self.rank, self.size, self.local_rank, self.local_size = 0, 1, 0, 1
        else:
            self.rank, self.size = hvd.rank(), hvd.size()
            self.local_rank, self.local_size = hvd.local_rank(), hvd.local_size()

    @property
    def is_root(self):
        """True on rank 0, the rank that writes files and draws progress."""
        return self.rank == 0

    @property
    def distributed(self):
        """True when more than one rank takes part."""
        return self.size > 1

    def context(self):
        """The device for this rank: GPU ``local_rank`` when GPUs exist, else the CPU."""
        num_gpus = mx.context.num_gpus()
        if num_gpus == 0:
            return mx.cpu()
        if self.local_rank >= num_gpus:
            raise RuntimeError(
                "rank %d wants GPU %d but this host has only %d GPU(s): start at most %d "
                "processes per host (horovodrun -np ... -H host:%d)."
                % (self.rank, self.local_rank, num_gpus, num_gpus, num_gpus)
            )
        return mx.gpu(self.local_rank)

    def allreduce_sum(self, values, name):
        """Sum a 1-D list or array of floats over all ranks; returns a numpy float64 array."""
        arr = np.asarray(values, dtype=np.float64)
        if self.hvd is None or self.size == 1:
            return arr
        # float64 so that large counts (ImageNet has 1.28M images) stay exact.
        nd = mx.nd.array(arr, dtype="float64")
        out = self.hvd.allreduce(nd, average=False, name=name)
        return out.asnumpy()

    def allreduce_async(self, values, name):
        """Start :meth:`allreduce_sum` without waiting for it: ``.result()`` of the returned handle
        gives the numpy sum (it waits only if the sum is not there yet)."""
        arr = np.asarray(values, dtype=np.float64)
        if self.hvd is None or self.size == 1:
            return _Sum(arr)
        return _Sum(self.hvd.allreduce(mx.nd.array(arr, dtype="float64"), average=False, name=name))

    def average_parameters(self, params, ctx, name):
        """Replace each of ``params`` by its mean over the ranks (summed in float64), e.g. BatchNorm's
        running statistics, which each rank computed on its own shard."""
        if self.size == 1 or not params:
            return
        arrays = [p.data(ctx) for p in params]
        flat = np.concatenate([a.asnumpy().ravel().astype(np.float64) for a in arrays])
        mean = self.allreduce_sum(flat, name=name) / self.size
        offset = 0
        for param, array in zip(params, arrays):
            param.set_data(mx.nd.array(mean[offset : offset + array.size].reshape(array.shape), dtype=array.dtype))
            offset += array.size

    def broadcast_parameters(self, params, root_rank=0):
        """Give every rank rank 0's parameter values (after init and after resume)."""
        if self.hvd is not None and self.size > 1:
            self.hvd.broadcast_parameters(params, root_rank=root_rank)

    def broadcast_object(self, obj, root_rank=0, name="broadcast_object"):
        """Return ``root_rank``'s ``obj`` (anything picklable, e.g. bytes of a file) on every rank.

        Only the root rank needs to read the file it comes from, so resuming works when the
        checkpoint folder is not shared between hosts.
        """
        if self.hvd is None or self.size == 1:
            return obj
        if self.rank == root_rank:
            payload = np.frombuffer(pickle.dumps(obj, protocol=4), dtype=np.uint8)
            length = mx.nd.array([payload.size], dtype="int64")
        else:
            length = mx.nd.zeros((1,), dtype="int64")
        length = int(self.hvd.broadcast(length, root_rank=root_rank, name=name + ".length").asscalar())
        if self.rank == root_rank:
            data = mx.nd.array(payload, dtype="uint8")
        else:
            data = mx.nd.zeros((length,), dtype="uint8")
        data = self.hvd.broadcast(data, root_rank=root_rank, name=name + ".data")
        if self.rank == root_rank:
            return obj
        return pickle.loads(data.asnumpy().tobytes())

    def agree(self, func, name, errors=(GluonInceptionError, OSError)):
        """Run ``func`` on rank 0 only; every rank returns its result, or raises its error.

        For the work one rank does for all (reading or writing a checkpoint, checking the data): when
        it fails, the other ranks learn it here, at once, instead of through the next collective
        that rank 0 never joins (a Horovod shutdown and a traceback on each of them). Rank 0 raises
        the original error; the others raise it too when its class is in ``errors`` and takes its
        message alone, else a :class:`RankError` with the same message and exit status. Errors
        outside ``errors`` (bugs) are not caught. Every rank must call it at the same point.
        """
        outcome, error = None, None
        if self.is_root:
            try:
                outcome = ("ok", func())
            except errors as err:
                error = err
                outcome = ("error", type(err).__name__, str(err), getattr(err, "exit_code", 1))
        outcome = self.broadcast_object(outcome, name=name)
        if outcome[0] == "ok":
            return outcome[1]
        if error is not None:
            raise error
        _, kind, message, exit_code = outcome
        same = next((cls for cls in errors if cls.__name__ == kind and not issubclass(cls, OSError)), None)
        raise (same(message) if same is not None else RankError(message, exit_code))

    def barrier(self, name="barrier"):
        """Block until every rank arrives (an allreduce of one number)."""
        if self.hvd is not None and self.size > 1:
            self.allreduce_sum([1.0], name=name)

    def __repr__(self):
        return "Dist(rank=%d, size=%d, local_rank=%d, horovod=%s)" % (
            self.rank,
            self.size,
            self.local_rank,
            self.hvd is not None,
        )


class _Sum:
    """A sum in flight (an NDArray that Horovod fills asynchronously) or already known."""

    def __init__(self, value):
        self._value = value

    def result(self):
        if not isinstance(self._value, np.ndarray):
            self._value = self._value.asnumpy()
        return self._value


_CURRENT = None


def launched_by_horovod():
    """True when a launcher (horovodrun/mpirun) started this process as one of several ranks.

    Returns
    -------
    bool
    """
    return any(var in os.environ for var in _LAUNCHER_VARS)


def is_root_process():
    """True unless this process is a rank other than 0, asking the launcher before Horovod starts.

    Returns
    -------
    bool
    """
    if _CURRENT is not None:
        return _CURRENT.is_root
    return all(os.environ.get(var, "0") == "0" for var in _LAUNCHER_VARS)


def settle(timeout=30.0):
    """Before this rank exits on an error: wait for the other ranks and for pending operations.

    When every rank hit the error (the usual case: they run the same code on the same data),
    this is a barrier, so rank 0 has printed the message before any rank leaves and the launcher
    stops the job. Pending collectives finish too: one left in flight fails on the other ranks,
    and MXNet reports that at exit as a traceback. When the other ranks are elsewhere, it gives
    up after ``timeout`` seconds; errors of the collectives themselves are dropped, since the
    error being reported is the one that matters.
    """
    if _CURRENT is None or not _CURRENT.distributed:
        return

    def wait():
        try:
            _CURRENT.barrier("settle_on_error")
            mx.nd.waitall()
        except mx.base.MXNetError:
            pass

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    waiter.join(timeout)


def leave(status):
    """End this rank of a failed multi-rank job now with ``status``; a single process gets ``status`` back.

    Called after :func:`settle`, when the error has been printed and every rank knows. What is left
    is Python's teardown, which stops MXNet's engine and Horovod's background thread, and in a job
    that failed that teardown can crash: in CI (Python 3.13) a rank that had passed the barrier died
    with SIGSEGV, so horovodrun reported status 134 instead of the error's. The rank therefore
    flushes its output, shuts logging down and leaves with ``os._exit``. Files are not at risk:
    writers finish or remove their temporary files before the error reaches this point. A stop by
    a signal from the launcher is not ended here (``TrainingInterrupted.normal_teardown``).
    """
    if _CURRENT is None or not _CURRENT.distributed:
        return status
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def get(use_horovod=True):
    """Return the job's :class:`Dist`, initialising Horovod on first use.

    Parameters
    ----------
    use_horovod : bool
        When False, or when Horovod is not installed, run as a single process. A process
        started by ``horovodrun`` without Horovod installed is an error, because every
        rank would silently train alone.

    Returns
    -------
    Dist
        The same object on every later call.

    Raises
    ------
    HorovodUnavailableError
        When ``horovodrun`` started this process but ``horovod.mxnet`` cannot be imported.

    Examples
    --------
    >>> from gluon_inception import dist
    >>> d = dist.get()  # doctest: +SKIP
    >>> ctx = d.context()  # GPU local_rank, or the CPU  # doctest: +SKIP
    >>> if d.is_root:  # doctest: +SKIP
    ...     print("rank 0 of", d.size, "writes the checkpoints")
    """
    global _CURRENT
    if _CURRENT is not None:
        return _CURRENT
    hvd = None
    if use_horovod:
        try:
            import horovod.mxnet as hvd_module
        except ImportError as err:
            if launched_by_horovod():
                raise HorovodUnavailableError(
                    "this process was started by horovodrun but horovod.mxnet cannot be "
                    "imported (%s). Build Horovod with MXNet support: see the installation "
                    "docs (HOROVOD_WITH_MXNET=1 pip install --no-build-isolation horovod)." % err
                ) from err
            log.warning("Horovod is not installed: running as a single process.")
        else:
            hvd_module.init()
            hvd = hvd_module
    _CURRENT = Dist(hvd)
    return _CURRENT


def reset():
    """Forget the cached :class:`Dist` (tests use this)."""
    global _CURRENT
    _CURRENT = None
