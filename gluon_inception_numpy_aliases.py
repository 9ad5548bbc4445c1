"""Restore numpy's removed aliases (``np.bool``, ``np.int`` ...) before MXNet 1.9.1 is imported.

MXNet 1.9.1 uses aliases that numpy 1.24 removed; on Python 3.12 the only numpy is 1.26. Inside
gluon-inception, ``gluon_inception._compat`` restores them before it imports MXNet. Programs that
import MXNet first (``horovodrun`` does, before any of our code runs) need them earlier: a
``.pth`` file in site-packages holding the line ``import gluon_inception_numpy_aliases`` does it at
interpreter start (``scripts/setup.sh`` writes one on Python 3.12). Importing this module costs
nothing up front: it waits until something imports ``mxnet``, then imports numpy and adds the
aliases that are missing.
"""
import sys

ALIASES = {"bool": bool, "int": int, "float": float, "complex": complex, "object": object, "str": str}


def restore(numpy_module):
    """Add the removed aliases to ``numpy_module`` where they are missing."""
    for name, value in ALIASES.items():
        if name not in numpy_module.__dict__:
            setattr(numpy_module, name, value)


class _BeforeMXNet:
    """A meta path finder that finds nothing: it only restores the aliases when mxnet is looked up."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "mxnet":
            sys.meta_path[:] = [f for f in sys.meta_path if f is not cls]
            import numpy

            restore(numpy)
        return None


if _BeforeMXNet not in sys.meta_path and "mxnet" not in sys.modules:
    sys.meta_path.insert(0, _BeforeMXNet)
