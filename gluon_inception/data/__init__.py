"""Data: ImageNet (or any folder-per-class tree) to record files, and the pipelines that read them.

- :func:`prepare_dataset` / ``gluon-inception prepare``: images -> ``.lst`` + ``.rec``/``.idx``
  (MXNet's im2rec) + ``dataset.json`` (classes, splits, mean/std).
- :func:`load_dataset`: read a prepared folder back as a :class:`DatasetInfo`.
- :func:`build_train_iter` / :func:`build_val_iter`: ``ImageRecordIter`` pipelines, sharded evenly
  over Horovod ranks.
- :func:`prepare_demo`: the embedded digits dataset, for running everything without ImageNet.
- :func:`check_record_file`: validate a ``.rec``/``.idx`` pair up front; :func:`verify_dataset`
  (``gluon-inception check``): compare the record files with the checksums ``prepare`` recorded.
- :class:`DatasetSource`: a prepared dataset as a training run reads it, sharded over the ranks.
- :class:`DeviceAugment`: the per-pixel end of the training pipeline (colour jitter, cast,
  mean/std) as MXNet ops on the training device, for uint8 batches.
"""
from .dataset import DatasetInfo, Split, damaged_records, load_dataset, verify_dataset
from .demo import default_demo_root, prepare_demo
from .device_augment import DeviceAugment
from .pipeline import PRESETS, RecordBatches, augmentation, build_train_iter, build_val_iter, shard_sizes
from .prepare import PrepareError, prepare_dataset, record_statistics
from .records import RecordFileError, check_record_file
from .source import DatasetSource

__all__ = [
    "DatasetInfo",
    "DatasetSource",
    "DeviceAugment",
    "PRESETS",
    "PrepareError",
    "RecordBatches",
    "RecordFileError",
    "Split",
    "augmentation",
    "build_train_iter",
    "build_val_iter",
    "check_record_file",
    "damaged_records",
    "default_demo_root",
    "load_dataset",
    "prepare_dataset",
    "prepare_demo",
    "record_statistics",
    "shard_sizes",
    "verify_dataset",
]
