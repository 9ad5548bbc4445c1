"""Where a ready-to-use network comes from: a training checkpoint or pretrained weights."""
import os
from dataclasses import dataclass

from .._compat import mx
from ..checkpoint import CheckpointError, read_checkpoint_meta, verify_checkpoint_files
from ..errors import UsageError
from ..preprocessing import Preprocessing
from .registry import get_model, googlenet, list_models


class ModelSourceError(UsageError):
    """The weights asked for cannot be loaded: missing checkpoint, conflicting options..."""


@dataclass
class LoadedModel:
    """A network ready for inference, with what it needs to be used correctly.

    Attributes
    ----------
    net : mxnet.gluon.HybridBlock
    preprocessing : Preprocessing
        From the weights' metadata.
    class_names : list of str or None
        Name of every output unit.
    source : dict
        Where the weights came from (``{"checkpoint": path, "epoch": ...}`` or
        ``{"pretrained": name}``), for reports.
    class_ids : list of str or None
        Dataset class identifiers (ImageNet WordNet ids, or the folder names a checkpoint was
        trained on): what a prepared dataset's ``classes`` are compared with.
    """

    net: object
    preprocessing: Preprocessing
    class_names: list
    source: dict
    class_ids: list = None


def _check_architecture(what, actual, topology, classes):
    """Raise :class:`ModelSourceError` naming every option asked for that ``actual`` (a dict) contradicts."""
    conflicts = [
        (key, actual.get(key), wanted)
        for key, wanted in (("topology", topology), ("classes", classes))
        if wanted is not None and actual.get(key) not in (None, wanted)
    ]
    if conflicts:
        described = ", ".join("%s: %s has %r, you asked for %r" % (key, what, have, wanted)
                              for key, have, wanted in conflicts)
        options = " / ".join("--%s" % key.replace("_", "-") for key, _, _ in conflicts)
        raise ModelSourceError("%s does not match the requested architecture (%s). Leave out %s to use its own, "
                               "or give matching values." % (what, described, options))


def load_checkpoint_model(path, topology=None, classes=None, ctx=None):
    """Load a training checkpoint for inference.

    Parameters
    ----------
    path : str
        A checkpoint's ``.params`` file or a checkpoint folder (its latest complete checkpoint).
    topology : str, optional
        The topology you expect; an error names it when the checkpoint differs.
    classes : int, optional
        The number of classes you expect; checked likewise.
    ctx : mxnet.Context, optional

    Returns
    -------
    LoadedModel

    Raises
    ------
    ModelSourceError
        When the checkpoint does not exist or disagrees with ``topology``/``classes``.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelSourceError(
            "checkpoint %s does not exist: give a checkpoint's .params file or the --checkpoints folder "
            "of a training run" % path
        )
    net, meta = load_model_from_checkpoint(path, ctx=ctx)
    model = dict(meta.get("model") or {})
    _check_architecture("checkpoint %s" % path, model, topology, classes)
    if not meta.get("preprocessing"):
        raise ModelSourceError("checkpoint %s records no preprocessing: it was not written by this package's "
                               "training; load it with load_model_from_checkpoint and give a Preprocessing" % path)
    names = (meta.get("data") or {}).get("classes")
    if names is not None and len(names) != model.get("classes", len(names)):
        names = None
    params = (meta.get("paths") or {}).get("params") or path
    source = {"checkpoint": os.path.abspath(params), "epoch": meta.get("epoch"), "model": model}
    return LoadedModel(net, Preprocessing.from_dict(meta["preprocessing"]), names, source, class_ids=names)


def load_pretrained_model(name=None, topology=None, classes=None, ctx=None):
    """Load pretrained ImageNet weights for inference.

    Parameters
    ----------
    name : str, optional
        A pretrained entry (see :func:`gluon_inception.list_pretrained`); default: the most
        accurate one.
    topology, classes : optional
        What you expect; an error names any option the entry disagrees with.
    ctx : mxnet.Context, optional

    Returns
    -------
    LoadedModel
    """
    net = googlenet(pretrained=name or True, ctx=ctx)
    entry = net.pretrained_cfg
    actual = {"topology": net.topology, "classes": net.classes}
    _check_architecture("pretrained entry %r" % entry.name, actual, topology, classes)
    names, ids = getattr(net, "class_names", None), getattr(net, "class_ids", None)
    return LoadedModel(net, entry.preprocessing, names, {"pretrained": entry.name}, class_ids=ids)


def load_model_from_checkpoint(path, ctx=None, prefix=None):
    """Rebuild the network of a checkpoint and load its parameters.

    Parameters
    ----------
    path : str
        A checkpoint's ``.params`` (or ``.json``) file, or a checkpoint folder (the latest
        complete checkpoint in it is taken).
    ctx : mxnet.Context, optional
        Default: the CPU.
    prefix : str, optional
        With a folder that holds several runs, which one.

    Returns
    -------
    net : GoogLeNet
        Initialised, in inference mode unless ``autograd.record()`` is active.
    meta : dict
        The checkpoint's metadata: ``model`` (name, topology, classes, aux_logits), ``epoch``,
        ``lr``, ``metrics``, ``config``, ``preprocessing`` (:meth:`Preprocessing.to_dict`),
        ``data`` (classes, root), ``paths``.

    Raises
    ------
    CheckpointError
        Incomplete or damaged checkpoint, or a network this package cannot rebuild.

    Examples
    --------
    >>> net, meta = load_model_from_checkpoint("runs/googlenet")  # doctest: +SKIP
    >>> meta["epoch"], meta["metrics"]["val"]["top1"]  # doctest: +SKIP
    (50, 0.6587)
    """
    meta = read_checkpoint_meta(path, prefix)
    model = meta.get("model") or {}
    name = model.get("name")
    if name not in list_models():
        raise CheckpointError(
            "checkpoint %s holds a network this package does not build (%s): construct it yourself and "
            "call net.load_parameters(%r)" % (meta["paths"]["meta"], model.get("class", name), meta["paths"]["params"])
        )
    verify_checkpoint_files(meta)
    kwargs = {k: model[k] for k in ("classes", "topology", "aux_logits", "dropout") if k in model}
    ctx = ctx if ctx is not None else mx.cpu()
    net = get_model(name, ctx=ctx, **kwargs)
    try:
        net.load_parameters(meta["paths"]["params"], ctx=ctx)
    except (AssertionError, mx.base.MXNetError) as err:
        raise CheckpointError(
            "parameters in %s do not fit the network described in its .json: %s" % (meta["paths"]["params"], err)
        ) from err
    return net, meta
