#!/usr/bin/env bash
# Compile-only check of the GPU build on a machine without a GPU (not part of the default CI: it
# downloads about 3.6 GB). It runs scripts/setup_gpu.sh with GPU_BUILD_ONLY=1 into its own virtual
# environment: mxnet-cu112 and the CUDA 11 libraries from pip, a stub libcuda.so.1 in place of the
# driver's, Horovod 0.28.1 built with NCCL, and `horovodrun --check-build` must list NCCL.
#
#   bash scripts/gpu_build_check.sh                  # venv in .venv-gpu-build
#   VENV=/somewhere/else bash scripts/gpu_build_check.sh
#   tox -e gpu-build                                 # the same, from tox
set -euo pipefail
cd "$(dirname "$0")/.."
export VENV=${VENV:-.venv-gpu-build}
start=$(date +%s)
GPU_BUILD_ONLY=1 bash scripts/setup_gpu.sh
seconds=$(( $(date +%s) - start ))
printf '\n== compile-only GPU build check passed in %d s; %s holds %s\n' \
    "$seconds" "$VENV" "$(du -sh "$VENV" | cut -f1)"
