"""Run under horovodrun by test_horovod_sharding.py: every rank iterates its shards; counts are allreduced."""
import json
import sys

from gluon_inception import dist as dist_module
from gluon_inception.data import build_train_iter, build_val_iter


def main(rec, out):
    dist = dist_module.get()
    val = build_val_iter(rec, 3, (3, 12, 12), resize=12, mean=(0, 0, 0), dist=dist, num_threads=1)
    train = build_train_iter(rec, 3, (3, 12, 12), mean=(0, 0, 0), dist=dist, num_threads=1, seed=1,
                             random_resized_crop=False)
    result = {}
    for epoch in range(2):
        labels, batches = [], 0
        for batch in val:
            batches += 1
            real = val.batch_size - batch.pad
            labels.extend(batch.label[0].asnumpy()[:real].astype(int).tolist())
            # the training loop's allreduce: it would hang if a rank ran fewer batches than the others
            dist.allreduce_sum([real], name="val_step_%d_%d" % (epoch, batches))
        val.reset()
        train_batches = 0
        for batch in train:
            train_batches += 1
            dist.allreduce_sum([batch.label[0].shape[0]], name="train_step_%d_%d" % (epoch, train_batches))
        train.reset()
        histogram = [0.0] * 64
        for label in labels:
            histogram[label] += 1
        seen = dist.allreduce_sum(histogram, name="val_histogram_%d" % epoch)
        counts = dist.allreduce_sum([batches, batches ** 2, train_batches, train_batches ** 2, len(labels)],
                                    name="counts_%d" % epoch)
        result["epoch%d" % epoch] = {"histogram": seen.tolist(), "counts": counts.tolist()}
    if dist.is_root:
        result["size"] = dist.size
        with open(out, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
