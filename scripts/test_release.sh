#!/usr/bin/env bash
# The release as users get it, through a real package index on loopback. .ci/run runs this once.
#
#   1. starts pypiserver on 127.0.0.1 (a free port, no fallback to any other index),
#   2. scripts/release.sh builds the sdist and the wheel, checks them and uploads them to it with
#      `twine upload`,
#   3. scripts/check_index.py reads back what the index serves (simple page, files, JSON page) and
#      checks the files and their metadata,
#   4. twice, each time in a fresh venv from outside the checkout (scripts/test_wheel.sh): installs
#      `gluon-inception[cpu]` by name from the index (the wheel, then the sdist; dependencies from
#      the machine's usual indexes), runs `gluon-inception info`, trains one demo epoch and
#      evaluates the checkpoint,
#   5. unpacks the sdist and collects the whole test suite from it, then runs the fast core tests there
#      (with the tests' venv, VENV, default .venv): the sdist holds what the tests need.
#
#   PYTHON=python3.11 bash scripts/test_release.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gluon-inception-release-test.XXXXXX")
SERVER=""
cleanup() {
    if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
VERSION=$(package_version)
start=$(date +%s)
step() { say "$1 ($(( $(date +%s) - start )) s so far)"; }

step "release tools into a throwaway venv"
make_venv "$WORK/tools"
venv_pip "$WORK/tools" install -q "${RELEASE_TOOLS[@]}"

step "a package index on loopback"
PORT=$(free_port)
INDEX="http://127.0.0.1:$PORT"
mkdir "$WORK/packages"
# -a . -P .: no authentication (loopback only); --disable-fallback: never redirect to another index.
"$WORK/tools/bin/pypi-server" run --host 127.0.0.1 --port "$PORT" -a . -P . --disable-fallback \
    "$WORK/packages" >"$WORK/pypiserver.log" 2>&1 &
SERVER=$!
wait_for_url "$INDEX/simple/" 60 || { cat "$WORK/pypiserver.log" >&2; exit 1; }
echo "pypiserver (pid $SERVER) at $INDEX"

step "build, check and upload"
TOOLS_VENV="$WORK/tools" DIST="$WORK/dist" TWINE_USERNAME=ci TWINE_PASSWORD=ci \
    bash scripts/release.sh --repository-url "$INDEX/"

step "what the index serves"
"$WORK/tools/bin/python" scripts/check_index.py "$INDEX" "$WORK/dist"

# --extra-index-url: the loopback index beside the indexes pip is configured with (they serve
# MXNet and the other dependencies); the install report shows which index gluon-inception came from.
for kind in wheel sdist; do
    if [ "$kind" = wheel ]; then
        choice="--only-binary gluon-inception" file="gluon_inception-$VERSION-py3-none-any.whl"
    else
        choice="--no-binary gluon-inception" file="gluon_inception-$VERSION.tar.gz"
    fi
    step "gluon-inception[cpu] by name from the index, as the $kind"
    REQUIREMENT="gluon-inception[cpu]==$VERSION" PIP_INSTALL_ARGS="--extra-index-url $INDEX/simple/ $choice" \
    EXPECT_FROM="$INDEX/" EXPECT_FILE="$file" PYTHON="$PYTHON" bash scripts/test_wheel.sh
done

step "the tests from the unpacked sdist"
BIN=$(venv_bin "$VENV")
if [ ! -x "$BIN/pytest" ]; then
    echo "no pytest in $VENV: run scripts/setup.sh first (or set VENV)" >&2
    exit 1
fi
mkdir "$WORK/sdist"
tar -xzf "$WORK/dist/gluon_inception-$VERSION.tar.gz" -C "$WORK/sdist"
SRC="$WORK/sdist/gluon_inception-$VERSION"
# From the unpacked folder, python -m pytest imports its gluon_inception and tests (first on sys.path).
collected=$(cd "$SRC" && PATH="$BIN:$PATH" "$BIN/python" -m pytest --collect-only -q -p no:cacheprovider | tail -1)
echo "collected from the sdist: $collected"
case "$collected" in *" tests collected"* | *" test collected"*) ;; *) echo "collecting the tests from the sdist failed" >&2; exit 1 ;; esac
(cd "$SRC" && PATH="$BIN:$PATH" "$BIN/python" -c 'import gluon_inception, os, sys; sys.exit(not gluon_inception.__file__.startswith(os.getcwd()))') \
    || { echo "the tests would not import the sdist's own package" >&2; exit 1; }
(cd "$SRC" && PATH="$BIN:$PATH" "$BIN/python" -m pytest -q -p no:cacheprovider -m "not slow" tests/core)
step "release test passed"
