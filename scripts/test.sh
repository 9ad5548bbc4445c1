#!/usr/bin/env bash
# Set up .venv (scripts/setup.sh) and run the whole test suite, multi-process Horovod tests included.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k model`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV=${VENV:-.venv}
"$VENV/bin/ruff" check .
PATH="$PWD/$VENV/bin:$PATH" "$VENV/bin/python" -m pytest "$@"
