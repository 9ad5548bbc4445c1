"""Shared fixtures. Import the package first so MXNet loads through its compatibility shim."""
import os

import pytest

import gluon_inception  # noqa: F401

STRICT = os.environ.get("GLUON_INCEPTION_STRICT") == "1"


def require(condition, what):
    """Skip loudly when ``what`` is missing; under GLUON_INCEPTION_STRICT=1 (CI) fail instead."""
    if condition:
        return
    message = "MISSING: %s" % what
    if STRICT:
        pytest.fail(message + " (GLUON_INCEPTION_STRICT=1 turns this skip into a failure)")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _seed():
    import random

    import numpy as np

    from gluon_inception._compat import mx

    random.seed(0)
    np.random.seed(0)
    mx.random.seed(0)
