"""CPU facts (gluon_inception/cpu.py): flags limited by DNNL_MAX_CPU_ISA, and AMX only when switched on."""
import json
import os
import subprocess
import sys

import pytest

from gluon_inception import cpu
from tests.support import child_env, cpus

# Results depend on the CPU's instruction sets: .ci/run runs these again under DNNL_MAX_CPU_ISA=AVX2 and with AMX on.
pytestmark = pytest.mark.isa


@pytest.mark.parametrize(
    "flags, cap, bf16, vnni",
    [
        (cpus.AVX2_ONLY, None, False, False),
        (cpus.AVX512_BF16, None, True, True),
        (cpus.SAPPHIRE_RAPIDS, None, True, True),
        (cpus.SAPPHIRE_RAPIDS, "AVX2", False, False),
        (cpus.SAPPHIRE_RAPIDS, "avx512_core_vnni", False, True),
        (cpus.SAPPHIRE_RAPIDS, "AVX512_CORE_BF16", True, True),
        (cpus.SAPPHIRE_RAPIDS, "ALL", True, True),
        (cpus.AVX2_ONLY, "ALL", False, False),  # a cap never adds what the CPU lacks
    ],
)
def test_what_the_cpu_can_do_is_its_flags_limited_by_the_cap(monkeypatch, flags, cap, bf16, vnni):
    cpus.simulate(monkeypatch, flags)
    if cap:
        monkeypatch.setenv("DNNL_MAX_CPU_ISA", cap)
    assert (cpu.supports_bf16(), cpu.supports_vnni()) == (bf16, vnni)


def test_the_older_variable_name_is_a_cap_too(monkeypatch):
    cpus.simulate(monkeypatch, cpus.SAPPHIRE_RAPIDS)
    monkeypatch.setenv("MKLDNN_MAX_CPU_ISA", "AVX2")
    assert cpu.isa_cap() == "AVX2" and not cpu.supports_bf16()


@pytest.mark.parametrize(
    "environ, requested",
    [
        ({}, False),  # the default: AMX off
        ({"GLUON_INCEPTION_AMX": "0"}, False),
        ({"GLUON_INCEPTION_AMX": "1"}, True),
        ({"DNNL_MAX_CPU_ISA": "AVX512_CORE_AMX"}, True),  # the user asked oneDNN for AMX: the rules must run
        ({"GLUON_INCEPTION_AMX": "1", "DNNL_MAX_CPU_ISA": "AVX512_CORE_BF16"}, False),  # a lower cap wins
        ({"GLUON_INCEPTION_AMX": "1", "DNNL_MAX_CPU_ISA": "AVX2"}, False),
    ],
)
def test_amx_is_in_use_only_when_asked_for_on_a_cpu_that_has_it(monkeypatch, environ, requested):
    cpus.simulate(monkeypatch, cpus.SAPPHIRE_RAPIDS)
    assert cpu.amx_requested(environ) is requested
    assert cpu.amx_in_use(environ) is requested
    cpus.simulate(monkeypatch, cpus.AVX512_BF16)  # no AMX: the switch changes nothing
    assert cpu.amx_in_use(environ) is False
    before = dict(environ)
    assert cpu.enable_amx(environ) is False and environ == before


def test_without_the_switch_enable_amx_leaves_onednn_alone_even_on_an_amx_cpu(monkeypatch):
    cpus.simulate(monkeypatch, cpus.SAPPHIRE_RAPIDS)
    capped = {"GLUON_INCEPTION_AMX": "1", "DNNL_MAX_CPU_ISA": "AVX2"}
    for environ in ({}, {"DNNL_MAX_CPU_ISA": "AVX512_CORE_BF16"}, capped):
        before = dict(environ)
        assert cpu.enable_amx(environ) is False and environ == before


def test_a_refused_tile_permission_lowers_the_cap_so_onednn_does_not_try(monkeypatch):
    cpus.simulate(monkeypatch, cpus.SAPPHIRE_RAPIDS)
    monkeypatch.setattr(cpu, "_request_tiles", lambda: False)
    environ = {"GLUON_INCEPTION_AMX": "1"}
    assert cpu.enable_amx(environ) is False
    assert environ["DNNL_MAX_CPU_ISA"] == "AVX512_CORE_BF16" and not cpu.amx_in_use(environ)


_STATE = (
    "import json, os; import gluon_inception; from gluon_inception import cpu; "
    "print(json.dumps({'isa': os.environ.get('DNNL_MAX_CPU_ISA'), 'amx': cpu.amx_in_use()}))"
)


def _import_state(**variables):
    env = {k: v for k, v in child_env().items() if k not in ("DNNL_MAX_CPU_ISA", "MKLDNN_MAX_CPU_ISA", cpu.AMX_SWITCH)}
    env.update(variables)
    proc = subprocess.run([sys.executable, "-c", _STATE], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_the_package_leaves_onednns_isa_untouched_by_default():
    assert _import_state() == {"isa": None, "amx": False}


def test_the_switch_turns_amx_on_where_the_cpu_has_it_and_changes_nothing_elsewhere():
    state = _import_state(GLUON_INCEPTION_AMX="1")
    has_amx = {"amx_tile", "amx_bf16"} <= cpu.flags()
    if has_amx:  # the tile permission was granted and oneDNN may use AMX
        assert state == {"isa": "AVX512_CORE_AMX", "amx": True}
    else:
        assert state == {"isa": None, "amx": False}
    # Under a cap below AMX (as .ci/run's AVX2 pass sets), the switch is overruled on every CPU.
    assert _import_state(GLUON_INCEPTION_AMX="1", DNNL_MAX_CPU_ISA="AVX2") == {"isa": "AVX2", "amx": False}


def test_describe_names_the_cpu_and_the_cap(monkeypatch):
    cpus.simulate(monkeypatch, cpus.SAPPHIRE_RAPIDS, amx=True)
    assert "AVX-512, BF16, VNNI; AMX on" in cpu.describe()
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX2")
    text = cpu.describe()
    assert "(AVX2; AMX off; DNNL_MAX_CPU_ISA=AVX2)" in text, text
    assert os.environ["DNNL_MAX_CPU_ISA"] == "AVX2"
