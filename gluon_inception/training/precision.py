"""Precision helpers of the training engine: which ``--precision`` trains where, AMP, fp16 gradient
exchange and the AMP loss scaler.

``--precision float16`` is MXNet's AMP with dynamic loss scaling (GPU only); ``--precision bfloat16`` is AMP
with bfloat16 compute on CPUs with AVX-512 BF16 or AMX (MXNet 1.9.1 has bfloat16 kernels on CPU
only). bfloat16 has float32's exponent range, so it needs no loss scaling. Under either, parameters,
gradients, optimizer states and checkpoints stay float32: AMP casts the inputs of convolutions and
dense layers inside the graph.

The loss scaler is MXNet's ``LossScaler`` (``mxnet.contrib.amp``), which ``amp.init_trainer``
attaches to the trainer as ``_amp_loss_scaler``; MXNet offers no API to save or restore it, so its
three fields are read and written here, in one place, for checkpoints and resume.
"""

from .._compat import amp
from ..cpu import supports_bf16
from .config import ConfigError

#: The scaler fields a checkpoint keeps: the scale in use, the one the next step takes (after an
#: overflow it is already halved), and the overflow-free steps counted towards the next doubling.
_SCALER_FIELDS = {"loss_scale": "_loss_scale", "next_loss_scale": "_next_loss_scale", "unskipped": "_unskipped"}

#: The precision MXNet's AMP was initialised with in this process (None: not yet). ``amp.init`` patches
#: MXNet's operator functions for the rest of the process and cannot be undone or switched.
_amp_precision = None


def check_precision(precision, ctx):
    """Raise :class:`~gluon_inception.training.ConfigError` when ``precision`` cannot train on ``ctx``.

    Parameters
    ----------
    precision : {"float32", "float16", "bfloat16"}
        ``"int8"`` is for inference; :class:`~gluon_inception.training.TrainConfig` refuses it.
    ctx : mxnet.Context
        The device this rank trains on.

    Examples
    --------
    >>> from gluon_inception._compat import mx
    >>> check_precision("float32", mx.cpu())
    >>> check_precision("bfloat16", mx.gpu(0))
    Traceback (most recent call last):
    ...
    gluon_inception.training.config.ConfigError: --precision bfloat16 trains on CPUs only: ...
    """
    if precision == "float16" and ctx.device_type != "gpu":
        raise ConfigError(
            "--precision float16 needs a GPU: MXNet's AMP casts to float16 kernels that exist on GPUs only "
            "(on CPU they are slower than float32). Train on CPU with --precision float32, or --precision bfloat16 "
            "on a CPU with AVX-512 BF16 or AMX."
        )
    if precision != "bfloat16":
        return
    if ctx.device_type == "gpu":
        raise ConfigError(
            "--precision bfloat16 trains on CPUs only: MXNet 1.9.1 has no bfloat16 GPU kernels. "
            "Use --precision float16 on GPUs."
        )
    if not supports_bf16():
        raise ConfigError(
            "--precision bfloat16 needs a CPU with AVX-512 BF16 or AMX-BF16 (this one has neither: "
            "bfloat16 would be emulated, slower than float32). Train with --precision float32."
        )


def init_amp(precision):
    """Initialise MXNet's AMP for ``precision`` (before the network is built); the loss-scaling AMP or None.

    Returns
    -------
    module or None
        ``mxnet.contrib.amp`` under float16, whose ``scale_loss``/``init_trainer`` the engine then
        uses; None under float32 and bfloat16, which train without loss scaling.

    Raises
    ------
    ConfigError
        When this process already initialised AMP for another precision (or trains float32 after it):
        AMP's patches of MXNet cannot be switched, so each precision needs its own process.
    """
    global _amp_precision
    if _amp_precision not in (None, precision):
        raise ConfigError(
            "--precision %s: this process already trained with MXNet's AMP in %s, which cannot be switched off "
            "or changed; run each precision in its own process" % (precision, _amp_precision)
        )
    if precision == "float32":
        return None
    if _amp_precision is None:
        amp.init(target_dtype=precision)
        _amp_precision = precision
    return amp if precision == "float16" else None


def trainer_kwargs(hvd, fp16_allreduce):
    """Extra ``hvd.DistributedTrainer`` arguments: Horovod's fp16 compression when asked for.

    Gradients then travel between ranks as float16 (half the bytes) and are cast back before the
    update. Without Horovod there is nothing to exchange and nothing is added.

    Examples
    --------
    >>> trainer_kwargs(None, fp16_allreduce=True)
    {}
    """
    if hvd is None or not fp16_allreduce:
        return {}
    return {"compression": hvd.Compression.fp16}


def loss_scaler_state(trainer):
    """The AMP loss scaler's state as a JSON-ready dict (None when the trainer has no scaler)."""
    scaler = getattr(trainer, "_amp_loss_scaler", None)
    if scaler is None:
        return None
    state = {key: float(getattr(scaler, attr)) for key, attr in _SCALER_FIELDS.items()}
    state["unskipped"] = int(state["unskipped"])
    return state


def restore_loss_scaler(trainer, state):
    """Put a saved :func:`loss_scaler_state` back (a bare number restores the scale alone).

    Raises
    ------
    ValueError
        When the trainer has no AMP loss scaler (``amp.init_trainer`` was not called) or the saved
        scale is not a positive number.
    """
    scaler = getattr(trainer, "_amp_loss_scaler", None)
    if scaler is None:
        raise ValueError("the checkpoint holds an AMP loss scale but this trainer has no AMP loss scaler")
    if not isinstance(state, dict):
        state = {"loss_scale": state, "next_loss_scale": state}
    for key in ("loss_scale", "next_loss_scale"):
        value = float(state.get(key, state["loss_scale"]))
        if not value > 0:
            raise ValueError("saved AMP %s must be > 0, got %r" % (key, value))
        setattr(scaler, _SCALER_FIELDS[key], value)
    scaler._unskipped = int(state.get("unskipped", 0))
