#!/usr/bin/env bash
# The GPU half of `GPU=1 bash scripts/setup.sh`: MXNet's CUDA build from pip, its CUDA 11 runtime
# libraries from pip, and Horovod built with NCCL. A Linux host with only an NVIDIA driver is enough.
#
#   VENV=.venv bash scripts/setup_gpu.sh             # what setup.sh runs when GPU=1
#   GPU_BUILD_ONLY=1 VENV=... bash scripts/setup_gpu.sh
#       compile-only check for a machine without GPU: no driver is asked for, a stub libcuda.so.1
#       made here stands in for the driver's (scripts/gpu_build_check.sh runs this)
#   CUDA_HOME=/usr/local/cuda-12.4 ...               # the CUDA toolkit whose nvcc builds Horovod
#   GPU_NVCC=pip ...                                 # use the pip CUDA 13 nvcc even if a toolkit exists
#
# Order: the GPUs and the driver are checked first, so an unsupported host stops before anything is
# downloaded (about 3.1 GB of CUDA libraries, 3.6 GB with the pip nvcc).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
BUILD_ONLY=${GPU_BUILD_ONLY:-0}

die() { printf 'setup_gpu: %s\n' "$*" >&2; exit 3; }
# version_ge A B: dotted version A >= B
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

# 1. The GPUs and the driver, before anything is installed.
if [ "$BUILD_ONLY" = "1" ]; then
    say "compile-only build: no GPU or driver is checked; a stub libcuda.so.1 stands in for the driver"
    DRIVER=999
else
    say "checking the NVIDIA driver and each GPU's compute capability"
    "$PYTHON" gluon_inception/gpu.py preflight || exit 3
    DRIVER=$("$PYTHON" gluon_inception/gpu.py driver)
fi

# 2. MXNet's CUDA 11.2 build and the CUDA 11 libraries it loads (it bundles none of them).
make_venv "$VENV"
PY="$VENV/bin/python"
PIP=(venv_pip "$VENV")
"${PIP[@]}" install -q --upgrade "${BOOTSTRAP_PINS[@]}"
pins=$(gpu_fact CUDA_PACKAGES)
mapfile -t CUDA_PACKAGES <<<"$pins"
WHEEL=$(gpu_fact WHEEL)
pins=$(setup_pins numpy)   # the package's own numpy bounds: the CUDA build of MXNet needs the same
mapfile -t NUMPY_PINS <<<"$pins"
say "installing $WHEEL and the CUDA 11 runtime libraries (about 3.1 GB on first install)"
if "$PY" -m pip show -q mxnet 2>/dev/null; then
    die "the CPU build of MXNet (package mxnet) is installed in $VENV; it and $WHEEL install the same files. Remove it first: $PY -m pip uninstall -y mxnet"
fi
if "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 13))'; then
    # MXNet declares numpy<2, which has no Python 3.13 wheel: there it goes in without its dependencies.
    "${PIP[@]}" install -q "${CUDA_PACKAGES[@]}" "${NUMPY_PINS[@]}" requests
    "${PIP[@]}" install -q --no-deps "$WHEEL"
else
    "${PIP[@]}" install -q "$WHEEL" "${CUDA_PACKAGES[@]}" "${NUMPY_PINS[@]}"
fi

# 3. `import mxnet` finds them without LD_LIBRARY_PATH: a .pth file loads them with RTLD_GLOBAL the
#    first time mxnet is imported (scripts/cuda_preload.py says how).
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cp scripts/cuda_preload.py "$SITE/_gluon_inception_cuda.py"
echo "import _gluon_inception_cuda" > "$SITE/gluon_inception_cuda.pth"
# MXNet 1.9.1 imports on numpy 1.26 and 2 only with the names they removed restored (the check below
# and Horovod's build import it before the package is installed): the module and its .pth, as setup.sh.
cp gluon_inception_numpy_aliases.py "$SITE/gluon_inception_numpy_aliases.py"
echo "import gluon_inception_numpy_aliases" > "$SITE/gluon_inception_numpy_aliases.pth"

