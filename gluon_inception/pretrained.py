"""Pretrained weights: a registry of entries that describe themselves, and the loader.

An entry (:class:`PretrainedEntry`) is data: where the file comes from, its checksum, the
architecture it needs, the preprocessing it expects, the accuracy its source published and how
that was measured, its licence. :func:`list_pretrained` returns them as plain dicts, so the
docs' model-zoo table is generated from here and cannot drift. The files themselves are the
business of :mod:`gluon_inception.store`.

``googlenet(pretrained=...)`` (in :mod:`gluon_inception.model_zoo`) comes here:

- ``True``: the most accurate registered ImageNet-1k entry (GluonCV's, 72.87 top-1);
- an entry name (``"googlenet_torchvision_in1k"``) or a :class:`PretrainedEntry`;
- a path to a weight file (ours, GluonCV's ``.params`` or ``.zip``, torchvision's ``.pth``).
"""

import dataclasses
import json
import os
import re
import warnings
from collections import OrderedDict
from typing import Optional, Tuple

from . import store
from ._compat import mx
from .convert import FORMATS, metadata_path, read_weights, to_ours, weights_layout
from .googlenet import TOPOLOGIES, GoogLeNet
from .store import (  # noqa: F401  (re-exported: the errors users catch)
    ChecksumError,
    CorruptWeightsError,
    DownloadError,
    LockTimeoutError,
    PretrainedError,
    TruncatedDownloadError,
    UnsafeArchiveError,
)
from .synset import imagenet1k_synset

