#!/usr/bin/env bash
# The package as a user gets it: build the wheel, install it into a fresh virtual environment and
# run the console script from outside the source tree: `gluon-inception info`, one epoch of demo
# training (one plain process) and `evaluate` of the checkpoint it wrote. .ci/run calls this once.
#
#   bash scripts/test_wheel.sh                           # builds with .venv/bin/python
#   BUILD_PYTHON=/path/python PYTHON=python3.13 bash scripts/test_wheel.sh   # on 3.13 MXNet goes in --no-deps
#   WHEEL=dist/gluon_inception-X-py3-none-any.whl bash scripts/test_wheel.sh   # a wheel built already
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
BUILD_PYTHON=${BUILD_PYTHON:-.venv/bin/python}   # has setuptools and wheel (scripts/setup.sh)
PYTHON=$(find_python "${PYTHON:-python3}")       # makes the fresh environment
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gluon-inception-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

if [ -z "${WHEEL:-}" ]; then
    say "building the wheel"
    "$BUILD_PYTHON" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation -w "$WORK/dist" .
    WHEEL=$(ls "$WORK"/dist/gluon_inception-*.whl)
fi
WHEEL=$(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")
say "installing $(basename "$WHEEL")[cpu] into a fresh environment"
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --disable-pip-version-check "${WHEEL}[cpu]"
if "$WORK/venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 13))'; then
    # MXNet 1.9.1 declares numpy<2, which has no Python 3.13 wheel: the [cpu] extra leaves it out there.
    MXNET=$(setup_pins mxnet)
    say "Python 3.13: ${MXNET%%;*} without its declared dependencies"
    "$WORK/venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps "${MXNET%%;*}"
fi

# From an empty folder with a clean PYTHONPATH: only the installed package can be imported.
cd "$WORK"
export PYTHONPATH="" MXNET_HOME="$WORK/mxnet-home"
GI="$WORK/venv/bin/gluon-inception"
found=$("$WORK/venv/bin/python" -c 'import gluon_inception; print(gluon_inception.__file__)')
case "$found" in "$WORK/venv/"*) ;; *) echo "imported $found, not the installed wheel" >&2; exit 1 ;; esac
say "gluon-inception info"
"$GI" info
say "one epoch of demo training"
"$GI" train --demo --optimizer adam --epochs 1 --checkpoints "$WORK/run"
say "gluon-inception evaluate"
"$GI" evaluate --checkpoint "$WORK/run" --data "$MXNET_HOME/datasets/gluon-inception-demo" --split test \
    --report "$WORK/report.json"
"$WORK/venv/bin/python" -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r); assert r' "$WORK/report.json"
say "the installed wheel works from outside the source tree"
