"""Tests of gluon_inception.deploy."""
