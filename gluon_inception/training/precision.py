"""GPU precision helpers of the training engine: fp16 gradient exchange and the AMP loss scaler.

The loss scaler is MXNet's ``LossScaler`` (``mxnet.contrib.amp``), which ``amp.init_trainer``
attaches to the trainer as ``_amp_loss_scaler``; MXNet offers no API to save or restore it, so its
three fields are read and written here, in one place, for checkpoints and resume.
"""

#: The scaler fields a checkpoint keeps: the scale in use, the one the next step takes (after an
#: overflow it is already halved), and the overflow-free steps counted towards the next doubling.
_SCALER_FIELDS = {"loss_scale": "_loss_scale", "next_loss_scale": "_next_loss_scale", "unskipped": "_unskipped"}


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
