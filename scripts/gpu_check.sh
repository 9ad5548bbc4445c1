#!/usr/bin/env bash
# For anyone with a supported NVIDIA GPU (compute capability 5.0-8.9, see docs/installation.rst):
# set up the GPU build, train the demo with 3 Horovod ranks in float16 on the visible GPUs, compare
# training throughput with GluonCV's googlenet on the same GPU, and print one report.
# NOT YET RUN BY THE PROJECT: its machines have no GPU that the pip MXNet can use. Please send
# the printed report (runs/gpu-check-*/report.md) back with the issue tracker.
#
#   bash scripts/gpu_check.sh                        # setup (GPU=1) + demo + benchmark + report
#   SKIP_SETUP=1 VENV=/path/venv bash scripts/gpu_check.sh
#   EPOCHS=2 BATCH=128 bash scripts/gpu_check.sh
#
# Ranks and GPUs: each rank takes the GPU of its local rank. NCCL refuses two ranks of one job on
# the same GPU ("Duplicate GPU detected"), so with fewer than 3 GPUs the demo runs one rank per GPU
# and says so in the report.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
VENV=${VENV:-.venv}
EPOCHS=${EPOCHS:-3}
BATCH=${BATCH:-128}
RUN=${RUN:-runs/gpu-check-$(date +%Y%m%d-%H%M%S)}
if [ "${SKIP_SETUP:-0}" != "1" ]; then GPU=1 VENV="$VENV" bash scripts/setup.sh; fi
BIN=$(venv_bin "$VENV")
export PATH="$BIN:$PATH" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$RUN"

printf '\n== installation\n'
python -m gluon_inception.cli info | tee "$RUN/info.txt"
python -m gluon_inception.cli info --json > "$RUN/info.json"
GPUS=$(python -c "import mxnet as mx; print(mx.context.num_gpus())")
if [ "$GPUS" -lt 1 ]; then
    echo "gpu_check: MXNet sees no GPU (see the info above); nothing to check" >&2
    exit 1
fi
RANKS=$(( GPUS < 3 ? GPUS : 3 ))
NOTE=""
[ "$RANKS" -lt 3 ] && NOTE=" (only $GPUS GPU(s): NCCL allows one rank per GPU)"

printf '\n== demo: %d rank(s), --precision float16, --fp16-allreduce%s; output in %s\n' "$RANKS" "$NOTE" "$RUN"
start=$(date +%s)
horovodrun -np "$RANKS" -H "localhost:$RANKS" \
    python examples/train_imagenet.py --demo --optimizer adam --precision float16 --fp16-allreduce \
    --epochs "$EPOCHS" --checkpoints "$RUN/demo" 2>&1 | tee "$RUN/demo.log"
DEMO_SECONDS=$(( $(date +%s) - start ))

printf '\n== training throughput on GPU 0 against GluonCV googlenet (batch %d)\n' "$BATCH"
python bench/gpu_train_throughput.py --batch "$BATCH" --json "$RUN/throughput.json" | tee "$RUN/throughput.txt"

python - "$RUN" "$RANKS" "$DEMO_SECONDS" <<'PY' | tee "$RUN/report.md"
import json, os, sys
run, ranks, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
info = json.load(open(os.path.join(run, "info.json")))
epochs = [json.loads(line) for line in open(os.path.join(run, "demo", "googlenet-metrics.jsonl"))]
epochs = [e for e in epochs if "event" not in e]
bench = json.load(open(os.path.join(run, "throughput.json")))
print("# gluon-inception GPU check\n")
print("- gluon-inception %s, MXNet %s, Horovod %s, Python %s"
      % (info["gluon_inception"], info["mxnet"], info["horovod"], info["python"]))
for line in info["gpu"]["summary"]:
    print("- " + line)
last = epochs[-1]
print("\n## demo: %d rank(s), float16, fp16 allreduce, %d epochs in %d s" % (ranks, len(epochs), seconds))
print("- last epoch: train loss %.4f, %.1f img/s; val top-1 %s"
      % (last.get("train_loss", float("nan")), last.get("img_per_sec", float("nan")), last.get("val_top1")))
print("\n## training throughput, %s, batch %d, %dx%d" % (bench["where"], bench["batch"], bench["size"], bench["size"]))
print("| network | dtype | img/s | vs GluonCV |\n|---|---|---|---|")
for row in bench["rows"]:
    print("| %s | %s | %.1f | %.2fx |" % (row["network"], row["dtype"], row["img_per_sec"], row["vs_gluoncv"]))
PY
printf '\n== report: %s/report.md\n' "$RUN"
