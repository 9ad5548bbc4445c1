"""Tests of gluon_inception.cli."""
