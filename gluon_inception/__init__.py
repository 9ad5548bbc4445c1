"""gluon-inception: GoogLeNet (Inception v1) for Apache MXNet Gluon."""
from ._compat import mx  # noqa: F401  (imports MXNet safely first)
from ._version import __version__
from .models import TOPOLOGIES, AuxHead, ChannelAffine, ConvBN, GoogLeNet, Inception, count_parameters
from .weights import PretrainedEntry, get_pretrained, list_pretrained, register_pretrained
from .zoo import get_model, googlenet, list_models, register_model

__all__ = [
    "AuxHead",
    "ChannelAffine",
    "ConvBN",
    "GoogLeNet",
    "Inception",
    "PretrainedEntry",
    "TOPOLOGIES",
    "count_parameters",
    "get_model",
    "get_pretrained",
    "googlenet",
    "list_models",
    "list_pretrained",
    "register_model",
    "register_pretrained",
    "__version__",
]
