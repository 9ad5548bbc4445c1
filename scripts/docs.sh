#!/usr/bin/env bash
# Build the documentation with warnings as errors, then run its code examples as doctests
# (the pages' ``>>>`` blocks and every docstring Example the API reference shows).
#
#   bash scripts/docs.sh                       # with the python on PATH (tox -e docs does this)
#   PYTHON=.venv/bin/python bash scripts/docs.sh
#
# Output: docs/_build/html (open index.html). The HTML pass reads every page afresh (-E), so a
# warning is never hidden by an earlier build; the doctest pass reuses what it read (same -d).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
OUT=${DOCS_OUT:-docs/_build}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" -m sphinx -E -W --keep-going -q -b html -d "$OUT/doctrees" docs "$OUT/html"
"$PYTHON" -m sphinx -W --keep-going -q -b doctest -d "$OUT/doctrees" docs "$OUT/doctest"
echo "docs built: $OUT/html/index.html"
