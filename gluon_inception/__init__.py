"""gluon-inception: GoogLeNet (Inception v1) for Apache MXNet Gluon."""
from ._compat import mx  # noqa: F401  (imports MXNet safely first)
from .blocks import AuxHead, ConvBN, Inception
from .googlenet import TOPOLOGIES, GoogLeNet, count_parameters
from .model_zoo import get_model, googlenet, list_models, register_model

#: The version of this gluon-inception installation.
__version__ = "0.1.0"

__all__ = [
    "AuxHead",
    "ConvBN",
    "GoogLeNet",
    "Inception",
    "TOPOLOGIES",
    "count_parameters",
    "get_model",
    "googlenet",
    "list_models",
    "register_model",
    "__version__",
]
