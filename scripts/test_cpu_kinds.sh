#!/usr/bin/env bash
# The tests whose results depend on the CPU (`pytest -m isa`: bfloat16, INT8, AMX, deploy) run again
# as the other CPU kinds the project meets would run them, on this machine:
#   1. capped at AVX2 (DNNL_MAX_CPU_ISA=AVX2): what an AVX2-only CPU gets (no bfloat16, no VNNI, no AMX);
#   2. with AMX switched on (GLUON_INCEPTION_AMX=1), when this CPU has AMX;
# then bench/train_throughput.py and bench/inference.py once each, briefly, under the AVX2 cap: the rows
# this CPU cannot run must be skipped and named. `bash scripts/test.sh` has already run everything uncapped, AMX off.
# Needs the environment scripts/test.sh made (VENV, default .venv; .venv-torch for the bench's peers).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
BIN=$(venv_bin "${VENV:-.venv}")
export GLUON_INCEPTION_TORCH_PYTHON=${GLUON_INCEPTION_TORCH_PYTHON:-$(venv_bin "${TORCH_VENV:-.venv-torch}")/python}
export PATH="$BIN:$PATH"
unset DNNL_MAX_CPU_ISA MKLDNN_MAX_CPU_ISA GLUON_INCEPTION_AMX

say "CPU: $("$BIN/python" -c 'from gluon_inception import cpu; print(cpu.describe())')"
say "the CPU-dependent tests capped at AVX2 (DNNL_MAX_CPU_ISA=AVX2)"
DNNL_MAX_CPU_ISA=AVX2 "$BIN/python" -m pytest -m isa "$@"

if "$BIN/python" -c 'import os, sys; from gluon_inception import cpu; sys.exit(not cpu.amx_in_use(dict(os.environ, GLUON_INCEPTION_AMX="1")))'; then
    say "the CPU-dependent tests with AMX switched on (GLUON_INCEPTION_AMX=1)"
    GLUON_INCEPTION_AMX=1 "$BIN/python" -m pytest -m isa "$@"
else
    say "no AMX pass: this CPU has no AMX (the switch is tested to change nothing here: tests/core/test_cpu.py)"
fi

say "bench/train_throughput.py, one short round capped at AVX2: rows this CPU lacks are skipped"
out=$(DNNL_MAX_CPU_ISA=AVX2 PYTHONPATH="$PWD" "$BIN/python" bench/train_throughput.py --steps 1 --warmup 1 \
      --rounds 1 --size 64 --batch 4 --torch-python "$GLUON_INCEPTION_TORCH_PYTHON")
echo "$out"
for row in "ours bfloat16 (AMP)" "ours bfloat16 (AMP), AMX" "torchvision channels_last + bf16 autocast"; do
    grep -qF "skipped: $row (" <<<"$out" || { echo "bench/train_throughput.py did not skip '$row' under the AVX2 cap" >&2; exit 1; }
done
grep -q '^| ours float32 |' <<<"$out" || { echo "bench/train_throughput.py printed no float32 row" >&2; exit 1; }

say "bench/inference.py, one short round capped at AVX2: its bf16 rows are skipped, the others run"
# The deployment rows need onnxruntime/openvino/nncf where they are installed (else they are skipped
# with a note); torch and GluonCV rows are left out to keep it short. `timeout`:
# a hang (MXNet's engine once waited forever here) fails this step instead of the whole job.
out=$(DNNL_MAX_CPU_ISA=AVX2 PYTHONPATH="$PWD" timeout 900 "$BIN/python" bench/inference.py --threads 2 --min-time 0.2 \
      --rounds 1 --latency-runs 2 --pause 0 --no-torch --no-gluoncv)
echo "$out"
grep -qF "note: bfloat16 skipped: this CPU has no native bfloat16" <<<"$out" \
    || { echo "bench/inference.py did not skip MXNet's bfloat16 under the AVX2 cap" >&2; exit 1; }
grep -qF "note: OpenVINO bf16 rows skipped:" <<<"$out" \
    || { echo "bench/inference.py did not skip the OpenVINO bf16 rows under the AVX2 cap" >&2; exit 1; }
grep -q '^| ours float32 (hybridized, static_alloc) |' <<<"$out" \
    || { echo "bench/inference.py printed no float32 row" >&2; exit 1; }
