"""Tests of gluon_inception.training."""
