"""Which CPU the tests run on, and CPUs they pretend to run on.

A test that needs a CPU feature says so with :func:`require_cpu` (a skip whose reason names the
feature and this CPU, visible in the summary). A test that pretends to be on another CPU replaces
the one source of CPU facts, :func:`gluon_inception.cpu.flags`, so every answer derived from it
(bfloat16, VNNI, AMX) changes together: in this process with :func:`simulate`, in a child with
:func:`child_code` and :func:`child_environ`. A simulated CPU must never run real kernels it lacks:
a test that simulates AMX stops before anything runs in bfloat16, or replaces the probe that would.
"""
import os

import pytest

from gluon_inception import cpu

#: Flag sets of the CPU kinds the project meets (``/proc/cpuinfo`` names).
AVX2_ONLY = frozenset({"sse4_2", "avx", "avx2", "fma"})
AVX512_BF16 = AVX2_ONLY | {"avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16"}
SAPPHIRE_RAPIDS = AVX512_BF16 | {"avx_vnni", "amx_tile", "amx_bf16", "amx_int8"}

_ISA_VARIABLES = ("DNNL_MAX_CPU_ISA", "MKLDNN_MAX_CPU_ISA")


def require_cpu(condition, feature):
    """Skip, naming ``feature`` and this CPU, when ``condition`` is false.

    Not :func:`tests.support.require`: a CPU without a feature is a fact of the machine, not a missing
    install, so it skips in CI too; ``.ci/run`` runs these tests both uncapped and under
    ``DNNL_MAX_CPU_ISA=AVX2``, so every branch runs somewhere on a CPU that has the feature.
    """
    if not condition:
        pytest.skip("CPU: needs %s; this one is %s" % (feature, cpu.describe()))


def simulate(monkeypatch, flags, amx=False):
    """Make this process take the CPU for one with ``flags`` (uncapped), with AMX switched on or not."""
    monkeypatch.setattr(cpu, "_cpuinfo_flags", lambda: frozenset(flags))
    for name in _ISA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if amx:
        monkeypatch.setenv(cpu.AMX_SWITCH, "1")
    else:
        monkeypatch.delenv(cpu.AMX_SWITCH, raising=False)


def child_code(flags, then):
    """Python source for ``python -c``: take the CPU for one with ``flags``, then run ``then``."""
    code = "from gluon_inception import cpu; cpu._cpuinfo_flags = lambda: frozenset(%r); " % sorted(flags)
    return code + then


def child_environ(env, amx=False):
    """``env`` (a child's environment) without an ISA cap, and with the AMX switch set or removed."""
    env = {k: v for k, v in env.items() if k not in _ISA_VARIABLES and k != cpu.AMX_SWITCH}
    if amx:
        env[cpu.AMX_SWITCH] = "1"
    return env


def amx_on_here():
    """True when this process really runs AMX kernels (the switch is on and the CPU has AMX)."""
    return cpu.amx_in_use(os.environ)
