"""The test suite. Its folders mirror the package's; shared fixtures are in conftest.py, helpers in support/."""
