"""Import MXNet safely on every supported Python, and work around its 1.9.1 quirks.

MXNet 1.9.1 reads numpy names that numpy 1.24 and 2 removed (``np.bool``, ``np.NaN`` ...). We run it
on numpy 1.26 (Python 3.11 and 3.12) and numpy 2 (Python 3.13, which has no numpy 1.x) and restore
those names (``gluon_inception_numpy_aliases``, shipped beside the package) before MXNet is
imported. Everything in the package does ``from ._compat import mx``.
"""
import sys

import numpy as np

from gluon_inception_numpy_aliases import restore as _restore_numpy_names

from .cpu import enable_amx

_restore_numpy_names(np)


# AMX is opt-in (GLUON_INCEPTION_AMX=1): when asked for, the tile permission and oneDNN's ISA must
# be in place before MXNet loads. Without the switch this does nothing.
enable_amx()


def _no_mxnet_message(err, version=sys.version_info):
    """What to do when ``import mxnet`` fails with ``err``."""
    if version >= (3, 13):
        how = (
            "On Python %d.%d pip cannot install it with its dependencies (MXNet 1.9.1 declares numpy<2, "
            "which has no wheel for this Python; gluon-inception runs it on numpy 2): install it with "
            "`pip install --no-deps mxnet==1.9.1` (CUDA 11.2: mxnet-cu112==1.9.1)." % version[:2]
        )
    else:
        how = (
            "Install the CPU build with `pip install gluon-inception[cpu]` or the CUDA 11.2 build with "
            "`pip install gluon-inception[gpu]`."
        )
    return "gluon-inception needs MXNet 1.9.1, which is not installed (%s). %s" % (err, how)


try:
    import mxnet as mx  # noqa: E402
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(_no_mxnet_message(err)) from err

from mxnet.contrib import amp  # noqa: E402  (``import mxnet`` does not load it)

PY312 = sys.version_info >= (3, 12)


def wait_for_parameters():
    """Wait until every queued MXNet operation has finished; call it before reading or saving parameters.

    Under ``hybridize(static_alloc=True)`` MXNet 1.9.1 can leave the BatchNorm running-statistics
    updates of the last training step queued: parameters read right afterwards are stale.
    """
    mx.nd.waitall()


__all__ = ["amp", "mx", "np", "PY312", "wait_for_parameters"]
