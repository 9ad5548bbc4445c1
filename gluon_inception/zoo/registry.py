"""Model names and factories: :func:`get_model`, :func:`list_models`, :func:`register_model`."""
from collections import namedtuple

from .._compat import mx
from ..errors import UsageError
from ..models.googlenet import GoogLeNet
from ..registry import Registry
from ..weights.entries import list_pretrained
from ..weights.load import fetch_pretrained, load_pretrained

_Model = namedtuple("_Model", "factory topology")
_MODELS = Registry("model")


def register_model(name=None, topology=None, overwrite=False):
    """Decorator that makes a factory function available to :func:`get_model` by name.

    Parameters
    ----------
    name : str, optional
        The registered name (case-insensitive); default: the function's name.
    topology : str, optional
        The topology the factory builds, which decides the pretrained entries that fit it; None
        when the factory lets its caller choose (then every entry fits).
    overwrite : bool, default False
        Replace a factory of the same name instead of refusing.

    Returns
    -------
    callable
        The decorator; it returns the factory unchanged.

    Raises
    ------
    ValueError
        When the name is already registered and ``overwrite`` is False.

    Examples
    --------
    >>> from gluon_inception import get_model, googlenet, register_model
    >>> @register_model("googlenet_no_dropout")  # doctest: +SKIP
    ... def googlenet_no_dropout(**kwargs):
    ...     return googlenet(dropout=0.0, **kwargs)
    >>> get_model("googlenet_no_dropout", classes=10).dropout_rate  # doctest: +SKIP
    0.0

    Names are unique:

    >>> @register_model("googlenet")
    ... def my_googlenet(**kwargs):
    ...     return googlenet(**kwargs)
    Traceback (most recent call last):
    ValueError: model name 'googlenet' is already registered: pass overwrite=True or pick another name
    """

    def wrap(factory):
        _MODELS.register(name or factory.__name__, _Model(factory, topology), overwrite=overwrite)
        return factory

    return wrap


def unregister_model(name):
    """Remove the model called ``name`` (case-insensitive) and return its factory."""
    return _MODELS.unregister(name).factory


def pretrained_for(name):
    """Names of the pretrained entries that fit model ``name``, most accurate first.

    Examples
    --------
    >>> from gluon_inception.zoo import pretrained_for
    >>> pretrained_for("googlenet_torchvision"), pretrained_for("googlenet_paper")
    (['googlenet_torchvision_in1k'], [])
    """
    topology = _MODELS.get(name).topology
    return [row["name"] for row in list_pretrained() if topology in (None, row["topology"])]


def list_models(pretrained=False):
    """Sorted names accepted by :func:`get_model`.

    Parameters
    ----------
    pretrained : bool, default False
        Only the names that have pretrained weights (see :func:`pretrained_for`).

    Returns
    -------
    list of str

    Examples
    --------
    >>> from gluon_inception import list_models
    >>> 'googlenet' in list_models()
    True
    >>> list_models(pretrained=True)
    ['googlenet', 'googlenet_gluoncv', 'googlenet_torchvision']
    """
    return sorted(name for name in _MODELS if not pretrained or pretrained_for(name))


def get_model(name, **kwargs):
    """Build a registered model by name.

    Parameters
    ----------
    name : str
        One of :func:`list_models` (case-insensitive).
    **kwargs
        Passed to the model's factory, e.g. ``classes=10`` or ``pretrained=True`` (the most
        accurate entry that fits the name).

    Returns
    -------
    mxnet.gluon.Block
        What the factory returns (an initialised :class:`GoogLeNet` for the built-in names).

    Raises
    ------
    gluon_inception.registry.UnknownNameError
        For an unknown name; the message lists the known ones.
    gluon_inception.errors.UsageError
        For ``pretrained=True`` on a name without weights; the message lists the names with weights.

    Examples
    --------
    >>> from gluon_inception import get_model
    >>> net = get_model('googlenet_gluoncv', classes=10)
    >>> net.topology
    'gluoncv'
    """
    model = _MODELS.get(name)
    if kwargs.get("pretrained") is True and not pretrained_for(name):
        raise UsageError(
            "model %r has no pretrained weights; these names have: %s"
            % (name, ", ".join(list_models(pretrained=True)) or "none")
        )
    return model.factory(**kwargs)


