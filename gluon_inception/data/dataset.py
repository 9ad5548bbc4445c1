"""A prepared dataset: a folder of record files described by ``dataset.json``.

``gluon-inception prepare`` (:func:`~gluon_inception.data.prepare_dataset`) writes the folder;
:func:`load_dataset` reads it back. ``dataset.json`` is written last, so a folder without it is
not a complete dataset.
"""
import json
import os
from typing import NamedTuple, Optional

from ..errors import MissingInputError, UsageError
from .records import REBUILD_HINT, RecordFileError, read_checksums, read_index, record_checksums

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
    sha256 : str or None
        Digest of the record file, as ``prepare`` wrote it.
    checksums : str or None
        Absolute path of the ``.crc32`` file: one CRC-32 per record, in ``.idx`` offset order.
    """

    name: str
    rec: str
    idx: str
    lst: str
    count: int
    sha256: Optional[str] = None
    checksums: Optional[str] = None


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
                sha256=entry.get("sha256"),
                checksums=os.path.join(self.root, entry["checksums"]) if entry.get("checksums") else None,
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
            raise UsageError(
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
        raise MissingInputError("dataset folder %s does not exist. %s" % (root, REBUILD_HINT))
    path = os.path.join(root, DATASET_FILE)
    if not os.path.isfile(path):
        raise MissingInputError(
            "%s has no %s, so it is not a complete prepared dataset (preparation never ran there or was "
            "interrupted; re-running it resumes). %s" % (root, DATASET_FILE, REBUILD_HINT)
        )
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as err:
        raise UsageError("%s is not readable JSON (%s). %s" % (path, err, REBUILD_HINT)) from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise UsageError("%s is not a gluon-inception dataset description. %s" % (path, REBUILD_HINT))
    if int(meta.get("version", 0)) > FORMAT_VERSION:
        raise UsageError(
            "%s was written by a newer gluon-inception (format version %s; this one reads %d): upgrade "
            "gluon-inception" % (path, meta.get("version"), FORMAT_VERSION)
        )
    return DatasetInfo(root, meta)


def dataset_for_record_file(rec):
    """The :class:`DatasetInfo` whose folder holds ``rec``, or None for a record file outside one."""
    try:
        return load_dataset(os.path.dirname(os.path.abspath(os.fspath(rec))))
    except (OSError, ValueError):
        return None


def _list_paths(lst):
    paths = {}
    with open(lst, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) >= 3 and fields[0].isdigit():
                paths[int(fields[0])] = fields[-1]
    return paths


def damaged_records(split):
    """Images of ``split`` whose records no longer match the checksums ``prepare`` recorded.

    The whole record file is read once; when its sha256 matches nothing else is done.

    Parameters
    ----------
    split : Split

    Returns
    -------
    list of str
        Image paths as in the split's ``.lst`` (relative to the dataset's ``image_root``); empty
        when the file is intact.

    Raises
    ------
    RecordFileError
        When no checksums were recorded for the split, or its index or checksum list is unreadable
        or does not fit the record file.
    """
    if not split.sha256 or not split.checksums:
        raise RecordFileError(
            split.rec, "no checksums were recorded for it (prepared by an older gluon-inception)",
            hint="Run `gluon-inception prepare` again with --overwrite to record them.",
        )
    keys, offsets = read_index(split.idx)
    digest, crcs = record_checksums(split.rec, offsets)
    if digest == split.sha256:
        return []
    expected = read_checksums(split.checksums)
    if len(expected) != len(crcs):
        raise RecordFileError(
            split.rec, "its index lists %d records but %d checksums were recorded (%s)"
            % (len(crcs), len(expected), split.checksums),
        )
    bad = [key for key, got, want in zip(keys, crcs, expected) if got != want]
    if not bad:
        raise RecordFileError(split.rec, "its sha256 differs from dataset.json although every record matches its "
                                         "checksum: bytes outside the records changed")
    names = _list_paths(split.lst)
    return [names.get(key, "record %d" % key) for key in bad]


def verify_dataset(info, splits=None):
    """Check the record files of a prepared dataset against the checksums ``prepare`` recorded.

    Parameters
    ----------
    info : DatasetInfo
    splits : list of str, optional
        Default: every split.

    Raises
    ------
    RecordFileError
        Naming the record file and the first damaged images (their paths from the ``.lst``).

    Examples
    --------
    >>> from gluon_inception.data import load_dataset, verify_dataset
    >>> verify_dataset(load_dataset("data/imagenet"))  # doctest: +SKIP
    """
    for name in splits or info.split_names:
        split = info.split(name)
        bad = damaged_records(split)
        if bad:
            raise RecordFileError(split.rec, damage_message(bad))


def damage_message(images):
    """``"N damaged record(s): IMAGE, ..."`` for :func:`damaged_records`'s result."""
    shown = ", ".join(images[:5]) + (" and %d more" % (len(images) - 5) if len(images) > 5 else "")
    return ("%d damaged record(s), the image(s) %s: they no longer match the checksums `prepare` recorded "
            "(damaged on disk or in a copy)" % (len(images), shown))
