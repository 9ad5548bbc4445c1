"""Fine-tuning in the training engine: start from pretrained weights, a new classifier, a slower or
frozen backbone.

``--pretrained NAME|PATH`` is resolved and loaded on rank 0 only (one download per job); the other
ranks build the same architecture and receive rank 0's weights, fresh classifier included, through
the broadcast that starts every run. The classifier is the network's ``output`` block (and the aux
heads, which pretrained weights do not have); everything else is the backbone.
"""
import os

from .._compat import mx
from ..checkpoint import CheckpointError, latest_checkpoint, read_checkpoint_meta
from ..errors import GluonInceptionError
from ..preprocessing import Preprocessing
from ..weights.load import resolve_pretrained
from ..zoo.registry import get_model
from .config import ConfigError

#: What ``--pretrained`` alone stands for: the most accurate registered entry.
BEST = "best"


def _checkpoint_params(text):
    """The ``.params`` of the training checkpoint ``text`` names (file or folder), or None."""
    try:
        if os.path.isdir(text):
            params = latest_checkpoint(text)
            return None if params is None else read_checkpoint_meta(params)
        if text.endswith((".params", ".json")) and os.path.isfile(os.path.splitext(text)[0] + ".json"):
            return read_checkpoint_meta(text)
    except CheckpointError:
        return None
    return None


def load_pretrained_start(cfg, classes, ctx):
    """Build ``cfg.model`` with ``classes`` outputs from ``cfg.pretrained`` (rank 0 calls this).

    Parameters
    ----------
    cfg : TrainConfig
        Uses ``pretrained``, ``model``, ``topology`` (checked against the weights' when it was set
        explicitly), ``aux_logits`` and ``dropout``.
    classes : int
        The dataset's number of classes: the classifier keeps its fresh initialisation when it
        differs from the weights'.
    ctx : mxnet.Context

    Returns
    -------
    net : mxnet.gluon.HybridBlock
    info : dict
        ``source`` (what was loaded, for logs), ``topology`` and ``preprocessing`` (the
        weights' :meth:`~gluon_inception.preprocessing.Preprocessing.to_dict`).

    Raises
    ------
    ConfigError
        One line naming ``--pretrained`` and what to do, whatever went wrong (unknown name, no
        such file, download failed, damaged file, topology conflict).
    """
    value = cfg.pretrained
    try:
        meta = _checkpoint_params(value) if value != BEST else None
        if meta is not None:  # one of our training checkpoints: its own topology and normalisation
            weights, topology = meta["paths"]["params"], (meta.get("model") or {}).get("topology")
            preprocessing = Preprocessing.from_dict(meta.get("preprocessing") or {})
            source = "checkpoint %s" % weights
        else:
            entry = resolve_pretrained(True if value == BEST else value)
            weights, topology, preprocessing = (True if value == BEST else value), entry.topology, entry.preprocessing
            source = "pretrained %s" % entry.name
        if "topology" in getattr(cfg, "explicit", ()) and topology and cfg.topology != topology:
            raise ConfigError(
                "the weights of --pretrained %s have topology %r but --topology (or the recipe) says %r: leave "
                "--topology out or pass --topology %s" % (value, topology, cfg.topology, topology)
            )
        kwargs = {"classes": classes, "aux_logits": cfg.aux_logits, "dropout": cfg.dropout}
        if cfg.model == "googlenet":
            kwargs["topology"] = topology
        net = get_model(cfg.model, ctx=ctx, pretrained=weights, **kwargs)
    except ConfigError:
        raise
    except (GluonInceptionError, ValueError, OSError, mx.base.MXNetError) as err:
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if not isinstance(err, GluonInceptionError):  # the package's own errors already say what to do
            text += " (give a name from `gluon-inception pretrained list`, a weight file or a checkpoint)"
        raise ConfigError("--pretrained %s: %s" % (value, text)) from None
    return net, {"source": source, "topology": topology, "preprocessing": preprocessing.to_dict()}


def normalise_as(data, preprocessing, log):
    """Make ``data`` normalise its images as the weights of ``preprocessing`` (a ``to_dict()``) expect.

    A data source without ``mean``/``std`` attributes only gets a warning.
    """
    mean, std = tuple(preprocessing["mean"]), tuple(preprocessing["std"])
    if not hasattr(data, "mean"):
        log.warning("the data source has no mean/std to set: make sure it normalises as the weights "
                    "expect, mean %s and std %s", _rgb(mean), _rgb(std))  # fmt: skip
    elif (tuple(data.mean), tuple(data.std)) != (mean, std):
        data.mean, data.std = mean, std
        log.info("normalisation: the pretrained weights' mean %s and std %s (not the dataset's)",
                 _rgb(mean), _rgb(std))  # fmt: skip


def _rgb(values):
    return "(%s)" % ", ".join("%.1f" % v for v in values)

def head_and_backbone(net):
    """``(head, backbone)`` parameter lists: the ``output`` block and aux heads, then the rest.

    Raises
    ------
    ConfigError
        For a network without an ``output`` block (the engine would not know its classifier).
    """
    heads = [getattr(net, name, None) for name in ("output", "aux1", "aux2")]
    if heads[0] is None:
        raise ConfigError(
            "%s has no `output` block: --freeze-backbone/--backbone-lr-mult need to know the classifier"
            % type(net).__name__
        )
    head = {id(p) for block in heads if block is not None for p in block.collect_params().values()}
    params = list(net.collect_params().values())
    return [p for p in params if id(p) in head], [p for p in params if id(p) not in head]


def configure_backbone(net, freeze=False, lr_mult=1.0):
    """Freeze the backbone or scale its learning rate; returns the number of backbone weights affected.

    Frozen means ``grad_req='null'`` (no gradient, no update, nothing to allreduce) and every
    BatchNorm of the backbone in inference mode (``use_global_stats``): it normalises with the
    pretrained running statistics and no longer updates them, so the backbone is a fixed feature
    extractor, identical on every rank. Call it before the network is hybridized.
    """
    _, backbone = head_and_backbone(net)
    learned = [p for p in backbone if p.grad_req != "null"]
    if freeze:
        for param in learned:
            param.grad_req = "null"
        heads = {getattr(net, name, None) for name in ("output", "aux1", "aux2")}

        def inference_bn(block):
            if isinstance(block, mx.gluon.nn.BatchNorm):
                block._kwargs["use_global_stats"] = True

        for child in net._children.values():
            if child not in heads:
                child.apply(inference_bn)
    elif lr_mult != 1.0:
        for param in learned:
            param.lr_mult = lr_mult
    return sum(p.data().size for p in learned)
