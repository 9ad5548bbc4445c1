"""An exponential moving average (EMA) of the weights, evaluated and checkpointed beside them.

After every optimizer update each learned parameter ``w`` moves its float32 shadow ``e``::

    e = d * e + (1 - d) * w        d = decay, or min(decay, (1 + n) / (10 + n)) with warm-up

where ``n`` counts the updates averaged before this one. Every rank applies the same updates to the
same weights, so every rank holds the same average without any communication.

Only learned parameters are averaged. BatchNorm running statistics (and frozen weights) are not:
the EMA network uses the raw network's current ones, which every rank shares after the statistics
are averaged at the end of an epoch. Averaging them too would make the ranks' EMAs differ (each
rank's statistics come from its own shard until that average) for a gain that is small next to
the EMA of the weights; a ``.ema.params`` file is therefore a complete network: EMA weights plus
the running statistics of its checkpoint.
"""
import contextlib
import os

from .. import fileio
from .._compat import mx, wait_for_parameters
from ..checkpoint import CheckpointError, ema_path


class WeightEMA:
    """The moving average of ``net``'s learned parameters.

    Parameters
    ----------
    net : mxnet.gluon.Block
        Initialised; its parameters with ``grad_req != 'null'`` are averaged.
    decay : float
        In (0, 1), e.g. 0.9998.
    warmup : bool, default False
        Use ``min(decay, (1 + n) / (10 + n))``.

    Attributes
    ----------
    updates : int
        Updates averaged so far.

    Examples
    --------
    >>> from gluon_inception._compat import mx
    >>> net = mx.gluon.nn.Dense(1, in_units=1, use_bias=False)
    >>> net.initialize(mx.init.One())
    >>> ema = WeightEMA(net, decay=0.5)
    >>> net.weight.set_data(mx.nd.array([[3.0]]))
    >>> ema.update()
    >>> float(ema.shadow[0].asscalar())
    2.0
    """

    def __init__(self, net, decay, warmup=False):
        self.decay, self.warmup = float(decay), bool(warmup)
        named = net._collect_params_with_prefix()
        self.names = [name for name, p in named.items() if p.grad_req != "null"]
        self.params = [named[name] for name in self.names]
        self._all = named
        self.updates = 0
        self.reset()

    def reset(self):
        """Start the average afresh from the current weights."""
        self.shadow = [p.data().astype("float32", copy=True) for p in self.params]

    def current_decay(self):
        """The decay the next :meth:`update` uses."""
        if self.warmup:
            return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        return self.decay

    def update(self):
        """Fold the current weights in: call after each optimizer update."""
        d = self.current_decay()
        for shadow, param in zip(self.shadow, self.params):
            weight = param.data()
            if weight.dtype != shadow.dtype:
                weight = weight.astype("float32")
            shadow[:] = shadow * d + weight * (1.0 - d)
        self.updates += 1

    @contextlib.contextmanager
    def applied(self):
        """Within the block the network holds the EMA weights; the raw ones come back after."""
        raw = [p.data().copy() for p in self.params]
        try:
            for shadow, param in zip(self.shadow, self.params):
                param.set_data(shadow.astype(param.dtype))
            yield self
        finally:
            for value, param in zip(raw, self.params):
                param.set_data(value)

    def arrays(self):
        """``{structural name: NDArray}`` of the EMA network (``save_parameters`` names)."""
        averaged = dict(zip(self.names, self.shadow))
        return {name: averaged[name] if name in averaged else p._reduce() for name, p in self._all.items()}

    def load_arrays(self, arrays, updates):
        """Take the shadow from :meth:`arrays`-style ``arrays`` (names must match)."""
        missing = [name for name in self.names if name not in arrays]
        if missing:
            raise CheckpointError("the EMA file lacks %d parameter(s), e.g. %s" % (len(missing), missing[0]))
        for i, name in enumerate(self.names):
            self.shadow[i][:] = arrays[name].astype("float32")
        self.updates = int(updates)


def save_ema(ema, params_path):
    """Write ``ema`` beside the checkpoint whose ``.params`` is ``params_path`` (rank 0; atomically).

    Call it before the checkpoint's ``.json`` is written, and put the returned dict into that
    ``.json`` as ``"ema"``: the file is then part of the checkpoint, checked by digest on resume.

    Returns
    -------
    dict or None
        ``{"name", "sha256", "decay", "warmup", "updates"}``; None when ``ema`` is None.
    """
    if ema is None:
        return None
    path = ema_path(params_path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    wait_for_parameters()
    with fileio.atomic_path(path) as tmp:
        mx.nd.save(tmp, ema.arrays())
    return {
        "name": os.path.basename(path),
        "sha256": fileio.file_digest(path),
        "decay": ema.decay,
        "warmup": ema.warmup,
        "updates": ema.updates,
    }


def read_ema(meta):
    """The EMA a checkpoint holds: ``(arrays, updates)``, or None when it was written without one.

    Parameters
    ----------
    meta : dict
        :func:`~gluon_inception.checkpoint.read_checkpoint_meta` of the checkpoint.

    Raises
    ------
    CheckpointError
        When the ``.json`` names an EMA file that is missing or does not match its digest.
    """
    record = meta.get("ema")
    if not record:
        return None
    path = ema_path(meta["paths"]["params"])
    if not os.path.isfile(path) or fileio.file_digest(path) != record.get("sha256"):
        raise CheckpointError(
            "%s is missing or does not match the digest in %s: use another epoch, or resume without --ema-decay"
            % (path, meta["paths"]["meta"])
        )
    return mx.nd.load(path), int(record.get("updates", 0))
