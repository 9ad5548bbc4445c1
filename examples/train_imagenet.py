#!/usr/bin/env python
"""Train GoogLeNet on ImageNet (or on the embedded demo digits) with Horovod.

    horovodrun -np 3 -H localhost:3 python examples/train_imagenet.py --optimizer adam --demo
    horovodrun -np 4 python examples/train_imagenet.py --recipe recommended --data data/imagenet
    python examples/train_imagenet.py --data data/imagenet --recipe chapter-adam \\
        --checkpoints runs/chapter --prefix googlenet --start-epoch 30 --lr 1e-4

`gluon-inception train` takes the same flags (`--help` lists them, `--list-recipes` the recipes)
and runs the same stages through Training.run(). They are spelled out here, one method of
gluon_inception.training.Training each, to show the path of a run; Training.train_step is the
path of one batch.
"""

import sys

from gluon_inception import training
from gluon_inception.cli import run
from gluon_inception.cli.train import parse_args


def main(argv=None):
    cfg = parse_args(argv, prog="train_imagenet.py")  # defaults < --recipe < flags

    # 1. init: Horovod ranks (or one process), logs on rank 0, the checkpoint to resume from.
    with training.Training(cfg) as run:
        # 2. data: every rank reads its own shard of the record files, same number of steps each.
        run.open_data()
        # 3. model: GoogLeNet initialised, rank 0's weights broadcast to all ranks, hybridized.
        run.build_model()
        # 4. trainer: hvd.DistributedTrainer averages the gradients; the lr follows the schedule.
        run.build_trainer()
        run.restore()  # --resume / --start-epoch N [--lr]: weights and optimizer state on every rank

        # 5. loop: per batch data, forward, loss, backward, allreduce + update (run.train_step);
        #    metrics summed over ranks.
        for epoch in run.epochs():
            train_metrics = run.train_epoch(epoch)  # stops every rank on a NaN/inf loss or a SIGTERM
            val_metrics = run.validate(epoch)  # every val image counted once over all ranks
            # 6. checkpoint: rank 0 logs the epoch and writes params, states, json (atomically).
            run.end_epoch(epoch, train_metrics, val_metrics)

        run.final_evaluation()  # top-1 / top-5 on the test split (val when there is none)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))  # errors -> one line and the documented exit status, as gluon-inception does
