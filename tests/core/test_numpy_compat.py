"""The numpy names MXNet 1.9.1 and GluonCV 0.10.5 read, from their installed sources, all resolve.

gluon_inception_numpy_aliases restores what newer numpy removed. Its list is checked against the
sources, both ways: every numpy name the installed ``mxnet`` and ``gluoncv`` read (at import and in
functions) resolves after :func:`restore`; and each name it restores is read by them, and is missed
(the scan fails) when it is left out on a numpy that lacks it, or left untouched on a numpy that has
it. So a numpy that removes another name fails here rather than in a user's ``import mxnet``.
The resolution runs in a fresh interpreter (tests.support.numpy_names), on a copy of the numpy
module as installed, because this process's numpy has been restored already.
"""
import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import gluon_inception_numpy_aliases as compat
from tests.support import child_env
from tests.support.numpy_names import numpy_reads, package_reads


def _installed(name):
    # Found, not imported: the scan must work even when a missing name makes ``import mxnet`` fail.
    (folder,) = importlib.util.find_spec(name).submodule_search_locations
    return folder


@pytest.fixture(scope="module")
def reads():
    """``{dotted name: [(file, line, at_import)]}`` over the installed mxnet and gluoncv."""
    found = {}
    for package in ("mxnet", "gluoncv"):
        for name, where in package_reads(_installed(package)).items():
            found.setdefault(name, []).extend(where)
    return found


