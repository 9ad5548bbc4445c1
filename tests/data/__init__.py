"""Tests of gluon_inception.data."""
