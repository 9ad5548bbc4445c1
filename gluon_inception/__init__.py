"""gluon-inception: GoogLeNet (Inception v1) for Apache MXNet Gluon."""
from ._compat import mx  # noqa: F401  (imports MXNet safely first)
from .blocks import AuxHead, ChannelAffine, ConvBN, Inception
from .googlenet import TOPOLOGIES, GoogLeNet, count_parameters
from .model_zoo import get_model, googlenet, list_models, register_model
from .pretrained import PretrainedEntry, get_pretrained, list_pretrained, register_pretrained

#: The version of this gluon-inception installation.
__version__ = "0.1.0"

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
