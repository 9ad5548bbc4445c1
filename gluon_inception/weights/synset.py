"""Class names of the datasets pretrained weights were trained on."""

import functools
import os
from collections import namedtuple

__all__ = ["Synset", "imagenet1k_synset"]

_RESOURCES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resources")


class Synset(namedtuple("Synset", ["wnids", "names", "descriptions"])):
    """Class ids and names, index = label.

    Attributes
    ----------
    wnids : tuple of str
        WordNet ids (``"n01440764"``), the folder names of the ImageNet archives.
    names : tuple of str
        Short, unique human-readable names (``"tench"``).
    descriptions : tuple of str
        The WordNet synonyms (``"tench, Tinca tinca"``).
    """

    __slots__ = ()

    def __len__(self):
        return len(self.wnids)


@functools.lru_cache(maxsize=None)
def imagenet1k_synset():
    """The 1000 ImageNet-1k (ILSVRC-2012) classes in label order (sorted WordNet ids).

    Shipped in the package (``resources/imagenet1k_synset.tsv``, generated from GluonCV's
    ImageNet class list by ``scripts/make_imagenet_synset.py``; no network needed).

    Returns
    -------
    Synset

    Examples
    --------
    >>> from gluon_inception.weights.synset import imagenet1k_synset
    >>> synset = imagenet1k_synset()
    >>> len(synset), synset.wnids[0], synset.names[0]
    (1000, 'n01440764', 'tench')
    """
    with open(os.path.join(_RESOURCES, "imagenet1k_synset.tsv"), encoding="utf-8") as f:
        rows = [tuple(line.rstrip("\n").split("\t")) for line in f if line.strip() and not line.startswith("#")]
    if len(rows) != 1000 or any(len(r) != 3 for r in rows):
        raise RuntimeError("the packaged ImageNet-1k synset is damaged: reinstall gluon-inception")
    wnids, names, descriptions = zip(*rows)
    return Synset(wnids, names, descriptions)
