"""The CPU as MXNet's oneDNN sees it: its instruction sets, the user's ``DNNL_MAX_CPU_ISA`` cap, and AMX.

Every question the package asks about the CPU is answered here, from one reading of
``/proc/cpuinfo`` limited by ``DNNL_MAX_CPU_ISA`` (or ``MKLDNN_MAX_CPU_ISA``) when it is set. So
``DNNL_MAX_CPU_ISA=AVX2`` on a Sapphire Rapids makes the package behave as on an AVX2-only CPU: the
same refusals, skipped tests and skipped benchmark rows, because oneDNN is then limited the same way.

AMX is opt-in. The oneDNN inside MXNet 1.9.1 (v2.4) stays on AVX-512 unless asked for AMX, and its
AMX kernels corrupt memory at some shapes (:data:`AMX_1X1_BROKEN_AREAS`), which the package can only
refuse by a measured table. So by default nothing here touches oneDNN and no AMX rule runs.
``GLUON_INCEPTION_AMX=1`` (or the user's own ``DNNL_MAX_CPU_ISA`` naming AMX) turns it on: before
MXNet loads, :func:`enable_amx` asks Linux for the AMX tile permission, sets
``DNNL_MAX_CPU_ISA=AVX512_CORE_AMX`` (child processes inherit both variables and ask again), and
:func:`amx_in_use` then says yes, which is what makes the AMX rules of ``deploy/amx.py`` and
``training/amx.py`` run.

Standard library only: ``_compat`` calls :func:`enable_amx` before it imports MXNet.
"""
import ctypes
import functools
import os
import platform
import sys

#: The environment variable that turns AMX on (``1``); anything else, or unset, leaves it off.
AMX_SWITCH = "GLUON_INCEPTION_AMX"

#: oneDNN 2.4's ``DNNL_MAX_CPU_ISA`` values, oldest first; ``ALL`` lifts the cap.
ISA_LEVELS = ("SSE41", "AVX", "AVX2", "AVX512_MIC", "AVX512_MIC_4OPS", "AVX512_CORE", "AVX512_CORE_VNNI",
              "AVX512_CORE_BF16", "AVX512_CORE_AMX", "ALL")  # fmt: skip

_ISA_VARIABLES = ("DNNL_MAX_CPU_ISA", "MKLDNN_MAX_CPU_ISA")

#: Output areas (height x width of one image) at which oneDNN 2.4's AMX 1x1 convolution, the kernel
#: MXNet 1.9.1 runs bfloat16 and int8 1x1 convolutions on when AMX is in use, writes outside its
#: buffers: the process aborts ("corrupted size vs. prev_size") or hangs, later and elsewhere.
#: Measured on Sapphire Rapids with ``bench/amx_1x1_areas.py`` (``docs/benchmarks.rst``); 6x6 is the one
#: GoogLeNet meets (inception 4 at 96-110 px).
AMX_1X1_BROKEN_AREAS = frozenset((27, 33, 36, 39, 42, 45, 48))


@functools.lru_cache(maxsize=1)
def _cpuinfo_flags():
    if not sys.platform.startswith("linux"):
        return frozenset()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def flags():
    """The CPU feature flags Linux reports (``/proc/cpuinfo``), not limited by any cap; empty elsewhere."""
    return _cpuinfo_flags()


def isa_cap(environ=None):
    """The ``DNNL_MAX_CPU_ISA`` (or ``MKLDNN_MAX_CPU_ISA``) value in force, upper case; None when unset.

    >>> isa_cap({"DNNL_MAX_CPU_ISA": "avx2"}), isa_cap({})
    ('AVX2', None)
    """
    environ = os.environ if environ is None else environ
    for name in _ISA_VARIABLES:
        if environ.get(name):
            return environ[name].strip().upper()
    return None


def _allows(level, environ):
    """True when the cap in ``environ`` lets oneDNN use ``level`` (an unknown cap is not a cap: oneDNN
    ignores it)."""
    cap = isa_cap(environ)
    if cap is None or cap not in ISA_LEVELS:
        return True
    return ISA_LEVELS.index(cap) >= ISA_LEVELS.index(level)


def supports_bf16(environ=None):
    """True when oneDNN computes bfloat16 natively here: AVX-512 BF16 (or AMX-BF16), and a cap that allows it.

    Without it bfloat16 would be emulated (slower than float32) or refused by oneDNN.
    """
    return bool({"avx512_bf16", "amx_bf16"} & flags()) and _allows("AVX512_CORE_BF16", environ)