__all__ = [
    "PretrainedEntry",
    "PretrainedWarning",
    "UnknownPretrainedError",
    "register_pretrained",
    "unregister_pretrained",
    "get_pretrained",
    "list_pretrained",
    "default_pretrained",
    "resolve_pretrained",
    "load_pretrained",
    "pretrained_googlenet",
    "purge",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_HEX = re.compile(r"^[0-9a-f]+$")


class UnknownPretrainedError(ValueError):
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
    mean, std : tuple of float
        Per-channel RGB normalisation of 0-1 pixel values the network expects.
    resize, crop : int
        Evaluation preprocessing: shorter side resized to ``resize``, centre crop ``crop``.
    interpolation : str
        Resize interpolation.
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
    >>> from gluon_inception.pretrained import get_pretrained
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
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    resize: int = 256
    crop: int = 224
    interpolation: str = "bilinear"
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
        set_("mean", tuple(float(v) for v in self.mean))
        set_("std", tuple(float(v) for v in self.std))
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
        """The entry as JSON-friendly data (tuples become lists), plus ``checksum``."""
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        algorithm, value, is_prefix = self.checksum or (None, None, False)
        data["checksum"] = None if algorithm is None else "%s%s:%s" % (algorithm, "-prefix" if is_prefix else "", value)
        return data


# -- the registry -------------------------------------------------------------------------------
_REGISTRY = OrderedDict()


def register_pretrained(entry, overwrite=False):
    """Make ``entry`` available by name to ``googlenet(pretrained=name)``.

    Parameters
    ----------
    entry : PretrainedEntry
    overwrite : bool, default False
        Replace an entry of the same name instead of refusing.

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

    >>> from gluon_inception.pretrained import get_pretrained, register_pretrained
    >>> entry = get_pretrained("googlenet_gluoncv_in1k")
    >>> mirror = entry.replace(name="gluoncv_from_lab_mirror",
    ...                        urls=("https://lab.example/gluon/models/googlenet-c7c89366.zip",))
    >>> register_pretrained(mirror)  # doctest: +SKIP
    PretrainedEntry(name='gluoncv_from_lab_mirror', ...)
    """
    if not isinstance(entry, PretrainedEntry):
        raise TypeError("register_pretrained takes a PretrainedEntry, got %s" % type(entry).__name__)
    if entry.name in _REGISTRY and not overwrite:
        raise ValueError("a pretrained entry named %r exists: pass overwrite=True or pick another name" % entry.name)
    _REGISTRY[entry.name] = entry
    return entry


def unregister_pretrained(name):
    """Remove and return the entry called ``name``."""
    get_pretrained(name)
    return _REGISTRY.pop(name)


def get_pretrained(name):
    """The registered entry called ``name``.

    Parameters
    ----------
    name : str
        An entry name, as :func:`list_pretrained` lists them.

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
    >>> entry.topology, entry.top1, entry.crop
    ('torchvision', 69.778, 224)
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownPretrainedError(
            "unknown pretrained weights %r: known entries are %s (or pass a path to a weight file)"
            % (name, ", ".join(_REGISTRY) or "none")
        ) from None


def _by_accuracy():
    ranked = list(_REGISTRY.values())
    return sorted(ranked, key=lambda e: -(e.top1 if e.top1 is not None else -1.0))  # stable: ties keep order


def default_pretrained():
    """The entry ``pretrained=True`` means: the highest published top-1 on ImageNet-1k.

    Returns
    -------
    PretrainedEntry

    Examples
    --------
    >>> from gluon_inception.pretrained import default_pretrained
    >>> default_pretrained().name
    'googlenet_gluoncv_in1k'
    """
    for entry in _by_accuracy():
        if entry.dataset == "ImageNet-1k" and entry.classes == 1000:
            return entry
    raise UnknownPretrainedError("no ImageNet-1k entry is registered")


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
    rows = []
    for entry in _by_accuracy():
        row = entry.to_dict()
        row["default"] = entry.name == default
        rows.append(row)
    return rows


def purge(root=None, names=None):
    """Delete cached files of registered entries (all, or ``names``), with their locks.

    Other files in the cache folder are left alone (GluonCV keeps its whole model zoo there).

    Returns
    -------
    list of str
        The paths removed.
    """
    entries = list(_REGISTRY.values()) if names is None else [get_pretrained(n) for n in names]
    return store.purge([e.file_name for e in entries], root=root)


# -- resolving and loading ----------------------------------------------------------------------
class _Resolved:
    """What ``pretrained=...`` stands for: an entry, and a local file when one was given."""

    def __init__(self, entry, path=None, verified=True):
        self.entry, self.path, self.verified = entry, path, verified

    @property
    def topology(self):
        return self.entry.topology


def _entry_for_file_name(file_name):
    for entry in _REGISTRY.values():
        if file_name in (entry.file_name, os.path.basename(entry.mirror_path)):
            return entry
    return None


def _entry_in_folder(folder, topology):
    """The most accurate entry whose file (or published archive) is in ``folder``."""
    for entry in _by_accuracy():
        if topology is not None and entry.topology != topology:
            continue
        for file_name in (entry.file_name, os.path.basename(entry.mirror_path)):
            if os.path.isfile(os.path.join(folder, file_name)):
                return _Resolved(entry, path=os.path.join(folder, file_name))
    raise FileNotFoundError(
        "pretrained=%r is a folder without any registered weight file: expected one of %s"
        % (folder, ", ".join(e.file_name for e in _by_accuracy()))
    )


def _model_metadata(params_path):
    """``model`` of the JSON beside a ``.params`` (written by ``convert`` or by a checkpoint), or {}."""
    try:
        with open(metadata_path(params_path), encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return {}
    model = meta.get("model") if isinstance(meta, dict) else None
    return model if isinstance(model, dict) and model.get("topology") in TOPOLOGIES else {}


def _describe_local_file(path, topology):
    """An entry for a weight file given by path that no registry entry names."""
    found, params = read_weights(path)
    try:
        classes, third_kernel, _ = weights_layout(found, params)
    except ValueError as err:
        raise CorruptWeightsError("%s: %s" % (path, err)) from None
    meta = _model_metadata(path) if found == "gluon_inception" else {}
    if found == "torchvision":
        guessed = "torchvision"
    elif found == "gluoncv":
        guessed = "gluoncv"
    elif meta.get("topology"):
        guessed = meta["topology"]
    else:
        guessed = "paper" if third_kernel == 5 else "gluoncv"
        if third_kernel == 3 and topology is None:
            warnings.warn(
                "%s has 3x3 third branches and no metadata file (%s): assuming topology 'gluoncv'. "
                "Pass topology='torchvision' for weights converted from torchvision."
                % (path, os.path.basename(metadata_path(path))),
                PretrainedWarning,
                stacklevel=4,
            )
    entry = PretrainedEntry(
        name=os.path.abspath(path),
        topology=topology or guessed,
        format=found,
        file_name=os.path.basename(path),
        classes=classes,
        dataset="unknown (a local file)",
        description="weights from a local file",
        provenance="local file %s, not verified (no registry entry names it)" % os.path.abspath(path),
        input_transform="torchvision transform_input" if (topology or guessed) == "torchvision" else "",
    )
    return _Resolved(entry, path=path, verified=False), (found, params)


def resolve_pretrained(pretrained, topology=None):
    """The entry ``pretrained`` stands for, checked against an explicit ``topology``.

    Parameters
    ----------
    pretrained : True, str, os.PathLike or PretrainedEntry
        ``True`` for :func:`default_pretrained`, an entry name, an entry, or a weight file.
    topology : str, optional
        The topology the caller asked for; None to take the entry's.

    Returns
    -------
    PretrainedEntry

    Raises
    ------
    UnknownPretrainedError
        For a name that is neither registered nor an existing file.
    ValueError
        When ``topology`` contradicts the entry's.
    """
    return _resolve(pretrained, topology)[0].entry


def _resolve(pretrained, topology):
    local = None
    if pretrained is True:
        resolved = _Resolved(default_pretrained())
    elif isinstance(pretrained, PretrainedEntry):
        resolved = _Resolved(pretrained)
    elif isinstance(pretrained, (str, os.PathLike)):
        text = os.fspath(pretrained)
        if isinstance(pretrained, str) and text in _REGISTRY:
            resolved = _Resolved(_REGISTRY[text])
        elif os.path.isdir(text):
            resolved = _entry_in_folder(text, topology)
        elif os.path.isfile(text):
            entry = _entry_for_file_name(os.path.basename(text))
            if entry is not None:
                resolved = _Resolved(entry, path=text)
            else:
                resolved, local = _describe_local_file(text, topology)
        elif os.sep in text or text.endswith((".params", ".pth", ".pt", ".zip")):
            raise FileNotFoundError("pretrained=%r: no such file" % text)
        else:
            get_pretrained(text)  # raises with the list of known names
    else:
        raise TypeError("pretrained must be True, an entry name, a PretrainedEntry or a path, got %r" % (pretrained,))
    if topology is not None and topology != resolved.topology:
        raise ValueError(
            "pretrained weights %r need topology=%r, but topology=%r was passed: leave topology out "
            "(googlenet(pretrained=...) builds the topology the weights need) or choose other weights "
            "(list_pretrained())." % (resolved.entry.name, resolved.topology, topology)
        )
    return resolved, local


def _local_copy(resolved, root, mirrors):
    """Path of the verified weight file for ``resolved``."""
    entry = resolved.entry
    if resolved.path is None:
        return store.fetch(entry, root=root, mirrors=mirrors)
    if not resolved.verified:
        return resolved.path
    if not os.path.isfile(resolved.path):
        raise FileNotFoundError(
            "no %s in %s: put the file of entry %r there, or pass the file itself"
            % (entry.file_name, os.path.dirname(resolved.path), entry.name)
        )
    if resolved.path.endswith(".zip") and not entry.file_name.endswith(".zip"):
        # A local copy of the published archive: unpack and verify it through the store.
        return store.fetch(entry, root=root, mirrors=[os.path.dirname(os.path.abspath(resolved.path))])
    matches, algorithm, expected, got = store.verify(resolved.path, entry)
    if not matches:
        raise ChecksumError(
            "%s is not the file of pretrained entry %r: expected %s %s, got %s"
            % (resolved.path, entry.name, algorithm, expected, got)
        )
    return resolved.path


def load_pretrained(net, pretrained, root=None, mirrors=None):
    """Load pretrained weights into ``net`` (already built and initialised).

    Every parameter the weights provide is loaded. When ``net.classes`` differs from the
    weights', the classifier keeps its fresh initialisation (fine-tuning) and a
    :class:`PretrainedWarning` says so; so do aux heads the weights do not provide. The entry
    is attached as ``net.pretrained_cfg``, and for ImageNet-1k weights with their 1000 classes,
    the class names as ``net.class_names`` and WordNet ids as ``net.class_ids``.

    Parameters
    ----------
    net : GoogLeNet
        Its topology must be the one the weights need.
    pretrained : True, str, os.PathLike or PretrainedEntry
        See :func:`resolve_pretrained`.
    root : str, optional
        Cache folder; see :func:`gluon_inception.store.cache_root`.
    mirrors : list of str, optional
        Tried before the entry's own sources; see :func:`gluon_inception.store.fetch`.

    Returns
    -------
    GoogLeNet
        ``net``.

    Raises
    ------
    UnknownPretrainedError, ValueError, ChecksumError, DownloadError, CorruptWeightsError
        See :func:`resolve_pretrained` and :func:`gluon_inception.store.fetch`.

    Examples
    --------
    >>> from gluon_inception import GoogLeNet
    >>> from gluon_inception.pretrained import load_pretrained
    >>> net = GoogLeNet(topology="gluoncv")
    >>> net.initialize()
    >>> load_pretrained(net, True).pretrained_cfg.name  # doctest: +SKIP
    'googlenet_gluoncv_in1k'
    """
    resolved, local = _resolve(pretrained, net.topology)
    path = _local_copy(resolved, root, mirrors)
    return _load_into(net, resolved, path, local)


def pretrained_googlenet(
    pretrained, classes=1000, topology=None, aux_logits=False, ctx=None, init=None, root=None, mirrors=None, **kwargs
):
    """What ``googlenet(pretrained=...)`` does: fetch, build the needed topology, initialise, load."""
    from .model_zoo import _initialize

    resolved, local = _resolve(pretrained, topology)
    path = _local_copy(resolved, root, mirrors)  # fail before building when the file cannot be had
    net = GoogLeNet(classes=classes, topology=resolved.topology, aux_logits=aux_logits, **kwargs)
    _initialize(net, ctx, init)
    return _load_into(net, resolved, path, local)


def _load_into(net, resolved, path, local):
    entry = resolved.entry
    found, params = local if local is not None else read_weights(path, entry.format)
    try:
        classes, third_kernel, has_aux = weights_layout(found, params)
    except ValueError as err:
        raise CorruptWeightsError("%s: %s" % (path, err)) from None
    needed = TOPOLOGIES[net.topology]["third_kernel"]
    if third_kernel != needed:
        raise ValueError(
            "%s holds %dx%d third branches; topology %r has %dx%d ones"
            % (path, third_kernel, third_kernel, net.topology, needed, needed)
        )
    reference_topology = {"gluoncv": "gluoncv", "torchvision": "torchvision"}.get(found, net.topology)
    reference = GoogLeNet(classes=classes, topology=reference_topology, aux_logits=has_aux and found != "torchvision")
    try:
        weights = to_ours(reference, found, params)
    except ValueError as err:
        raise CorruptWeightsError("%s does not hold the weights %r describes: %s" % (path, entry.name, err)) from None

    skipped_classifier = net.classes != classes
    untrained_aux = False
    for name, param in net._collect_params_with_prefix().items():
        if skipped_classifier and name.startswith("output."):
            continue
        if name not in weights:
            if name.startswith(("aux1.", "aux2.")):
                untrained_aux = True
                continue
            raise CorruptWeightsError("%s provides no %r" % (path, name))  # pragma: no cover - to_ours checks
        value = weights[name]
        if not isinstance(value, mx.nd.NDArray):
            value = mx.nd.array(value, dtype="float32")
        param.set_data(value.astype(param.dtype, copy=False))
    if skipped_classifier:
        warnings.warn(
            "pretrained weights %r have %d classes and the network %d: every layer but the classifier "
            "was loaded, and the classifier is freshly initialised (fine-tuning). Train it before use."
            % (entry.name, classes, net.classes),
            PretrainedWarning,
            stacklevel=3,
        )
    if untrained_aux:
        warnings.warn(
            "pretrained weights %r provide no trained auxiliary heads: the backbone is loaded, and aux1 "
            "and aux2 are freshly initialised (untrained). Train them before relying on their outputs." % entry.name,
            PretrainedWarning,
            stacklevel=3,
        )
    net.pretrained_cfg = entry
    if entry.dataset == "ImageNet-1k" and net.classes == 1000 and not skipped_classifier:
        synset = imagenet1k_synset()
        net.class_names, net.class_ids = list(synset.names), list(synset.wnids)
    else:
        net.class_names = net.class_ids = None
    return net


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
