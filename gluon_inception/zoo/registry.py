"""Model names and factories: :func:`get_model`, :func:`list_models`, :func:`register_model`.

A factory builds and initialises a network (:mod:`gluon_inception.models`), then, when asked,
has the weights layer (:mod:`gluon_inception.weights`) load pretrained weights into it.
"""
from .._compat import mx
from ..models.googlenet import GoogLeNet
from ..weights.load import fetch_pretrained, load_pretrained

_MODELS = {}


def register_model(name=None):
    """Decorator that makes a factory function available to :func:`get_model` by name.

    Parameters
    ----------
    name : str, optional
        The registered name (case-insensitive); default: the function's name.

    Returns
    -------
    callable
        The decorator; it returns the factory unchanged.

    Raises
    ------
    ValueError
        When the name is already registered.

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
    ValueError: model name 'googlenet' is already registered
    """

    def wrap(factory):
        key = (name or factory.__name__).lower()
        if key in _MODELS:
            raise ValueError("model name %r is already registered" % key)
        _MODELS[key] = factory
        return factory

    return wrap


def list_models():
    """Sorted names accepted by :func:`get_model`.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from gluon_inception import list_models
    >>> 'googlenet' in list_models()
    True
    """
    return sorted(_MODELS)


def get_model(name, **kwargs):
    """Build a registered model by name.

    Parameters
    ----------
    name : str
        One of :func:`list_models` (case-insensitive).
    **kwargs
        Passed to the model's factory, e.g. ``classes=10``.

    Returns
    -------
    mxnet.gluon.Block
        What the factory returns (an initialised :class:`GoogLeNet` for the built-in names).

    Raises
    ------
    ValueError
        For an unknown name; the message lists the known ones.

    Examples
    --------
    >>> from gluon_inception import get_model
    >>> net = get_model('googlenet_gluoncv', classes=10)
    >>> net.topology
    'gluoncv'
    """
    key = str(name).lower()
    if key not in _MODELS:
        raise ValueError("unknown model %r: known models are %s" % (name, ", ".join(list_models())))
    return _MODELS[key](**kwargs)


def _initialize(net, ctx, init):
    if init is None:
        init = mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2)
    net.initialize(init, ctx=ctx if ctx is not None else mx.cpu())
    return net


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
        ``True`` loads the most accurate ImageNet-1k weights registered (GluonCV's, 72.87% top-1;
        see :func:`~gluon_inception.weights.list_pretrained`), or when no source of that file
        answers, torchvision's (69.78%) with a warning; a name picks an entry and never falls
        back (``"googlenet_torchvision_in1k"``); a path loads a weight file (ours, GluonCV's
        ``.params``/``.zip``, torchvision's ``.pth``). With ``classes != 1000`` everything but the
        classifier is loaded (fine-tuning); aux heads are initialised, with a warning, when the
        weights have none. The entry is attached as ``net.pretrained_cfg`` and ImageNet class
        names as ``net.class_names``.
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
    _initialize(net, ctx, init)
    return net if fetched is None else load_pretrained(net, fetched)


@register_model()
def googlenet_paper(**kwargs):
    """:func:`googlenet` with ``topology="paper"`` (true 5x5 branches), as the book chapter built it.

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
    >>> get_model("googlenet_paper", classes=10).topology
    'paper'
    """
    return googlenet(topology="paper", **kwargs)


@register_model()
def googlenet_gluoncv(**kwargs):
    """:func:`googlenet` with ``topology="gluoncv"`` (3x3 third branch), the shape of GluonCV's and
    torchvision's published weights.

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
    >>> get_model("googlenet_gluoncv", classes=10).topology
    'gluoncv'
    """
    return googlenet(topology="gluoncv", **kwargs)