@register_model()
def googlenet(
    classes=1000, topology=None, aux_logits=False, ctx=None, init=None, pretrained=False, root=None, **kwargs
):
    """Build a GoogLeNet with initialised parameters, or with pretrained weights.

    Parameters
    ----------
    classes : int, default 1000
        Number of output classes.
    topology : {"paper", "gluoncv", "torchvision"}, optional
        See :class:`GoogLeNet`. Default: ``"paper"``, or with ``pretrained`` the topology the
        weights need (passing another one is an error).
    aux_logits : bool, default False
        Add the auxiliary heads (returned only while training).
    ctx : mxnet.Context or list of Context, default ``mx.cpu()``
        Where the parameters are initialised.
    init : mxnet.init.Initializer, optional
        Defaults to MSRA (He) initialisation, ``Xavier(gaussian, in, 2)``.
    pretrained : bool, str, os.PathLike or PretrainedEntry, default False
        ``True`` loads the most accurate registered ImageNet-1k weights (of ``topology`` when given),
        or with a warning the next best when no source of their file answers; an entry name loads
        that entry and never falls back; a path loads a weight file. With ``classes != 1000`` all but
        the classifier is loaded (fine-tuning). The entry is attached as ``net.pretrained_cfg`` and
        ImageNet class names as ``net.class_names``. See :doc:`/model_zoo`.
    root : str, optional
        Cache folder for pretrained weights; see :func:`gluon_inception.weights.store.cache_root`.
    **kwargs
        Passed to :class:`GoogLeNet` (``dropout``, ``norm_layer``, ``norm_kwargs``).

    Returns
    -------
    GoogLeNet

    Raises
    ------
    ValueError
        For bad arguments, an unknown weight name, or a topology the weights do not fit.
    gluon_inception.weights.store.PretrainedError
        When weights cannot be fetched or read (checksum, download, corrupt file).

    Examples
    --------
    >>> import mxnet as mx
    >>> from gluon_inception import googlenet
    >>> net = googlenet(classes=10)
    >>> net(mx.nd.zeros((1, 3, 224, 224))).shape
    (1, 10)
    >>> net = googlenet(pretrained=True)  # doctest: +SKIP
    >>> net.pretrained_cfg.name, net.topology  # doctest: +SKIP
    ('googlenet_gluoncv_in1k', 'gluoncv')
    """
    fetched = None
    if pretrained is not False and pretrained is not None:
        # Fetch first: a file that cannot be had fails before anything is built.
        fetched = fetch_pretrained(pretrained, topology, root=root)
        topology = fetched.topology
    net = GoogLeNet(classes=classes, topology=topology or "paper", aux_logits=aux_logits, **kwargs)
    if init is None:
        init = mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2)
    net.initialize(init, ctx=ctx if ctx is not None else mx.cpu())
    return net if fetched is None else load_pretrained(net, fetched)


def _with_topology(topology, what):
    """Register ``googlenet_TOPOLOGY``: :func:`googlenet` with ``topology`` fixed."""

    def factory(**kwargs):
        return googlenet(topology=topology, **kwargs)

    factory.__name__ = factory.__qualname__ = name = "googlenet_" + topology
    factory.__doc__ = """:func:`googlenet` with ``topology=%r``: %s

    Parameters
    ----------
    **kwargs
        Any other argument of :func:`googlenet`.

    Returns
    -------
    GoogLeNet

    Examples
    --------
    >>> from gluon_inception import get_model
    >>> get_model(%r, classes=10).topology
    %r
    """ % (topology, what, name, topology)
    return register_model(topology=topology)(factory)


googlenet_paper = _with_topology("paper", "true 5x5 branches, as the book chapter built it.")
googlenet_gluoncv = _with_topology("gluoncv", "3x3 third branches, the shape of GluonCV's published weights.")
googlenet_torchvision = _with_topology(
    "torchvision", "torchvision's network, which re-scales its input itself; ``pretrained=True`` loads "
    "torchvision's ImageNet-1k weights."
)
