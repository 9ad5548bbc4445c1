"""The version of this gluon-inception installation (read by setup.py)."""

__version__ = "0.1.0"
