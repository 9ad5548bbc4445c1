#!/usr/bin/env bash
# Set up .venv (scripts/setup.sh), lint (ruff, then import-linter's layers contract), run the whole test
# suite, multi-process Horovod tests included, then build the documentation with warnings as errors and run its examples (scripts/docs.sh).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k model`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV=${VENV:-.venv}
# The torchvision comparison tests run torch in its own interpreter (made by setup.sh).
export GLUON_INCEPTION_TORCH_PYTHON=${GLUON_INCEPTION_TORCH_PYTHON:-$PWD/${TORCH_VENV:-.venv-torch}/bin/python}
"$VENV/bin/ruff" check .
"$VENV/bin/lint-imports"    # the layers contract in pyproject.toml: imports point down only
PATH="$PWD/$VENV/bin:$PATH" "$VENV/bin/python" -m pytest "$@"
PYTHON="$VENV/bin/python" bash scripts/docs.sh
