#!/usr/bin/env python
"""Fine-tune a pretrained GoogLeNet on your own folder of images.

    gluon-inception prepare my_photos data/my_photos --val-per-class 20
    python examples/finetune.py --data data/my_photos --epochs 10 --checkpoints runs/my_photos

Every layer but the classifier starts from ImageNet weights; the new classifier learns
``--head-lr-mult`` times faster than the rest. Each epoch ends with a normal checkpoint, so
``gluon-inception evaluate/predict/export --checkpoint runs/my_photos`` work on the result.
One process, on GPU 0 when there is one; see docs/tutorials/finetune.rst.
"""

import argparse
import dataclasses
import sys

from gluon_inception import googlenet
from gluon_inception._compat import mx
from gluon_inception.checkpoint import save_checkpoint
from gluon_inception.data import build_train_iter, build_val_iter, load_dataset
from gluon_inception.deploy.evaluate import evaluate_batches
from gluon_inception.deploy.metrics import MetricSums, batch_stats


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Fine-tune a pretrained GoogLeNet on a prepared dataset.")
    parser.add_argument("--data", required=True, help="dataset folder written by `gluon-inception prepare`")
    parser.add_argument(
        "--pretrained",
        default="true",
        help="'true' (the most accurate ImageNet entry), an entry name, or a weight file (default: true)",
    )
    parser.add_argument("--epochs", type=int, default=10, help="epochs to train (default: 10)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per step (default: 32)")
    parser.add_argument("--lr", type=float, default=0.001, help="SGD learning rate of the pretrained layers")
    parser.add_argument("--head-lr-mult", type=float, default=10.0, help="lr multiplier of the new classifier")
    parser.add_argument("--image-size", type=int, default=224, help="side of the square crop (default: 224)")
    parser.add_argument("--checkpoints", default="runs/finetune", help="checkpoint folder (default: runs/finetune)")
    parser.add_argument("--prefix", default="finetuned", help="checkpoint file prefix (default: finetuned)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    pretrained = True if args.pretrained.lower() == "true" else args.pretrained
    ctx = mx.gpu(0) if mx.context.num_gpus() else mx.cpu()

    # 1. data: the prepared dataset, normalised the way the pretrained weights expect.
    info = load_dataset(args.data)
    net = googlenet(pretrained=pretrained, classes=info.num_classes, ctx=ctx)
    pre = net.pretrained_cfg.preprocessing  # the weights' own, scaled to --image-size (256 for 224)
    resize = round(args.image_size * pre.resize / pre.crop_size)
    pre = dataclasses.replace(pre, crop_size=args.image_size, resize=resize)
    train = build_train_iter(info.split("train"), args.batch_size, pre.data_shape, preset="inception", mean=pre.mean,
                             std=pre.std)  # fmt: skip
    val = build_val_iter(info.split("val"), args.batch_size, preprocessing=pre)

    # 2. model and trainer: the new classifier learns faster than the pretrained layers.
    net.output.collect_params().setattr("lr_mult", args.head_lr_mult)
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": args.lr, "momentum": 0.9, "wd": 1e-4})
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    meta = {
        "model": {"name": "googlenet", "topology": net.topology, "classes": info.num_classes,
                  "aux_logits": False, "dropout": net.dropout_rate},
        "data": {"classes": info.classes, "root": info.root},
        "preprocessing": pre.to_dict(),
        "pretrained": net.pretrained_cfg.name,
    }  # fmt: skip

    # 3. loop: train an epoch, validate, write a checkpoint.
    for epoch in range(1, args.epochs + 1):
        sums = MetricSums()
        train.reset()
        for batch in train:
            data, label = batch.data[0].as_in_context(ctx), batch.label[0].as_in_context(ctx)
            with mx.autograd.record():
                logits = net(data)
                loss = loss_fn(logits, label)
            loss.backward()
            trainer.step(data.shape[0])
            sums.add(batch_stats(loss, logits, label).asnumpy())
        val.reset()
        t, v = sums.summary(), evaluate_batches(net, val, ctx)
        print(
            "epoch %d/%d  train loss %.4f top-1 %.2f%%  | val loss %.4f top-1 %.2f%% top-5 %.2f%%"
            % (epoch, args.epochs, t["loss"], 100 * t["top1"], v.cross_entropy, 100 * v.top1, 100 * v.top5)
        )
        meta.update(lr=trainer.learning_rate, metrics={"train": t, "val": v.to_dict()})
        paths = save_checkpoint(args.checkpoints, args.prefix, epoch, net, trainer, meta)
        print("checkpoint %s" % paths["params"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
