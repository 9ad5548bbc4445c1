#!/usr/bin/env python
"""Fine-tune a pretrained GoogLeNet on your own folder of images: the training engine with
fine-tuning defaults.

    gluon-inception prepare my_photos data/my_photos --val-per-class 20
    python examples/finetune.py --data data/my_photos --epochs 10 --checkpoints runs/my_photos
    horovodrun -np 4 python examples/finetune.py --data data/my_photos     # several GPUs or hosts

It is `gluon-inception train` with the defaults below placed before your flags (yours win): every
layer but the classifier starts from the most accurate ImageNet weights, the new classifier (sized
to your classes) learns ten times faster than the rest, and every epoch ends with a checkpoint that
`gluon-inception evaluate/predict/export --checkpoint runs/my_photos` take. `--help` lists every
flag; see docs/tutorials/finetune.rst.
"""

import sys

from gluon_inception.cli import run
from gluon_inception.cli.train import parse_args
from gluon_inception.training import run_training

FINETUNE_DEFAULTS = [
    "--pretrained",  # alone: the most accurate registered entry; --pretrained NAME|PATH picks one
    "--optimizer", "sgd", "--lr", "0.01", "--lr-scaling", "none", "--backbone-lr-mult", "0.1",
    "--lr-schedule", "cosine", "--epochs", "10", "--batch-size", "32",
    "--checkpoints", "runs/finetune", "--prefix", "finetuned",
]  # fmt: skip


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    defaults = list(FINETUNE_DEFAULTS)
    if "--freeze-backbone" in argv:  # a frozen backbone has no learning rate to multiply
        del defaults[defaults.index("--backbone-lr-mult") : defaults.index("--backbone-lr-mult") + 2]
    cfg = parse_args(defaults + argv, prog="finetune.py")  # defaults < --recipe < your flags
    run_training(cfg)  # the engine of `gluon-inception train`, under horovodrun or in one process
    return 0


if __name__ == "__main__":
    sys.exit(run(main))  # errors -> one line and the documented exit status, as gluon-inception does
