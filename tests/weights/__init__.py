"""Tests of gluon_inception.weights."""
