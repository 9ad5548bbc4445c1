"""Tests of gluon_inception.models."""
