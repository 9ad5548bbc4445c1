"""Sphinx configuration for gluon-inception.

Build locally (what ``tox -e docs`` and CI run)::

    bash scripts/docs.sh            # HTML with warnings as errors, then the doctests

Pages that come from the code are generated at build time by ``_ext/gi_docs.py``: the API
reference (one page per public module and per public name), the command-line reference (from the
real argparse parser) and the model-zoo table (from the weight registry).
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)  # document the checkout, not an older installed copy
sys.path.insert(0, os.path.join(HERE, "_ext"))

import gluon_inception  # noqa: E402  (MXNet must import: the API pages are made from the live objects)

project = "gluon-inception"
author = "gluon-inception developers"
copyright = "2024, gluon-inception developers"
release = gluon_inception.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "gi_docs",
]

root_doc = "index"
source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
default_role = "py:obj"
pygments_style = "sphinx"
pygments_dark_style = "monokai"

# -- API reference ------------------------------------------------------------------------------
autosummary_generate = False  # gi_docs writes the pages; autosummary only draws the tables
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # types are written in the numpydoc sections
# MXNet's own docstrings are not numpydoc; never pull them into our pages through inheritance.
autodoc_inherit_docstrings = False
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# -- doctest ------------------------------------------------------------------------------------
# Docstring examples and the pages' ``>>>`` blocks run under ``sphinx -b doctest``. Examples that
# need a GPU, ImageNet or the network carry ``# doctest: +SKIP`` with the reason next to them.
doctest_test_doctest_blocks = "default"

# -- HTML ---------------------------------------------------------------------------------------
html_theme = "furo"
html_title = "gluon-inception %s" % release
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "source_repository": "https://github.com/gluon-inception/gluon-inception/",
    "source_branch": "main",
    "source_directory": "docs/",
}
html_show_sourcelink = False

# -- intersphinx ---------------------------------------------------------------------------------
# Links into the Python and NumPy docs need their inventories from the network, so they are on
# only where the build has one (Read the Docs sets READTHEDOCS=True) or when asked for.
if os.environ.get("READTHEDOCS") == "True" or os.environ.get("GLUON_INCEPTION_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
    }
