"""Pretrained weights: the registry of entries, the download store, conversion and loading."""
from .entries import (
    PretrainedEntry,
    PretrainedWarning,
    UnknownPretrainedError,
    default_pretrained,
    get_pretrained,
    list_pretrained,
    pretrained_entries,
    purge,
    register_pretrained,
    unregister_pretrained,
)
from .load import FetchedWeights, fetch_pretrained, load_pretrained, resolve_pretrained
from .store import (
    ChecksumError,
    CorruptWeightsError,
    DownloadError,
    LockTimeoutError,
    PretrainedError,
    TruncatedDownloadError,
    UnsafeArchiveError,
)

__all__ = [
    "ChecksumError",
    "CorruptWeightsError",
    "DownloadError",
    "FetchedWeights",
    "LockTimeoutError",
    "PretrainedEntry",
    "PretrainedError",
    "PretrainedWarning",
    "TruncatedDownloadError",
    "UnknownPretrainedError",
    "UnsafeArchiveError",
    "default_pretrained",
    "fetch_pretrained",
    "get_pretrained",
    "list_pretrained",
    "load_pretrained",
    "pretrained_entries",
    "purge",
    "register_pretrained",
    "resolve_pretrained",
    "unregister_pretrained",
]
