"""Pretrained weights: a registry of entries that describe themselves.

An entry (:class:`PretrainedEntry`) is data: where the file comes from, its checksum, the
architecture it needs, the preprocessing it expects, the accuracy its source published and how
that was measured, its licence. :func:`list_pretrained` returns them as plain dicts, so the
docs' model-zoo table is generated from here and cannot drift. The files themselves are the
business of :mod:`gluon_inception.weights.store`.
"""

import dataclasses
import os
import re
from typing import Optional, Tuple

from ..models.googlenet import TOPOLOGIES
from ..preprocessing import Preprocessing
from ..registry import Registry, UnknownNameError
from . import store
from .convert import FORMATS

__all__ = [
    "PretrainedEntry",
    "PretrainedWarning",
    "UnknownPretrainedError",
    "register_pretrained",
    "unregister_pretrained",
    "get_pretrained",
    "list_pretrained",
    "default_pretrained",
    "purge",
]

_HEX = re.compile(r"^[0-9a-f]+$")


class UnknownPretrainedError(UnknownNameError):
    """No registered entry has that name; the message lists the known ones."""


class PretrainedWarning(UserWarning):
    """Part of a pretrained network was initialised rather than loaded (new classifier, aux heads)."""


@dataclasses.dataclass(frozen=True)
class PretrainedEntry:
    """One set of pretrained weights, described completely.

    Parameters
    ----------
    name : str
        Registry key, e.g. ``"googlenet_gluoncv_in1k"``.
    topology : str
        The :class:`~gluon_inception.GoogLeNet` topology the weights need.
    format : {"gluoncv", "torchvision", "gluon_inception"}
        How the file stores them: GluonCV's ``save_parameters``, torchvision's ``state_dict``
        (read without torch), or ours.
    file_name : str
        Name of the verified file in the cache folder.
    mirror_path : str, optional
        Path of the file under a mirror's root, the way its source lays out its repository
        (``"gluon/models/googlenet-c7c89366.zip"``); a ``.zip`` is unpacked to ``file_name``.
        Default: ``file_name``.
    urls : tuple of str
        Where its source publishes it, tried after the mirrors.
    repo_env : str, optional
        Environment variable that, when set, replaces ``urls`` with ``$repo_env/mirror_path``
        (``"MXNET_GLUON_REPO"``: GluonCV's convention, so GluonCV mirrors work as they are).
    sha256, sha1, sha256_prefix : str, optional
        Checksum of ``file_name`` (lower-case hex). The strongest one given is verified:
        full sha256, else full sha1 (for sources that publish only that), else a sha256
        prefix (torchvision publishes 8 hex digits in the file name and nothing more).
    checksum_note : str
        Where the checksum comes from and what is verified.
    classes : int
        Number of output classes of the classifier in the file.
    dataset : str
        What the weights were trained on (``"ImageNet-1k"`` gives the network the class names).
    top1, top5 : float, optional
        Accuracy (percent) its source published.
    accuracy_note : str
        How that accuracy was measured.
    preprocessing : Preprocessing
        How images become input for these weights, as they were evaluated (default: ImageNet's
        mean/std, shorter side 256, centre crop 224, bilinear).
    input_transform : str
        Any re-scaling done inside the network (empty when none).
    num_params : int
        Learnable parameters with the 1000-class classifier and without aux heads.
    license : str
        Licence of the weights as their source states it.
    source : str
        Where the source publishes the weights and their metadata.
    provenance : str
        How the weights were made, and anything a user should know about the source.
    description : str
        One line for tables.

    Examples
    --------
    >>> from gluon_inception.weights import get_pretrained
    >>> entry = get_pretrained("googlenet_gluoncv_in1k")
    >>> entry.topology, entry.top1, entry.checksum[0]
    ('gluoncv', 72.87, 'sha1')
    >>> mine = entry.replace(name="my_mirror_copy", urls=("https://example.org/gluon/models/x.zip",))
    """

    name: str
    topology: str
    format: str
    file_name: str
    mirror_path: str = ""
    urls: Tuple[str, ...] = ()
    repo_env: Optional[str] = None
    sha256: Optional[str] = None
    sha1: Optional[str] = None
    sha256_prefix: Optional[str] = None
    checksum_note: str = ""
    classes: int = 1000
    dataset: str = "ImageNet-1k"
    top1: Optional[float] = None
    top5: Optional[float] = None
    accuracy_note: str = ""
    preprocessing: Preprocessing = Preprocessing()
    input_transform: str = ""
    num_params: int = 6624904
    license: str = ""
    source: str = ""
    provenance: str = ""
    description: str = ""

    def __post_init__(self):
        set_ = object.__setattr__.__get__(self)
        if not self.name or not isinstance(self.name, str):
            raise ValueError("a pretrained entry needs a name, got %r" % (self.name,))
        if self.topology not in TOPOLOGIES:
            raise ValueError(
                "entry %r: unknown topology %r (known: %s)" % (self.name, self.topology, ", ".join(TOPOLOGIES))
            )
        if self.format not in FORMATS:
            raise ValueError("entry %r: unknown format %r (known: %s)" % (self.name, self.format, ", ".join(FORMATS)))
        if not self.file_name or os.path.basename(self.file_name) != self.file_name:
            raise ValueError("entry %r: file_name must be a bare file name, got %r" % (self.name, self.file_name))
        set_("urls", (self.urls,) if isinstance(self.urls, str) else tuple(self.urls))
        set_("mirror_path", self.mirror_path or self.file_name)
        if not isinstance(self.preprocessing, Preprocessing):
            raise TypeError("entry %r: preprocessing must be a Preprocessing, got %r" % (self.name, self.preprocessing))
        for field, length in (("sha256", 64), ("sha1", 40), ("sha256_prefix", None)):
            value = getattr(self, field)
            if value is None:
                continue
            value = value.lower()
            set_(field, value)
            if not _HEX.match(value) or (length and len(value) != length) or (not length and not 8 <= len(value) <= 64):
                raise ValueError(
                    "entry %r: %s must be %s hex digits, got %r" % (self.name, field, length or "8 to 64", value)
                )

    @property
    def checksum(self):
        """``(algorithm, hex, is_prefix)`` of the strongest checksum given, or None."""
        if self.sha256:
            return ("sha256", self.sha256, False)
        if self.sha1:
            return ("sha1", self.sha1, False)
        if self.sha256_prefix:
            return ("sha256", self.sha256_prefix, True)
        return None

    def replace(self, **changes):
        """A copy with some fields changed (validated again); register it to use it by name."""
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """The entry as JSON-friendly data (tuples become lists, ``preprocessing`` a dict), plus ``checksum``."""
        values = ((f.name, getattr(self, f.name)) for f in dataclasses.fields(self))
        data = {key: list(value) if isinstance(value, tuple) else value for key, value in values}
        data["preprocessing"] = self.preprocessing.to_dict()
        algorithm, value, is_prefix = self.checksum or (None, None, False)
        data["checksum"] = None if algorithm is None else "%s%s:%s" % (algorithm, "-prefix" if is_prefix else "", value)
        return data