def supports_vnni(environ=None):
    """True when oneDNN has int8 dot-product instructions here (AVX-512 VNNI, AVX-VNNI or AMX-INT8) under the cap.

    INT8 runs without them too, on slower AVX2/AVX-512 kernels.
    """
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & flags()) and _allows("AVX512_CORE_VNNI", environ)


def amx_requested(environ=None):
    """True when AMX is asked for: ``GLUON_INCEPTION_AMX=1``, or a ``DNNL_MAX_CPU_ISA`` that names AMX (or ``ALL``)."""
    environ = os.environ if environ is None else environ
    cap = isa_cap(environ)
    if cap is not None and "AMX" not in cap and cap != "ALL":
        return False  # a cap below AMX wins over the switch
    return environ.get(AMX_SWITCH, "").strip() == "1" or cap is not None


def amx_in_use(environ=None):
    """The one answer to "does oneDNN run AMX kernels in this process": asked for, and the CPU has AMX.

    :func:`enable_amx` has made it so before MXNet loaded (it lowers the cap when Linux refuses the
    tiles, which makes this False).
    """
    return amx_requested(environ) and {"amx_tile", "amx_bf16"} <= flags()


def enable_amx(environ=None):
    """Before MXNet loads: when AMX is requested and the CPU has it, get the tile permission and let
    oneDNN use it; True if it will. Does nothing (False) when AMX is not requested.

    Linux lets a process use AMX tile registers only after ``arch_prctl(ARCH_REQ_XCOMP_PERM)``
    (without it the first AMX kernel dies of SIGILL), and oneDNN 2.4 uses AMX only under
    ``DNNL_MAX_CPU_ISA=AVX512_CORE_AMX``. A child process inherits the variables, not the
    permission: it asks again when it imports the package. When Linux refuses, the cap is lowered
    to ``AVX512_CORE_BF16`` so that oneDNN does not try.
    """
    environ = os.environ if environ is None else environ
    if not amx_requested(environ) or not {"amx_tile", "amx_bf16"} <= flags():
        return False
    granted = sys.platform.startswith("linux") and platform.machine() == "x86_64" and _request_tiles()
    names = [name for name in _ISA_VARIABLES if name in environ]
    if not granted:
        for name in names or ["DNNL_MAX_CPU_ISA"]:
            environ[name] = "AVX512_CORE_BF16"
        return False
    if not names:
        environ["DNNL_MAX_CPU_ISA"] = "AVX512_CORE_AMX"
    return True


def _request_tiles():
    arch_prctl, req_xcomp_perm, xfeature_xtiledata = 158, 0x1023, 18  # the x86_64 syscall and its arguments
    return ctypes.CDLL(None).syscall(arch_prctl, req_xcomp_perm, xfeature_xtiledata) == 0


def amx_channels(count, multiple=32, minimum=32):
    """The input channel count to give a convolution reading ``count`` channels so that oneDNN 2.4's
    AMX kernels take it: ``count`` itself below ``minimum`` or when a multiple of ``multiple``, else the
    next multiple (112 -> 128, 528 -> 544, 24 -> 24).

    >>> amx_channels(144), amx_channels(480), amx_channels(24)
    (160, 480, 24)
    """
    return count if count < minimum or count % multiple == 0 else count + (-count % multiple)


def amx_1x1_broken(kernel, height, width):
    """True for a convolution that oneDNN 2.4 gets wrong on AMX: a 1x1 ``kernel`` with an output of
    ``height`` x ``width`` per image in :data:`AMX_1X1_BROKEN_AREAS`.

    >>> amx_1x1_broken((1, 1), 6, 6), amx_1x1_broken((1, 1), 7, 7), amx_1x1_broken((3, 3), 6, 6)
    (True, False, False)
    """
    return tuple(kernel) == (1, 1) and height * width in AMX_1X1_BROKEN_AREAS


def describe(environ=None):
    """One line for reports and benchmark headers: the model name, the instruction sets oneDNN may use
    here (after the cap) and whether AMX is on.

    >>> isinstance(describe(), str)
    True
    """
    name = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        pass
    kinds = ["AVX2" if "avx2" in flags() and _allows("AVX2", environ) else "no AVX2"]
    if "avx512f" in flags() and _allows("AVX512_CORE", environ):
        kinds.append("AVX-512")
    kinds += [word for word, ok in (("BF16", supports_bf16(environ)), ("VNNI", supports_vnni(environ))) if ok]
    cap = isa_cap(environ)
    amx = "AMX on" if amx_in_use(environ) else ("AMX off" if "amx_tile" in flags() else "no AMX")
    return "%s (%s; %s%s)" % (name, ", ".join(kinds), amx, "; DNNL_MAX_CPU_ISA=%s" % cap if cap else "")
