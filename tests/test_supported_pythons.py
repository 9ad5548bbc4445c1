"""The supported Pythons are stated once per file and agree, and this environment has the pinned versions.

setup.py's ``python_requires`` and classifiers, scripts/lib.sh's ``SUPPORTED_PYTHONS`` (which
scripts/setup.sh chooses from) and .ci/run's Pythons must name the same versions; the environment
the suite runs in must hold what setup.py asks for on this Python (numpy 1.26 on 3.11 and 3.12,
numpy 2 on 3.13, and the pandas/SciPy/matplotlib/OpenCV/onnx ranges).
"""
import ast
import importlib.metadata
import os
import re
import sys

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return f.read()


def _setup():
    tree = ast.parse(_read("setup.py"))
    values = {}
    for n in tree.body:
        target = n.targets[0] if isinstance(n, ast.Assign) else None
        if isinstance(target, ast.Name) and target.id in ("REQUIRES", "EXTRAS"):
            values[target.id] = ast.literal_eval(n.value)
    (call,) = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup"]
    keywords = {k.arg: k.value for k in call.keywords}
    values["python_requires"] = ast.literal_eval(keywords["python_requires"])
    values["classifiers"] = ast.literal_eval(keywords["classifiers"])
    return values


def test_every_file_names_the_same_pythons():
    setup = _setup()
    requires = SpecifierSet(setup["python_requires"])
    allowed = {"3.%d" % minor for minor in range(6, 20) if Version("3.%d" % minor) in requires}
    pattern = r"Programming Language :: Python :: 3\.\d+"
    classified = {c.rsplit(" :: ", 1)[1] for c in setup["classifiers"] if re.fullmatch(pattern, c)}
    scripts = set(re.search(r"^SUPPORTED_PYTHONS=\(([^)]*)\)", _read("scripts", "lib.sh"), re.M).group(1).split())
    ci = set(re.findall(r"^PY3(\d+)=\$\{PY3\d+:-python3\.\d+\}", _read(".ci", "run"), re.M))
    assert allowed == classified == scripts == {"3.11", "3.12", "3.13"}
    assert {"3." + v for v in ci} == scripts
    workflow = re.search(r"^\s+python: \[([^\]]*)\]", _read(".github", "workflows", "tests.yml"), re.M).group(1)
    assert {v.strip().strip('"') for v in workflow.split(",")} == scripts  # the hosted CI's matrix
    assert "%d.%d" % sys.version_info[:2] in scripts


def test_this_environment_has_what_setup_py_pins_for_this_python():
    setup = _setup()
    requirements = [Requirement(r) for r in setup["REQUIRES"] + setup["EXTRAS"]["onnx"]]
    checked = []
    for req in requirements:
        if req.marker is not None and not req.marker.evaluate():
            continue
        if not req.specifier:
            continue
        installed = importlib.metadata.version(req.name)
        assert Version(installed) in req.specifier, "%s %s installed, setup.py asks for %s" % (req.name, installed, req)
        checked.append(req.name)
    assert {"numpy", "pandas", "scipy", "matplotlib", "opencv-python", "onnx"} <= set(checked)
    numpy_major = Version(importlib.metadata.version("numpy")).major
    assert numpy_major == (2 if sys.version_info >= (3, 13) else 1)
