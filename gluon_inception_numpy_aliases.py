"""Put back the numpy names that MXNet 1.9.1 and GluonCV 0.10.5 read and newer numpy removed.

MXNet 1.9.1 (2022) reads names that numpy 1.24 removed (``np.bool``) and more that numpy 2 removed
(``np.NaN``, ``np.PZERO``, ``np.alltrue``, ``np.msort`` ...; ``mxnet.numpy.fallback`` even binds the
financial functions numpy dropped in 1.20). :data:`RESTORED` lists every such name the two packages
read, and :func:`restore` adds those the installed numpy lacks, nothing else: a name numpy has is
never replaced (numpy 2 has ``np.bool`` again, as its own scalar type; overwriting it with Python's
``bool`` breaks ``numpy.ma`` and scipy). The list is not guessed: tests/core/test_numpy_compat.py
scans the installed ``mxnet`` and ``gluoncv`` sources for every numpy attribute they read and fails
when one does not resolve after :func:`restore`, or when a name here is not needed.

``gluon_inception._compat`` calls :func:`restore` before it imports MXNet. Programs that import
MXNet before any of our code runs (``horovodrun`` does) need it earlier: a ``.pth`` file in
site-packages holding ``import gluon_inception_numpy_aliases`` does it at interpreter start
(``scripts/setup.sh`` writes one). Importing this module costs nothing up front: it waits until
something imports ``mxnet``, then imports numpy and restores what is missing.
"""
import sys
import warnings

# Each name MXNet 1.9.1 or GluonCV 0.10.5 reads from numpy, and what it was.
RESTORED = (
    # Aliases of Python's types, removed in numpy 1.24 (numpy 2 has np.bool again, its own type).
    "bool",
    "int",
    "float",
    # Constants removed in numpy 2.0.
    "Inf",
    "PINF",
    "NINF",
    "NAN",
    "NaN",
    "PZERO",
    "NZERO",
    # Functions removed in numpy 2.0, each another name of one numpy keeps.
    "alltrue",
    "sometrue",
    "product",
    "round_",
    "msort",
    # Financial functions removed in numpy 1.20 (NEP 32); mxnet.numpy.fallback binds them at import.
    "mirr",
    "npv",
    "pmt",
    "ppmt",
    "pv",
    "rate",
)


def _renamed(np, name, keeper):
    # A function of its own rather than numpy's: MXNet registers its numpy-dispatch table by function,
    # so ``product`` must not be the same object as ``prod``.
    def renamed(*args, **kwargs):
        return getattr(np, keeper)(*args, **kwargs)

    renamed.__name__ = renamed.__qualname__ = name
    renamed.__doc__ = "Removed from numpy 2; ``np.%s`` (restored for MXNet 1.9.1)." % keeper
    return renamed


def _msort(np):
    def msort(a):
        """Removed from numpy 2; ``np.sort(a, axis=0)`` (restored for MXNet 1.9.1)."""
        return np.sort(a, axis=0)

    return msort


def _expired(name):
    def expired(*args, **kwargs):
        raise RuntimeError(
            "numpy.%s was removed in numpy 1.20 (NEP 32); numpy_financial has it. gluon-inception only "
            "restores the name because MXNet 1.9.1 imports it." % name
        )

    expired.__name__ = expired.__qualname__ = name
    return expired


def replacements(np):
    """What :func:`restore` would set, by name, for the numpy module ``np``."""
    values = {
        "bool": bool,
        "int": int,
        "float": float,
        "Inf": float("inf"),
        "PINF": float("inf"),
        "NINF": float("-inf"),
        "NAN": float("nan"),
        "NaN": float("nan"),
        "PZERO": 0.0,
        "NZERO": -0.0,
        "alltrue": _renamed(np, "alltrue", "all"),
        "sometrue": _renamed(np, "sometrue", "any"),
        "product": _renamed(np, "product", "prod"),
        "round_": _renamed(np, "round_", "round"),
        "msort": _msort(np),
    }
    for name in ("mirr", "npv", "pmt", "ppmt", "pv", "rate"):
        values[name] = _expired(name)
    assert tuple(values) == RESTORED
    return values


def has(numpy_module, name):
    """Whether ``numpy_module`` provides ``name`` itself (numpy's deprecation warnings are not shown)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            getattr(numpy_module, name)
        except AttributeError:
            return False
    return True


def restore(numpy_module, names=RESTORED):
    """Add each of ``names`` that ``numpy_module`` lacks; return the names added."""
    values = replacements(numpy_module)
    added = []
    for name in names:
        if not has(numpy_module, name):
            setattr(numpy_module, name, values[name])
            added.append(name)
    return added


class _BeforeMXNet:
    """A meta path finder that finds nothing: it only restores the names when mxnet is looked up."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "mxnet":
            sys.meta_path[:] = [f for f in sys.meta_path if f is not cls]
            import numpy

            restore(numpy)
        return None


if _BeforeMXNet not in sys.meta_path and "mxnet" not in sys.modules:
    sys.meta_path.insert(0, _BeforeMXNet)
