"""Import MXNet safely on every supported Python, and work around its 1.9.1 quirks.

MXNet 1.9.1 still refers to numpy aliases (``np.bool``, ``np.int`` ...) that numpy 1.24
removed. numpy 1.23.5 keeps them but has no wheel for Python 3.12, so on 3.12 we run on
numpy 1.26 and restore the aliases (``gluon_inception_numpy_aliases``, shipped beside the package)
before MXNet is imported. Everything in the package does ``from ._compat import mx``.
"""
import sys

import numpy as np

from gluon_inception_numpy_aliases import restore as _restore_numpy_aliases

from .cpu import enable_amx

if int(np.__version__.split(".")[0]) >= 2:
    raise ImportError(
        "gluon-inception needs numpy < 2 because MXNet 1.9.1 does not import with numpy %s. "
        "Install a supported numpy: pip install 'numpy<1.24' (Python <= 3.11) or "
        "'numpy>=1.26,<2' (Python 3.12)." % np.__version__
    )

_restore_numpy_aliases(np)


# AMX is opt-in (GLUON_INCEPTION_AMX=1): when asked for, the tile permission and oneDNN's ISA must
# be in place before MXNet loads. Without the switch this does nothing.
enable_amx()

try:
    import mxnet as mx  # noqa: E402
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "gluon-inception needs MXNet 1.9.1, which is not installed (%s). Install the CPU build "
        "with `pip install gluon-inception[cpu]` or the CUDA 11.2 build with "
        "`pip install gluon-inception[gpu]`." % err
    ) from err

from mxnet.contrib import amp  # noqa: E402  (``import mxnet`` does not load it)

PY312 = sys.version_info >= (3, 12)


def wait_for_parameters():
    """Wait until every queued MXNet operation has finished; call it before reading or saving parameters.

    Under ``hybridize(static_alloc=True)`` MXNet 1.9.1 can leave the BatchNorm running-statistics
    updates of the last training step queued: parameters read right afterwards are stale.
    """
    mx.nd.waitall()


__all__ = ["amp", "mx", "np", "PY312", "wait_for_parameters"]
