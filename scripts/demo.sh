#!/usr/bin/env bash
# The README's main command: set up .venv with only what the demo needs (no torch, no docs or onnx
# extras), then train GoogLeNet on the embedded demo digits with three Horovod ranks, evaluate on
# the test split (top-1 / top-k printed at the end) and draw the training figure.
#
#   bash scripts/demo.sh                    # 3 ranks on CPU (or on 3 GPUs when there are)
#   RANKS=1 bash scripts/demo.sh            # one plain process, no horovodrun
#   bash scripts/demo.sh --epochs 4         # extra flags go to examples/train_imagenet.py
#   SKIP_SETUP=1 VENV=/path/venv bash scripts/demo.sh   # reuse a ready environment
#
# Each run writes its last 3 checkpoints (KEEP=N to change), logs and the figure to a fresh
# folder runs/demo-YYYYmmdd-HHMMSS.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
VENV=${VENV:-.venv}
if [ "${SKIP_SETUP:-0}" != "1" ]; then VENV="$VENV" EXTRAS="" TORCH=0 bash scripts/setup.sh; fi
RANKS=${RANKS:-3}
RUN=${RUN:-runs/demo-$(date +%Y%m%d-%H%M%S)}
BIN=$(venv_bin "$VENV")
export PATH="$BIN:$PATH" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

say "training on the demo dataset with $RANKS rank(s); output in $RUN"
TRAIN=(python examples/train_imagenet.py --optimizer adam --demo --keep-last "${KEEP:-3}" --checkpoints "$RUN" "$@")
if [ "$RANKS" = "1" ]; then
    "${TRAIN[@]}"
else
    horovodrun -np "$RANKS" -H "localhost:$RANKS" "${TRAIN[@]}"
fi
python -m gluon_inception.cli plot "$RUN" -o "$RUN/training.png" >/dev/null
say "figure: $RUN/training.png  log: $RUN/googlenet.log  metrics: $RUN/googlenet-metrics.jsonl"
