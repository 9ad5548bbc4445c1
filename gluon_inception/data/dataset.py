"""A prepared dataset: a folder of record files described by ``dataset.json``.

``gluon-inception prepare`` (:func:`~gluon_inception.data.prepare_dataset`) writes the folder;
:func:`load_dataset` reads it back. ``dataset.json`` is written last, so a folder without it is
not a complete dataset.
"""
import json
import os
from typing import NamedTuple

from .records import REBUILD_HINT

DATASET_FILE = "dataset.json"
FORMAT_NAME = "gluon-inception-dataset"
FORMAT_VERSION = 1
SPLIT_NAMES = ("train", "val", "test")


class Split(NamedTuple):
    """One split of a prepared dataset.

    Attributes
    ----------
    name : str
        ``"train"``, ``"val"`` or ``"test"``.
    rec, idx, lst : str
        Absolute paths of the record file, its index and the image list it was built from.
    count : int
        Number of records (images) in the split.
    """

    name: str
    rec: str
    idx: str
    lst: str
    count: int


class DatasetInfo:
    """A prepared dataset, as described by its ``dataset.json``.

    Attributes
    ----------
    root : str
        Absolute path of the folder.
    classes : list of str
        Class names (ImageNet wnids or folder names); the label of class ``classes[i]`` is ``i``.
    num_classes : int
    mean, std : tuple of float
        Per-channel RGB mean and standard deviation of the training records, 0-255 scale.
    image_size : int
        The shorter side every image was resized to when the records were built.
    meta : dict
        The whole ``dataset.json``.
    """

    def __init__(self, root, meta):
        self.root = os.path.abspath(root)
        self.meta = meta
        self.classes = list(meta["classes"])
        self.num_classes = len(self.classes)
        self.mean = tuple(float(v) for v in meta["mean"])
        self.std = tuple(float(v) for v in meta["std"])
        self.image_size = int(meta["image_size"])
        self._splits = {}
        for name, entry in meta["splits"].items():
            self._splits[name] = Split(
                name=name,
                rec=os.path.join(self.root, entry["rec"]),
                idx=os.path.join(self.root, entry["idx"]),
                lst=os.path.join(self.root, entry["lst"]),
                count=int(entry["count"]),
            )

    @property
    def split_names(self):
        """Names of the splits this dataset has, in train/val/test order."""
        order = {name: i for i, name in enumerate(SPLIT_NAMES)}
        return sorted(self._splits, key=lambda n: (order.get(n, len(order)), n))

    def has_split(self, name):
        """True when the dataset has a split called ``name``."""
        return name in self._splits

    def split(self, name):
        """The :class:`Split` called ``name``.

        Raises
        ------
        ValueError
            When there is no such split; the message lists the splits that exist.
        """
        if name not in self._splits:
            raise ValueError(
                "dataset %s has no %r split; it has: %s" % (self.root, name, ", ".join(self.split_names) or "none")
            )
        return self._splits[name]

    def counts(self):
        """The number of images per split as text: ``"train 1297, val 200, test 300"``."""
        return ", ".join("%s %d" % (n, self._splits[n].count) for n in self.split_names)

    @property
    def skipped_report(self):
        """Path of the report listing images that could not be read, or None when none were skipped."""
        report = self.meta.get("skipped_report")
        return os.path.join(self.root, report) if report else None

    def __repr__(self):
        counts = ", ".join("%s=%d" % (n, self._splits[n].count) for n in self.split_names)
        return "DatasetInfo(%r, classes=%d, image_size=%d, %s)" % (self.root, self.num_classes, self.image_size, counts)


def load_dataset(root):
    """Read the description of a prepared dataset folder.

    Parameters
    ----------
    root : str or os.PathLike
        A folder written by ``gluon-inception prepare`` or :func:`~gluon_inception.data.prepare_demo`.

    Returns
    -------
    DatasetInfo

    Raises
    ------
    FileNotFoundError
        When the folder or its ``dataset.json`` does not exist (preparation never ran or did not finish).
    ValueError
        When ``dataset.json`` is not a dataset description this version understands.

    Examples
    --------
    >>> from gluon_inception.data import load_dataset, prepare_demo
    >>> info = load_dataset(prepare_demo("/tmp/digits"))  # doctest: +SKIP
    >>> info.num_classes, info.split("train").count  # doctest: +SKIP
    (10, 1297)
    """
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root):
        raise FileNotFoundError("dataset folder %s does not exist. %s" % (root, REBUILD_HINT))
    path = os.path.join(root, DATASET_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            "%s has no %s, so it is not a complete prepared dataset (preparation never ran there or was "
            "interrupted; re-running it resumes). %s" % (root, DATASET_FILE, REBUILD_HINT)
        )
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError("%s is not readable JSON (%s). %s" % (path, err, REBUILD_HINT)) from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ValueError("%s is not a gluon-inception dataset description. %s" % (path, REBUILD_HINT))
    if int(meta.get("version", 0)) > FORMAT_VERSION:
        raise ValueError(
            "%s was written by a newer gluon-inception (format version %s; this one reads %d): upgrade "
            "gluon-inception" % (path, meta.get("version"), FORMAT_VERSION)
        )
    return DatasetInfo(root, meta)


def dataset_for_record_file(rec):
    """The :class:`DatasetInfo` whose folder holds ``rec``, or None for a record file outside one."""
    folder = os.path.dirname(os.path.abspath(os.fspath(rec)))
    if not os.path.isfile(os.path.join(folder, DATASET_FILE)):
        return None
    try:
        return load_dataset(folder)
    except (OSError, ValueError):
        return None