if [ "$BUILD_ONLY" = "1" ]; then
    # A stub libcuda.so.1 defining every driver function libmxnet.so uses, each returning
    # CUDA_ERROR_NO_DEVICE (100). It lives outside site-packages and is put on LD_LIBRARY_PATH for
    # this script only, so it can never shadow a real driver.
    STUB="$VENV/cuda-stub"
    mkdir -p "$STUB"
    nm -D --undefined-only "$SITE/mxnet/libmxnet.so" | awk '$2 ~ /^cu[A-Z]/ {sub(/@.*/, "", $2); print $2}' \
        | sort -u | awk '{print "int " $1 "(void) { return 100; }"}' > "$STUB/stub.c"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$STUB/libcuda.so.1" "$STUB/stub.c"
    ln -sf libcuda.so.1 "$STUB/libcuda.so"
    export LD_LIBRARY_PATH="$STUB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "stub driver library: $STUB/libcuda.so.1 ($(wc -l < "$STUB/stub.c") functions)"
fi
"$PY" - <<'EOF' || die "import mxnet failed above: the CUDA libraries or the driver's libcuda.so.1 are missing"
import mxnet as mx
features = mx.runtime.Features()
missing = [f for f in ("CUDA", "CUDNN", "NCCL") if not features.is_enabled(f)]
if missing:
    raise SystemExit("this MXNet lacks %s" % ", ".join(missing))
print("MXNet %s imports with CUDA, cuDNN and NCCL" % mx.__version__)
EOF

# 4. An nvcc for Horovod (its MXNet extension always compiles CUDA code against a CUDA MXNet).
#    The oldest driver each CUDA major needs for what it builds (Horovod links its runtime).
driver_for_cuda() { case "$1" in 11) echo 450.80.02 ;; 12) echo 525.60.13 ;; *) echo 580.65.06 ;; esac; }
NVCC=""
if [ "${GPU_NVCC:-}" != "pip" ]; then
    for candidate in "${CUDA_HOME:+$CUDA_HOME/bin/nvcc}" /usr/local/cuda/bin/nvcc "$(command -v nvcc || true)"; do
        [ -n "$candidate" ] && [ -x "$candidate" ] || continue
        release=$("$candidate" --version | sed -n 's/.*release \([0-9][0-9]*\)\.\([0-9]*\).*/\1.\2/p')
        major=${release%%.*}
        if [ -z "$major" ] || [ "$major" -lt 11 ]; then
            echo "skipping $candidate (CUDA ${release:-unknown}: Horovod needs 11 or later)"; continue
        fi
        if ! version_ge "$DRIVER" "$(driver_for_cuda "$major")"; then
            echo "skipping $candidate (CUDA $release needs driver >= $(driver_for_cuda "$major"), this one is $DRIVER)"; continue
        fi
        NVCC=$candidate; break
    done
fi
if [ -z "$NVCC" ]; then
    if ! version_ge "$DRIVER" "$(driver_for_cuda 13)"; then
        die "no usable nvcc. Horovod must compile CUDA code against a CUDA MXNet. Install a CUDA 11.x or 12.x toolkit and set CUDA_HOME to it (the pip nvcc is CUDA 13 only and needs driver >= $(driver_for_cuda 13); this one is $DRIVER)."
    fi
    say "installing the pip CUDA 13 compiler (nvcc targets compute capability 7.5 and up)"
    "${PIP[@]}" install -q "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-crt==13.0.*" "nvidia-nvvm==13.0.*" \
        "nvidia-cuda-cccl==13.0.*" "nvidia-cuda-runtime==13.0.*"
    NVCC="$SITE/nvidia/cu13/bin/nvcc"
    # The toolkit layout CMake and nvcc expect: nvcc.profile links from lib64/ (the wheels install
    # lib/), and CMake's FindCUDAToolkit looks for the unversioned libcudart.so.
    [ -e "$SITE/nvidia/cu13/lib64" ] || ln -s lib "$SITE/nvidia/cu13/lib64"
    [ -e "$SITE/nvidia/cu13/lib/libcudart.so" ] || ln -s libcudart.so.13 "$SITE/nvidia/cu13/lib/libcudart.so"
