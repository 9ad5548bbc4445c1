#!/usr/bin/env bash
# The package as a user gets it: install it into a fresh virtual environment and run the console
# script from outside the source tree: `gluon-inception info`, one epoch of demo training (one plain
# process) and `evaluate` of the checkpoint it wrote. By default it builds the wheel from the
# checkout and installs that; scripts/test_release.sh instead has it install by name from an index.
#
#   bash scripts/test_wheel.sh                           # builds with .venv/bin/python
#   BUILD_PYTHON=/path/python PYTHON=python3.13 bash scripts/test_wheel.sh   # on 3.13 MXNet goes in --no-deps
#   WHEEL=dist/gluon_inception-X-py3-none-any.whl bash scripts/test_wheel.sh   # a wheel built already
#   REQUIREMENT="gluon-inception[cpu]==X" PIP_INSTALL_ARGS="--extra-index-url URL --no-binary gluon-inception" \
#   EXPECT_FROM=URL EXPECT_FILE=gluon_inception-X.tar.gz bash scripts/test_wheel.sh
#       install by name; pip's install report must show gluon-inception taken from EXPECT_FROM, as
#       the file EXPECT_FILE
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
BUILD_PYTHON=${BUILD_PYTHON:-.venv/bin/python}   # has setuptools and wheel (scripts/setup.sh)
PYTHON=$(find_python "${PYTHON:-python3}")       # makes the fresh environment
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gluon-inception-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

"$PYTHON" -m venv "$WORK/venv"
if [ -n "${REQUIREMENT:-}" ]; then
    say "installing $REQUIREMENT into a fresh environment${PIP_INSTALL_ARGS:+ ($PIP_INSTALL_ARGS)}"
    # shellcheck disable=SC2086  # PIP_INSTALL_ARGS: several arguments
    "$WORK/venv/bin/python" -m pip install -q --disable-pip-version-check --report "$WORK/install.json" \
        ${PIP_INSTALL_ARGS:-} "$REQUIREMENT"
    "$WORK/venv/bin/python" - "$WORK/install.json" "${EXPECT_FROM:-}" "${EXPECT_FILE:-}" <<'PY'
import json
import sys

report, prefix, name = sys.argv[1], sys.argv[2], sys.argv[3]
ours = [item for item in json.load(open(report))["install"] if item["metadata"]["name"] == "gluon-inception"]
assert len(ours) == 1, "pip installed no gluon-inception"
url = ours[0]["download_info"]["url"]
print("gluon-inception %s from %s" % (ours[0]["metadata"]["version"], url))
if prefix and not url.startswith(prefix):
    sys.exit("gluon-inception came from %s, not from %s" % (url, prefix))
if name and url.rsplit("/", 1)[-1] != name:
    sys.exit("pip installed %s, not %s" % (url.rsplit("/", 1)[-1], name))
PY
else
    if [ -z "${WHEEL:-}" ]; then
        say "building the wheel"
        "$BUILD_PYTHON" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation -w "$WORK/dist" .
        WHEEL=$(ls "$WORK"/dist/gluon_inception-*.whl)
    fi
    WHEEL=$(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")
    say "installing $(basename "$WHEEL")[cpu] into a fresh environment"
    "$WORK/venv/bin/python" -m pip install -q --disable-pip-version-check "${WHEEL}[cpu]"
fi
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
"$WORK/venv/bin/python" - "$WORK/report.json" <<'PY'
import json
import sys

result = json.load(open(sys.argv[1]))["results"]["1-crop"]
print("report: 1-crop top-1 %.4f top-5 %.4f over %d images" % (result["top1"], result["top5"], result["count"]))
assert result["count"] == 300, "the demo's test split has 300 images"
assert 0 <= result["top1"] <= result["top5"] <= 1
PY
say "the installed package works from outside the source tree"