def _ours():
    """``{dotted name: [(file, line, at_import)]}`` over this checkout's package, benchmarks and examples."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    found = {}
    for folder in ("gluon_inception", "bench", "examples"):
        for name, where in package_reads(os.path.join(root, folder)).items():
            found.setdefault(name, []).extend(where)
    return found


@pytest.fixture(scope="module")
def resolution(reads):
    """For a pristine numpy: which reads fail with everything restored, and with each name left out;
    and which of our own reads fail with nothing restored."""
    scenarios = {"all": list(compat.RESTORED), "ours, nothing restored": []}
    for name in compat.RESTORED:
        scenarios["without " + name] = [n for n in compat.RESTORED if n != name]
    request = json.dumps({"reads": sorted(set(reads) | set(_ours())), "scenarios": scenarios})
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.numpy_names"],
        input=request,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _top(dotted):
    return dotted.split(".")[1]


def test_the_scanner_finds_what_a_file_reads():
    source = '''
import numpy as onp
import numpy
import numpy.linalg as la
from numpy import PZERO, random as npr
from . import numpy as np          # not numpy: MXNet's own
NAMES = ['sometrue', 'linalg.norm']
x = onp.NaN
y = numpy.lib.stride_tricks.as_strided
z = np.float_                      # ignored: np is not numpy here
w = getattr(onp, 'msort')


@onp.vectorize
def f(a=onp.Inf):
    return onp.float(a) + la.norm(a)


def register():
    for name in NAMES:
        getattr(onp, name)
'''
    got = {(name, at_import) for name, _, at_import in numpy_reads(source)}
    assert got == {
        ("numpy.PZERO", True),
        ("numpy.random", True),
        ("numpy.NaN", True),
        ("numpy.lib.stride_tricks.as_strided", True),
        ("numpy.msort", True),
        ("numpy.vectorize", True),
        ("numpy.Inf", True),
        ("numpy.float", False),
        ("numpy.linalg.norm", False),
        ("numpy.sometrue", False),
    }


def test_the_scan_reads_the_installed_packages(reads):
    # Known reads, one of each kind: a constant MXNet binds at import, a financial function bound in
    # mxnet.numpy.fallback, a name from MXNet's getattr dispatch list, and an alias GluonCV uses.
    assert ("mxnet/numpy/utils.py", True) in {(f, i) for f, _, i in reads["numpy.PZERO"]}
    assert any(f == "mxnet/numpy/fallback.py" for f, _, _ in reads["numpy.mirr"])
    assert any(f == "mxnet/numpy_dispatch_protocol.py" for f, _, _ in reads["numpy.sometrue"])
    assert any(f.startswith("gluoncv/") for f, _, _ in reads["numpy.float"])
    assert len(reads) > 300


def test_every_numpy_name_mxnet_and_gluoncv_read_resolves(reads, resolution):
    missing = resolution["all"]
    assert not missing, "numpy %s lacks names MXNet 1.9.1 or GluonCV 0.10.5 read; add them to %s:\n%s" % (
        resolution["numpy"],
        compat.__file__,
        "\n".join("%s  (%s)" % (n, ", ".join("%s:%d" % w[:2] for w in reads[n][:3])) for n in missing),
    )


def test_our_own_code_needs_nothing_restored(resolution):
    # The restored names are for MXNet and GluonCV only: our code must run on numpy as it is.
    ours = _ours()
    assert len(ours) > 20
    assert not [r for r in resolution["ours, nothing restored"] if r in ours]


@pytest.mark.parametrize("name", compat.RESTORED)
def test_each_restored_name_is_needed(name, reads, resolution):
    readers = sorted(r for r in reads if _top(r) == name)
    assert readers, "neither mxnet nor gluoncv reads numpy.%s: it should not be restored" % name
    left_out = resolution["without " + name]
    if name in resolution["lacking"]:
        # numpy lacks it: without it, exactly the reads of that name fail.
        assert left_out == readers
    else:
        # numpy has it (numpy 2's np.bool, numpy 1.26's np.alltrue ...): not needed here, and left alone.
        assert left_out == []


def test_restore_never_replaces_a_name_numpy_has():
    import types

    view = types.ModuleType("numpy")
    mine = object()
    view.__dict__.update({name: mine for name in compat.RESTORED})
    assert compat.restore(view) == []
    assert all(view.__dict__[name] is mine for name in compat.RESTORED)
    view = types.ModuleType("numpy")
    view.__dict__.update(all=np.all, any=np.any, prod=np.prod, round=np.round, sort=np.sort)
    assert compat.restore(view) == list(compat.RESTORED)


def test_numpy_2_keeps_its_own_bool():
    # Overwriting numpy 2's np.bool with Python's bool breaks numpy.ma and scipy.
    import numpy.ma

    if int(np.__version__.split(".")[0]) >= 2:
        assert np.bool is np.bool_
    else:
        assert np.bool is bool
    assert numpy.ma.masked_array([1, 2], mask=[0, 1]).sum() == 1


def test_restored_values_are_what_numpy_had():
    values = compat.replacements(np)
    assert values["Inf"] == values["PINF"] == math.inf and values["NINF"] == -math.inf
    assert math.isnan(values["NAN"]) and math.isnan(values["NaN"])
    assert math.copysign(1, values["PZERO"]) == 1 and math.copysign(1, values["NZERO"]) == -1
    a = np.array([[3, 1], [2, 4], [1, 0]])
    assert values["alltrue"](a > -1) and not values["alltrue"](a > 0)
    assert values["sometrue"](a == 4) and not values["sometrue"](a == 9)
    assert values["product"](a, axis=0).tolist() == [6, 0]
    assert values["round_"](np.array([1.26, 2.5]), 1).tolist() == [1.3, 2.5]
    assert values["msort"](a).tolist() == [[1, 0], [2, 1], [3, 4]]
    assert values["product"] is not np.prod  # MXNet's dispatch table is keyed by function
    with pytest.raises(RuntimeError, match="removed in numpy 1.20"):
        values["mirr"]([1, 2], 0.1, 0.1)
    assert (values["bool"], values["int"], values["float"]) == (bool, int, float)


def test_mxnet_imports_in_a_fresh_interpreter_after_the_module_alone():
    # What the .pth file that scripts/setup.sh writes does for horovodrun: import the module, then
    # anything may import mxnet (the names are restored when mxnet is looked up).
    code = (
        "import gluon_inception_numpy_aliases\n"
        "import mxnet as mx\n"
        "print(mx.np.PZERO, mx.nd.ones((2,)).sum().asscalar())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0.0", "2.0"]