fi
# The toolkit root, as nvcc itself reports it (a wrapper script such as /usr/local/bin/nvcc may
# stand in front of the real one).
probe=$(mktemp -d)
touch "$probe/probe.cu"
CUDA_ROOT=$("$NVCC" --dryrun -c "$probe/probe.cu" -o "$probe/probe.o" 2>&1 | sed -n 's/^#\$ TOP=//p' | head -n1)
rm -rf "$probe"
CUDA_ROOT=$(readlink -f "${CUDA_ROOT:-$(dirname "$NVCC")/..}")
NVCC="$CUDA_ROOT/bin/nvcc"
ARCHS=$("$NVCC" --list-gpu-arch | sed -n 's/compute_\([0-9]*\)$/\1/p' | tr '\n' ' ')
# shellcheck disable=SC2086  # $ARCHS: one argument per architecture
if [ "$BUILD_ONLY" = "1" ]; then
    CC_LIST=$("$PYTHON" gluon_inception/gpu.py cc-list --all $ARCHS) || exit 3
else
    CC_LIST=$("$PYTHON" gluon_inception/gpu.py cc-list $ARCHS) || exit 3
fi
echo "nvcc: $NVCC ($("$NVCC" --version | sed -n 's/.*release \([^,]*\),.*/\1/p')), toolkit root $CUDA_ROOT, Horovod CUDA code for compute capability $CC_LIST"

# 5. Horovod 0.28.1 with NCCL, built against this MXNet.
check_build() { "$VENV/bin/horovodrun" --check-build 2>/dev/null || true; }
if "$PY" -c "import horovod.mxnet" 2>/dev/null && [[ "$(check_build)" == *"[X] NCCL"* ]]; then
    say "Horovod with MXNet and NCCL is already installed"
else
    if "$PY" -m pip show -q horovod 2>/dev/null; then
        say "removing the installed Horovod (it was built without NCCL)"
        "${PIP[@]}" uninstall -q -y horovod
    fi
    NCCL_HOME="$SITE/nvidia/nccl"
    ln -sf libnccl.so.2 "$NCCL_HOME/lib/libnccl.so"   # the pip package ships only the versioned name
    # The cu11 library headers (mshadow includes cusolverDn.h, cublas_v2.h ...) but not the cu11
    # runtime's: nvcc must compile against its own cuda_runtime.h.
    # shellcheck disable=SC2010  # pip's nvidia/<package> folder names are plain words
    CU11_INCLUDE=$(ls -d "$SITE"/nvidia/*/include | grep -v -e /cu13/ -e /cuda_runtime/ -e /cuda_nvrtc/ | tr '\n' ':')
    # shellcheck disable=SC2010
    CU11_LIB=$(ls -d "$SITE"/nvidia/*/lib | grep -v /cu13/ | tr '\n' ':')
    HOROVOD=$(setup_pins horovod)
    say "building $HOROVOD with NCCL (about 4 minutes on 2 cores)"
    # --no-build-isolation: the build imports the installed mxnet; --no-cache-dir: never reuse a
    # wheel pip cached from an earlier build without NCCL.
    PATH="$CUDA_ROOT/bin:$PATH" CUDA_HOME="$CUDA_ROOT" HOROVOD_CUDA_HOME="$CUDA_ROOT" \
    CPATH="${CU11_INCLUDE}${CPATH:-}" LIBRARY_PATH="${CU11_LIB}${LIBRARY_PATH:-}" \
    LD_LIBRARY_PATH="${CU11_LIB}${LD_LIBRARY_PATH:-}" \
    HOROVOD_GPU_OPERATIONS=NCCL HOROVOD_NCCL_HOME="$NCCL_HOME" HOROVOD_NCCL_LINK=SHARED \
    HOROVOD_BUILD_CUDA_CC_LIST="$CC_LIST" \
    HOROVOD_WITH_MXNET=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 \
    HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
        "${PIP[@]}" install -q --no-build-isolation --no-cache-dir "$HOROVOD"
fi
build_info=$(check_build)
echo "$build_info"
[[ "$build_info" == *"[X] MXNet"* ]] || die "Horovod was built without MXNet support (see the build log above)"
[[ "$build_info" == *"[X] NCCL"* ]] || die "Horovod was built without NCCL: GPU allreduce would fall back to Gloo through host memory"
say "GPU build ready in $VENV: $WHEEL, CUDA 11 libraries from pip, Horovod with NCCL"
