"""Tests of gluon_inception.zoo."""
