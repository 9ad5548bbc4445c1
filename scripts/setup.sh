#!/usr/bin/env bash
# Set up a virtual environment with what gluon-inception needs, in the one order that works:
# the pinned scientific stack and MXNet first, then Horovod built against that MXNet.
#
#   bash scripts/setup.sh                # .venv with the CPU build of MXNet, test/onnx/openvino/nncf/docs extras
#                                        # and .venv-torch (torch + torchvision, comparison tests only)
#   EXTRAS= TORCH=0 bash scripts/setup.sh   # what the demo needs (scripts/demo.sh does this)
#   VENV=/path/venv PYTHON=python3.11 bash scripts/setup.sh   # default: the newest supported Python found
#   GPU=1 bash scripts/setup.sh          # mxnet-cu112, CUDA libraries, Horovod with NCCL (setup_gpu.sh)
#   BENCH=1 bash scripts/setup.sh        # also .venv-peers: onnxruntime + openvino for bench/inference.py
#
# Needs Python 3.11, 3.12 or 3.13 with venv and headers, cmake, a C++ compiler (Horovod builds from
# source) and libGL + glib (opencv, used by GluonCV). They are checked first; what is missing is
# printed with the command that installs it. Re-running is cheap: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
VENV=${VENV:-.venv}
PYTHON_ASKED=${PYTHON:-}
EXTRAS=${EXTRAS-test,onnx,openvino,nncf,docs}
if [ "${GPU:-0}" = "1" ]; then FLAVOUR=gpu; else FLAVOUR=cpu; fi

# -- system requirements, before anything is installed ------------------------------------------
missing=()
supported=$(IFS=,; echo "${SUPPORTED_PYTHONS[*]}")
PYTHON=$(find_python "$PYTHON_ASKED") || {
    echo "no ${PYTHON_ASKED:-supported Python (${supported//,/, })} found: install one of them (or set PYTHON=...)" >&2; exit 1; }
if ! "$PYTHON" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 13)))'; then
    echo "$PYTHON is Python $("$PYTHON" -c 'import platform; print(platform.python_version())'); gluon-inception" \
         "supports ${supported//,/, }: set PYTHON=python3.13 (or another of them)" >&2
    exit 1
fi
export PYTHON
if [ -n "$PYTHON_ASKED" ] && [ -x "$VENV/bin/python" ]; then
    have=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    want=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    [ "$have" = "$want" ] || { echo "$VENV has Python $have, not $want: choose another VENV=... for $PYTHON_ASKED" >&2; exit 1; }
fi
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || missing+=("python3-venv:python3-venv:python3")
fi
"$PYTHON" -c 'import os, sysconfig; raise SystemExit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || missing+=("Python headers (Python.h):python3-dev:python3-devel")
command -v cmake >/dev/null || missing+=("cmake:cmake:cmake")
{ command -v c++ || command -v g++; } >/dev/null || missing+=("a C++ compiler:g++:gcc-c++")
"$PYTHON" -c 'import ctypes; ctypes.CDLL("libGL.so.1")' 2>/dev/null || missing+=("libGL (libGL.so.1):libgl1:mesa-libGL")
"$PYTHON" -c 'import ctypes; ctypes.CDLL("libgthread-2.0.so.0")' 2>/dev/null || missing+=("glib (libgthread-2.0.so.0):libglib2.0-0:glib2")
if [ ${#missing[@]} -gt 0 ]; then
    what=() deb=() rpm=()
    for item in "${missing[@]}"; do
        IFS=: read -r name debian rhel <<<"$item"
        what+=("$name") deb+=("$debian") rpm+=("$rhel")
    done
    {
        names=$(IFS=,; echo "${what[*]}")
        echo "missing system packages: ${names//,/, }"
        echo "  Debian/Ubuntu:  sudo apt-get install -y ${deb[*]}"
        echo "  RHEL/Fedora:    sudo dnf install -y ${rpm[*]}"
        echo "then re-run this script (nothing was installed)."
    } >&2
    exit 1
fi

# GPU=1: scripts/setup_gpu.sh checks the driver and GPUs first, then installs MXNet's CUDA build, its
# CUDA libraries and Horovod with NCCL; the steps below then find them installed.
if [ "$FLAVOUR" = gpu ]; then VENV="$VENV" PYTHON="$PYTHON" bash scripts/setup_gpu.sh; fi

# -- the environment ----------------------------------------------------------------------------
make_venv "$VENV"
PIP=(venv_pip "$VENV")
"${PIP[@]}" install -q --upgrade "${BOOTSTRAP_PINS[@]}"

WANT=$FLAVOUR${EXTRAS:+,$EXTRAS}
say "installing gluon-inception[$WANT] (editable)"
"${PIP[@]}" install -q -e ".[$WANT]"

# MXNet 1.9.1 declares numpy<2, and Python 3.13 has no numpy 1.x: there the extra leaves MXNet out
# and it goes in without its declared dependencies (its other two: requests comes with GluonCV,
# graphviz only draws graphs). scripts/setup_gpu.sh does the same for the CUDA build.
if [ "$FLAVOUR" = cpu ] && "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 13))'; then
    MXNET=$(setup_pins mxnet)
    "${PIP[@]}" install -q --no-deps "${MXNET%%;*}"
fi

# MXNet 1.9.1 reads numpy names that numpy 1.24 and 2 removed (np.bool, np.NaN ...).
# gluon_inception._compat restores them before it imports MXNet; horovodrun imports MXNet before
# any of our code runs, so a .pth file in the venv installs the same restore at interpreter start
# (gluon_inception_numpy_aliases.py acts when mxnet is first imported).
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "import gluon_inception_numpy_aliases" >"$SITE/gluon_inception_numpy_aliases.pth"

if "$VENV/bin/python" -c "import horovod.mxnet" 2>/dev/null; then
    say "Horovod with MXNet support is already installed"
else
    HOROVOD=$(setup_pins horovod)
    say "building $HOROVOD against the installed MXNet (about 2 minutes on 2 cores)"
    # --no-build-isolation: the build must see the installed mxnet to compile its MXNet ops.
    HOROVOD_WITH_MXNET=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 \
    HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
        "${PIP[@]}" install -q --no-build-isolation "$HOROVOD"
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
if [ "${TORCH:-1}" = "1" ]; then
    tool_venv "${TORCH_VENV:-.venv-torch}" "import torchvision, onnx" "torch, torchvision and onnx" \
        "for the torchvision comparison tests and bench/inference.py's ONNX export" "${TORCH_PINS[@]}"
fi
# BENCH=1: the newest onnxruntime and openvino in a venv of their own, for bench/inference.py to time
# the exported files with (the package's extras pin onnx for MXNet's exporter).
if [ "${BENCH:-0}" = "1" ]; then
    tool_venv "${PEERS_VENV:-.venv-peers}" "import onnxruntime.quantization, openvino" "onnxruntime and openvino" \
        "for bench/inference.py" "${PEERS_PINS[@]}"
fi
say "environment ready: $VENV"
