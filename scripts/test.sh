#!/usr/bin/env bash
# Set up .venv (scripts/setup.sh: all extras, and .venv-torch for the torchvision comparisons), lint
# (ruff, then import-linter's layers contract), run the whole test suite, multi-process Horovod tests
# included, then build the documentation with warnings as errors and run its examples (scripts/docs.sh).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k model`.
#   VENV=.venv-py311 PYTHON=python3.11 bash scripts/test.sh     # another Python, its own venv
#   DOCS=0 bash scripts/test.sh                                  # without building the docs
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
VENV=${VENV:-.venv}
VENV="$VENV" bash scripts/setup.sh
BIN=$(venv_bin "$VENV")
# The torchvision comparison tests run torch in its own interpreter (made by setup.sh).
export GLUON_INCEPTION_TORCH_PYTHON=${GLUON_INCEPTION_TORCH_PYTHON:-$(venv_bin "${TORCH_VENV:-.venv-torch}")/python}
"$BIN/ruff" check .
"$BIN/lint-imports"    # the layers contract in pyproject.toml: imports point down only
PATH="$BIN:$PATH" "$BIN/python" -m pytest "$@"
if [ "${DOCS:-1}" = "1" ]; then PYTHON="$BIN/python" bash scripts/docs.sh; fi
