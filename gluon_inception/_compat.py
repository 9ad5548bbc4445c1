"""Import MXNet safely on every supported Python, and work around its 1.9.1 quirks.

MXNet 1.9.1 still refers to numpy aliases (``np.bool``, ``np.int`` ...) that numpy 1.24
removed. numpy 1.23.5 keeps them but has no wheel for Python 3.12, so on 3.12 we run on
numpy 1.26 and restore the aliases (``gluon_inception_numpy_aliases``, shipped beside the package)
before MXNet is imported. Everything in the package does ``from ._compat import mx``.
"""
import ctypes
import os
import platform
import sys

import numpy as np

from gluon_inception_numpy_aliases import restore as _restore_numpy_aliases

if int(np.__version__.split(".")[0]) >= 2:
    raise ImportError(
        "gluon-inception needs numpy < 2 because MXNet 1.9.1 does not import with numpy %s. "
        "Install a supported numpy: pip install 'numpy<1.24' (Python <= 3.11) or "
        "'numpy>=1.26,<2' (Python 3.12)." % np.__version__
    )

_restore_numpy_aliases(np)


def _enable_amx(environ=os.environ):
    """Let MXNet's oneDNN use AMX tiles for bfloat16 and int8 on CPUs that have them; True if it will.

    The oneDNN inside MXNet 1.9.1 (v2.4) stops at AVX-512 unless ``DNNL_MAX_CPU_ISA`` asks for AMX,
    and Linux lets a process use AMX tile registers only after ``arch_prctl(ARCH_REQ_XCOMP_PERM)``
    (without it the first AMX kernel dies of SIGILL). Both happen here, before MXNet loads. The
    permission is asked for in every process, also when ``DNNL_MAX_CPU_ISA`` came from a parent
    (child processes inherit the variable, not the permission). An explicit ``DNNL_MAX_CPU_ISA``
    without AMX wins; one with AMX that the kernel refuses is lowered to AVX-512 BF16.
    """
    names = [name for name in ("DNNL_MAX_CPU_ISA", "MKLDNN_MAX_CPU_ISA") if name in environ]
    isa = environ[names[0]].upper() if names else None
    if isa is not None and "AMX" not in isa and isa != "ALL":
        return False
    if not sys.platform.startswith("linux") or platform.machine() != "x86_64":
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    arch_prctl, req_xcomp_perm, xfeature_xtiledata = 158, 0x1023, 18  # x86_64 syscall and its arguments
    if "amx_tile" not in flags or ctypes.CDLL(None).syscall(arch_prctl, req_xcomp_perm, xfeature_xtiledata) != 0:
        if isa is not None:
            for name in names:
                environ[name] = "AVX512_CORE_BF16"
        return False
    if isa is None:
        environ["DNNL_MAX_CPU_ISA"] = "AVX512_CORE_AMX"
    return True


#: True when oneDNN may use AMX (set before MXNet is imported; see :func:`_enable_amx`).
AMX = _enable_amx()

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


__all__ = ["AMX", "amp", "mx", "np", "PY312", "wait_for_parameters"]
