"""Helpers shared by the tests; the fixtures built on them are in tests/conftest.py.

Test modules import from here (``from tests.support import require``), never from conftest.
"""
import os
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout
STRICT = os.environ.get("GLUON_INCEPTION_STRICT") == "1"


def require(condition, what):
    """Skip loudly when ``what`` is missing; under GLUON_INCEPTION_STRICT=1 (CI) fail instead."""
    if condition:
        return
    message = "MISSING: %s" % what
    if STRICT:
        pytest.fail(message + " (GLUON_INCEPTION_STRICT=1 turns this skip into a failure)")
    pytest.skip(message)


def require_deploy_runtimes():
    """:func:`require` the packages of the exported-file paths: onnx, onnxruntime and its quantizer, openvino, nncf."""
    missing = []
    for name in ("onnx", "onnxruntime", "onnxruntime.quantization", "openvino", "nncf"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    require(not missing, "%s (pip install -e '.[onnx,openvino,nncf]')" % ", ".join(missing))


def child_env(*prepend, **variables):
    """The environment for a child process (python, horovodrun, sphinx) that must import this checkout.

    PYTHONPATH becomes ``prepend`` (folders that must come first, e.g. one that hides a module), then
    the checkout (so ``gluon_inception`` and ``tests.support`` import from here), then the PYTHONPATH
    the tests run with. ``variables`` are set on top.
    """
    env = dict(os.environ)
    paths = [str(p) for p in prepend] + [ROOT]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(variables)
    return env


def kill_when(process, ready, seconds, what):
    """SIGKILL ``process`` (no Python cleanup runs in it) as soon as ``ready()`` is true.

    Polls every 10 ms for at most ``seconds``; fails the test when the process ends on its own first
    or ``ready()`` never comes true (``what`` says what was awaited). The process is always reaped.
    """
    try:
        deadline = time.monotonic() + seconds
        while not ready():
            assert process.poll() is None, "the process ended on its own before %s" % what
            if time.monotonic() > deadline:
                pytest.fail("never saw %s within %d s" % (what, seconds))
            time.sleep(0.01)
    finally:
        process.kill()
        process.wait()
