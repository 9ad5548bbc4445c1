"""Loading pretrained weights into a network: what ``pretrained=...`` stands for (:doc:`/model_zoo`), and the load."""
import json
import os
import warnings
from collections import namedtuple

from .._compat import mx
from ..errors import MissingInputError, UsageError
from ..models.googlenet import TOPOLOGIES, GoogLeNet
from . import store
from .convert import metadata_path, read_weights, to_ours, weights_layout
from .entries import (
    PretrainedEntry,
    PretrainedWarning,
    UnknownPretrainedError,
    default_pretrained,
    get_pretrained,
    pretrained_entries,
)
from .store import ChecksumError, CorruptWeightsError
from .synset import imagenet1k_synset

# What ``pretrained=...`` stands for: an entry, and a local file when one was given.
_Resolved = namedtuple("_Resolved", "entry path verified", defaults=(None, True))


def _registered(name):
    """The entry registered as ``name`` (case-insensitive), or None."""
    try:
        return get_pretrained(name)
    except UnknownPretrainedError:
        return None


def _entry_for_file_name(file_name):
    """The entry whose file (or published archive) is called ``file_name``, or None."""
    return next((e for e in pretrained_entries() if file_name in (e.file_name, os.path.basename(e.mirror_path))), None)


def _entry_in_folder(folder, topology):
    """The most accurate entry whose file (or published archive) is in ``folder``."""
    for entry in pretrained_entries():
        if topology is not None and entry.topology != topology:
            continue
        for file_name in (entry.file_name, os.path.basename(entry.mirror_path)):
            if os.path.isfile(os.path.join(folder, file_name)):
                return _Resolved(entry, path=os.path.join(folder, file_name))
    raise MissingInputError(
        "pretrained=%r is a folder without any registered weight file: expected one of %s"
        % (folder, ", ".join(e.file_name for e in pretrained_entries()))
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
    if found in ("torchvision", "gluoncv"):
        guessed = found
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
        ``True`` for :func:`default_pretrained` (of ``topology`` when given), an entry name, an entry, or a weight file.
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
        resolved = _Resolved(default_pretrained(topology))
    elif isinstance(pretrained, PretrainedEntry):
        resolved = _Resolved(pretrained)
    elif isinstance(pretrained, (str, os.PathLike)):
        text = os.fspath(pretrained)
        named = _registered(text) if isinstance(pretrained, str) else None
        if named is not None:
            resolved = _Resolved(named)
        elif os.path.isdir(text):
            resolved = _entry_in_folder(text, topology)
        elif os.path.isfile(text):
            entry = _entry_for_file_name(os.path.basename(text))
            if entry is not None:
                resolved = _Resolved(entry, path=text)
            else:
                resolved, local = _describe_local_file(text, topology)
        elif os.sep in text or text.endswith((".params", ".pth", ".pt", ".zip")):
            raise MissingInputError("pretrained=%r: no such file" % text)
        else:
            get_pretrained(text)  # raises with the list of known names
    else:
        raise TypeError("pretrained must be True, an entry name, a PretrainedEntry or a path, got %r" % (pretrained,))
    if topology is not None and topology != resolved.entry.topology:
        raise UsageError(
            "pretrained weights %r need topology=%r, but topology=%r was passed: leave topology out "
            "(googlenet(pretrained=...) builds the topology the weights need) or choose other weights "
            "(list_pretrained())." % (resolved.entry.name, resolved.entry.topology, topology)
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
        raise MissingInputError(
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
    pretrained : True, str, os.PathLike, PretrainedEntry or FetchedWeights
        See :func:`resolve_pretrained`; or what :func:`fetch_pretrained` returned.
    root : str, optional
        Cache folder; see :func:`gluon_inception.weights.store.cache_root`.
    mirrors : list of str, optional
        Tried before the entry's own sources; see :func:`gluon_inception.weights.store.fetch`.

    Returns
    -------
    GoogLeNet
        ``net``.

    Raises
    ------
    UnknownPretrainedError, ValueError, ChecksumError, DownloadError, CorruptWeightsError
        See :func:`resolve_pretrained` and :func:`gluon_inception.weights.store.fetch`.

    Examples
    --------
    >>> from gluon_inception import GoogLeNet
    >>> from gluon_inception.weights import load_pretrained
    >>> net = GoogLeNet(topology="gluoncv")
    >>> net.initialize()
    >>> load_pretrained(net, True).pretrained_cfg.name  # doctest: +SKIP
    'googlenet_gluoncv_in1k'
    """
    if not isinstance(pretrained, FetchedWeights):
        pretrained = fetch_pretrained(pretrained, net.topology, root=root, mirrors=mirrors)
    return _load_into(net, pretrained)


class FetchedWeights:
    """A pretrained entry whose verified file is on this machine, ready for :func:`load_pretrained`."""

    def __init__(self, entry, path, preloaded=None):
        self.entry, self.path, self.preloaded = entry, path, preloaded

    @property
    def topology(self):
        """The topology the weights need."""
        return self.entry.topology


def fetch_pretrained(pretrained, topology=None, root=None, mirrors=None):
    """Resolve ``pretrained`` and make its verified file local, without building a network.

    Builders call this first, so that a file that cannot be had fails before any network is
    built, then build the topology it needs and pass the result to :func:`load_pretrained`.

    Parameters
    ----------
    pretrained, root, mirrors
        As for :func:`load_pretrained`.
    topology : str, optional
        The topology the caller asked for; an error says so when the weights need another.

    Returns
    -------
    FetchedWeights
    """
    resolved, local = _resolve(pretrained, topology)
    try:
        return FetchedWeights(resolved.entry, _local_copy(resolved, root, mirrors), local)
    except store.DownloadError as failure:
        if pretrained is not True:
            raise  # a named entry, file or folder never falls back
        return _fetch_next_best(resolved.entry, failure, topology, root, mirrors)


def _fetch_next_best(wanted, failure, topology, root, mirrors):
    """``pretrained=True`` when no source of the best entry answers: the next entry that can be had."""
    failures = [(wanted, failure)]
    for entry in pretrained_entries():
        if entry is wanted or (entry.dataset, entry.classes) != (wanted.dataset, wanted.classes):
            continue
        if topology is not None and entry.topology != topology:
            continue
        try:
            path = store.fetch(entry, root=root, mirrors=mirrors)
        except store.DownloadError as err:
            failures.append((entry, err))
            continue
        why = "no source of %r answered (%s)" % (
            wanted.name,
            "; ".join("%s: %s" % attempt for attempt in failure.attempts) or "no sources",
        )
        warnings.warn(
            "pretrained=True loaded %r (%s, %.2f%% top-1 / %.2f%% top-5 on %s) instead of the more "
            "accurate %r (%.2f%% top-1) because %s. Set $%s to a mirror holding %s, or pass "
            "pretrained=%r to require it."
            % (entry.name, entry.description, entry.top1, entry.top5, entry.dataset, wanted.name, wanted.top1,
               why, store.ENV_MIRRORS, wanted.file_name, wanted.name),
            PretrainedWarning,
            stacklevel=4,  # the caller of googlenet() / load_pretrained()
        )
        entry = entry.replace(provenance="%s Loaded by pretrained=True as the fallback: %s." % (entry.provenance, why))
        return FetchedWeights(entry, path)
    raise store.DownloadError(
        "pretrained=True: no ImageNet weights could be fetched from any source.\n\n%s"
        % "\n\n".join(str(err) for _, err in failures),
        [attempt for _, err in failures for attempt in err.attempts],
    )


def _load_into(net, fetched):
    entry, path, local = fetched.entry, fetched.path, fetched.preloaded
    found, params = local if local is not None else read_weights(path, entry.format)
    try:
        classes, third_kernel, has_aux = weights_layout(found, params)
    except ValueError as err:
        raise CorruptWeightsError("%s: %s" % (path, err)) from None
    needed = TOPOLOGIES[net.topology]["third_kernel"]
    if third_kernel != needed:
        raise UsageError(
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
            if not name.startswith(("aux1.", "aux2.")):  # to_ours checks every other parameter: a guard
                raise CorruptWeightsError("%s provides no %r" % (path, name))  # pragma: no cover
            untrained_aux = True
            continue
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


