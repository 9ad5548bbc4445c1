"""Ready networks by name: the model registry and factories, and loading from checkpoints."""
from .registry import (
    get_model,
    googlenet,
    googlenet_gluoncv,
    googlenet_paper,
    googlenet_torchvision,
    list_models,
    pretrained_for,
    register_model,
    unregister_model,
)
from .sources import (
    LoadedModel,
    ModelSourceError,
    load_checkpoint_model,
    load_model_from_checkpoint,
    load_pretrained_model,
)

__all__ = [
    "LoadedModel",
    "ModelSourceError",
    "get_model",
    "googlenet",
    "googlenet_gluoncv",
    "googlenet_paper",
    "googlenet_torchvision",
    "list_models",
    "load_checkpoint_model",
    "load_model_from_checkpoint",
    "load_pretrained_model",
    "pretrained_for",
    "register_model",
    "unregister_model",
]