# -- the registry -------------------------------------------------------------------------------
_REGISTRY = Registry("pretrained entry", UnknownPretrainedError, hint=" (or pass a path to a weight file)")


def register_pretrained(entry, overwrite=False):
    """Make ``entry`` available by name to ``googlenet(pretrained=name)``.

    Parameters
    ----------
    entry : PretrainedEntry
    overwrite : bool, default False
        Replace an entry of the same name (names are case-insensitive) instead of refusing.

    Returns
    -------
    PretrainedEntry
        ``entry``.

    Raises
    ------
    ValueError
        When the name is taken and ``overwrite`` is False.

    Examples
    --------
    Serve GluonCV's file from your own mirror under its own name:

    >>> from gluon_inception.weights import get_pretrained, register_pretrained
    >>> entry = get_pretrained("googlenet_gluoncv_in1k")
    >>> mirror = entry.replace(name="gluoncv_from_lab_mirror",
    ...                        urls=("https://lab.example/gluon/models/googlenet-c7c89366.zip",))
    >>> register_pretrained(mirror)  # doctest: +SKIP
    PretrainedEntry(name='gluoncv_from_lab_mirror', ...)
    """
    if not isinstance(entry, PretrainedEntry):
        raise TypeError("register_pretrained takes a PretrainedEntry, got %s" % type(entry).__name__)
    return _REGISTRY.register(entry.name, entry, overwrite=overwrite)


