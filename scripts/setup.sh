#!/usr/bin/env bash
# Set up a virtual environment with everything gluon-inception needs, in the one order that works:
# the pinned scientific stack and MXNet first, then Horovod built against that MXNet.
#
#   bash scripts/setup.sh                # .venv with the CPU build of MXNet
#   VENV=/path/venv bash scripts/setup.sh
#   GPU=1 bash scripts/setup.sh          # mxnet-cu112, CUDA libraries, Horovod with NCCL (setup_gpu.sh)
#
# Only Python (3.8-3.11) and pip are needed. Re-running it is cheap: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
EXTRAS=${EXTRAS:-test,onnx,docs}
if [ "${GPU:-0}" = "1" ]; then FLAVOUR=gpu; else FLAVOUR=cpu; fi

say() { printf '\n== %s\n' "$*"; }

# GPU=1: scripts/setup_gpu.sh checks the driver and GPUs first, then installs MXNet's CUDA build, its
# CUDA libraries and Horovod with NCCL; the steps below then find them installed.
if [ "$FLAVOUR" = gpu ]; then VENV="$VENV" PYTHON="$PYTHON" bash scripts/setup_gpu.sh; fi

if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtual environment $VENV with $($PYTHON --version)"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip wheel "setuptools<70"

say "installing gluon-inception[$FLAVOUR,$EXTRAS] (editable)"
"${PIP[@]}" install -q -e ".[$FLAVOUR,$EXTRAS]"

if "$VENV/bin/python" -c "import horovod.mxnet" 2>/dev/null; then
    say "Horovod with MXNet support is already installed"
else
    say "building Horovod 0.28.1 against the installed MXNet (about 2 minutes on 2 cores)"
    # --no-build-isolation: the build must see the installed mxnet to compile its MXNet ops.
    HOROVOD_WITH_MXNET=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 \
    HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
        "${PIP[@]}" install -q --no-build-isolation "horovod==0.28.1"
fi
build_info=$("$VENV/bin/horovodrun" --check-build)
case "$build_info" in
    *"[X] MXNet"*) ;;
    *) echo "$build_info" >&2
       echo "Horovod was built without MXNet support: uninstall it and re-run this script" >&2
       exit 1 ;;
esac
# torch + torchvision in a venv of their own, only for the tests that compare with torchvision:
# GluonCV refuses to import beside torch >= 2, so they cannot share $VENV. TORCH=0 skips it.
TORCH_VENV=${TORCH_VENV:-.venv-torch}
if [ "${TORCH:-1}" = "1" ]; then
    if "$TORCH_VENV/bin/python" -c "import torchvision" 2>/dev/null; then
        say "torch and torchvision are already installed in $TORCH_VENV"
    else
        say "creating $TORCH_VENV with torch and torchvision (for the torchvision comparison tests)"
        "$PYTHON" -m venv "$TORCH_VENV"
        "$TORCH_VENV/bin/python" -m pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
    fi
fi
say "environment ready: $VENV"
