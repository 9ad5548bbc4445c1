"""Tests of the core modules (checkpoint, fileio, preprocessing) and of the package's import structure."""