def unregister_pretrained(name):
    """Remove and return the entry called ``name`` (case-insensitive; unknown names raise
    :class:`UnknownPretrainedError`)."""
    return _REGISTRY.unregister(name)


def get_pretrained(name):
    """The registered entry called ``name``.

    Parameters
    ----------
    name : str
        An entry name, as :func:`list_pretrained` lists them (case-insensitive).

    Returns
    -------
    PretrainedEntry

    Raises
    ------
    UnknownPretrainedError
        For an unknown name; the message lists the known ones.

    Examples
    --------
    >>> from gluon_inception import get_pretrained
    >>> entry = get_pretrained("googlenet_torchvision_in1k")
    >>> entry.topology, entry.top1, entry.preprocessing.crop_size
    ('torchvision', 69.778, 224)
    """
    return _REGISTRY.get(name)


def pretrained_entries():
    """Every registered entry, most accurate first (published top-1; ties keep registration order).

    The entries themselves, for code that picks one by its fields; :func:`list_pretrained` gives
    the same list as dicts, ready for a table.

    Returns
    -------
    list of PretrainedEntry

    Examples
    --------
    >>> from gluon_inception.weights import pretrained_entries
    >>> [(e.name, e.top1) for e in pretrained_entries()]
    [('googlenet_gluoncv_in1k', 72.87), ('googlenet_torchvision_in1k', 69.778)]
    """
    return sorted(_REGISTRY.values(), key=lambda e: -(e.top1 if e.top1 is not None else -1.0))


def default_pretrained(topology=None):
    """The entry ``pretrained=True`` means: the highest published top-1 on ImageNet-1k.

    Parameters
    ----------
    topology : str, optional
        Only entries of this topology.

    Returns
    -------
    PretrainedEntry

    Examples
    --------
    >>> from gluon_inception.weights import default_pretrained
    >>> default_pretrained().name
    'googlenet_gluoncv_in1k'
    """
    for entry in pretrained_entries():
        if entry.dataset == "ImageNet-1k" and entry.classes == 1000 and topology in (None, entry.topology):
            return entry
    raise UnknownPretrainedError(
        "no ImageNet-1k weights are registered%s; list_pretrained() shows those that are"
        % (" for topology %r" % topology if topology else "")
    )


def list_pretrained():
    """Every registered entry with its metadata, most accurate first.

    Returns
    -------
    list of dict
        One :meth:`PretrainedEntry.to_dict` per entry: the fields documented on
        :class:`PretrainedEntry`, plus ``checksum`` (``"sha1:..."``, ``"sha256-prefix:..."``)
        and ``default`` (True for the entry ``pretrained=True`` loads). Ready for a docs table.

    Examples
    --------
    >>> from gluon_inception import list_pretrained
    >>> [(e["name"], e["top1"], e["default"]) for e in list_pretrained()]
    [('googlenet_gluoncv_in1k', 72.87, True), ('googlenet_torchvision_in1k', 69.778, False)]
    """
    default = default_pretrained().name if _REGISTRY else None
    return [dict(entry.to_dict(), default=entry.name == default) for entry in pretrained_entries()]


def purge(root=None, names=None):
    """Delete cached files of registered entries (all, or ``names``), with their locks.

    Other files in the cache folder are left alone (GluonCV keeps its whole model zoo there).

    Returns
    -------
    list of str
        The paths removed.
    """
    entries = _REGISTRY.values() if names is None else [get_pretrained(n) for n in names]
    return store.purge([e.file_name for e in entries], root=root)


# -- the entries --------------------------------------------------------------------------------
register_pretrained(
    PretrainedEntry(
        name="googlenet_gluoncv_in1k",
        description="GluonCV's GoogLeNet with BatchNorm, ImageNet-1k",
        topology="gluoncv",
        format="gluoncv",
        file_name="googlenet-c7c89366.params",
        mirror_path="gluon/models/googlenet-c7c89366.zip",
        urls=("https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/gluon/models/googlenet-c7c89366.zip",),
        repo_env="MXNET_GLUON_REPO",
        sha1="c7c89366fb4410c0aeb34827795f7dab9423f950",
        checksum_note="GluonCV publishes the full sha1 of the .params file inside its zip "
        "(gluoncv/model_zoo/model_store.py); all 40 hex digits are verified.",
        top1=72.87,
        top5=91.17,
        accuracy_note="published by GluonCV's model zoo: ImageNet-1k validation set, one 224x224 centre "
        "crop of the image resized to 256 on the shorter side",
        license="Apache-2.0 (GluonCV); the ImageNet-1k terms of access apply to the training data",
        source="https://github.com/dmlc/gluon-cv (gluoncv/model_zoo/model_store.py, model zoo table)",
        provenance="Trained by the GluonCV team with their recipe (BatchNorm, 3x3 third branch, cosine "
        "schedule, mixup, label smoothing). Published as gluon/models/googlenet-c7c89366.zip in GluonCV's "
        "repository on the Apache MXNet S3 bucket, reported failing since 2024 (dmlc/gluon-cv#1778): set "
        "MXNET_GLUON_REPO or GLUON_INCEPTION_MIRRORS to a mirror laid out the same way.",
    )
)

register_pretrained(
    PretrainedEntry(
        name="googlenet_torchvision_in1k",
        description="torchvision's GoogLeNet_Weights.IMAGENET1K_V1, converted on load",
        topology="torchvision",
        format="torchvision",
        file_name="googlenet-1378be20.pth",
        mirror_path="models/googlenet-1378be20.pth",
        urls=("https://download.pytorch.org/models/googlenet-1378be20.pth",),
        sha256_prefix="1378be20",
        checksum_note="torchvision publishes only the first 8 hex digits of the file's sha256 (in its name, "
        "checked by torch.hub); only those are verified. Once you hold a file you trust, register "
        "entry.replace(sha256=...) to pin it in full.",
        top1=69.778,
        top5=89.530,
        accuracy_note="published by torchvision (GoogLeNet_Weights.IMAGENET1K_V1.meta): ImageNet-1k "
        "validation set, resize 256 (bilinear, antialiased), centre crop 224",
        input_transform="torchvision's transform_input=True: the network re-scales ImageNet-normalised "
        "input to (x - 0.5) / 0.5 itself (the ChannelAffine stage of topology 'torchvision'), so feed it "
        "the same mean/std as any other entry",
        license="BSD-3-Clause (torchvision); the ImageNet-1k terms of access apply to the training data",
        source="https://download.pytorch.org/models/googlenet-1378be20.pth (torchvision.models.googlenet)",
        provenance="torchvision says these weights are ported from the original paper. The file is a "
        "torch.save state_dict; it is read with numpy and a restricted unpickler (no torch, no code "
        "execution) and converted to our names on every load. Its aux-head weights are not used: "
        "torchvision documents them as untrained, and its aux heads pool differently.",
    )
)
