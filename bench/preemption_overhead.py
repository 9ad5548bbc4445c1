"""What preemption-safe training costs per step, against a training step of GoogLeNet.

    horovodrun -np 3 -H localhost:3 python bench/preemption_overhead.py --data DIR [--image-size 224]
    python bench/preemption_overhead.py --demo --rounds 2 --image-size 64      # a quick check

Measured in the same run, in alternating rounds (the machine may be shared):

- ``exchange``: the ranks' stop/save flags summed by an allreduce, started and read at once (the
  worst case: Horovod's negotiation latency);
- ``step+flags``: a training step followed by what the engine does at a step boundary: send this
  step's flags and wait for their sum (so that a signal stops every rank after the step it came in);
- ``seeding``: ``mx.random.seed`` and a ``numpy.random.RandomState`` per step (dropout and mixup
  draws that a mid-epoch resume can reproduce);
- ``skip``: reading one batch from the training iterator, which is what resuming after step k
  costs k times (``ImageRecordIter`` cannot seek);
- ``step``: one training step (forward, backward, allreduce, update) of GoogLeNet.

Prints one line per quantity with the median in ms and its ratio to a training step.
"""
import argparse
import statistics
import time

import numpy as np

from gluon_inception import dist as dist_module
from gluon_inception._compat import mx
from gluon_inception.data import DatasetSource
from gluon_inception.zoo.registry import get_model


def timed(func, repeat):
    start = time.perf_counter()
    for _ in range(repeat):
        func()
    return 1000 * (time.perf_counter() - start) / repeat


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a prepared dataset folder")
    parser.add_argument("--demo", action="store_true", help="the demo digits instead")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=50, help="exchanges and seedings per round")
    parser.add_argument("--steps", type=int, default=4, help="training steps (each kind) and skipped batches per round")
    args = parser.parse_args()
    d = dist_module.get()
    ctx = d.context()
    data = DatasetSource.open(args.data, demo=args.demo or not args.data, dist=d,
                              batch_size=args.batch_size, image_size=args.image_size, augment="inception")
    it = data.train_iter(0)
    batches = iter(it)
    net = get_model("googlenet", classes=data.num_classes, topology="gluoncv", ctx=ctx)
    d.broadcast_parameters(net.collect_params())
    net.hybridize(static_alloc=True, static_shape=True)
    params = net.collect_params()
    if d.hvd is not None:
        trainer = d.hvd.DistributedTrainer(params, "sgd", {"learning_rate": 0.01, "momentum": 0.9})
    else:
        trainer = mx.gluon.Trainer(params, "sgd", {"learning_rate": 0.01, "momentum": 0.9}, kvstore=None)
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()

    def next_batch():
        nonlocal batches
        try:
            return next(batches)
        except StopIteration:
            batches = iter(it)
            return next(batches)

    def step():
        batch = next_batch()
        x, y = batch.data[0].as_in_context(ctx), batch.label[0].as_in_context(ctx)
        if x.dtype == np.uint8:  # training batches finish their augmentation on the device, as in the engine
            x = data.device_augment(x)
        with mx.autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(x.shape[0])
        loss.wait_to_read()

    def exchange():
        d.allreduce_async([0.0, 0.0, 0.0, 0.0], name="bench_flags").result()

    def step_with_flags():
        step()
        d.allreduce_async([0.0, 0.0, 0.0, 0.0], name="bench_step_flags").result()

    counter = [0]

    def seeding():
        counter[0] += 1
        mx.random.seed(counter[0], ctx=ctx)
        np.random.RandomState(counter[0])

    def skip():
        next_batch().data[0].wait_to_read()

    step()  # warm up (graph, buffers)
    results = {"step": [], "step+flags": [], "exchange": [], "seeding": [], "skip": []}
    for _ in range(args.rounds):
        results["step"].append(timed(step, args.steps))
        results["step+flags"].append(timed(step_with_flags, args.steps))
        results["exchange"].append(timed(exchange, args.repeat))
        results["seeding"].append(timed(seeding, args.repeat))
        mx.nd.waitall()
        results["skip"].append(timed(skip, args.steps))
    if d.is_root:
        step_ms = statistics.median(results["step"])
        print("ranks %d, batch %d per rank, %d px, %d rounds (medians)" % (d.size, args.batch_size, args.image_size,
                                                                          args.rounds))
        for name, values in results.items():
            ms = statistics.median(values)
            print("%-10s %9.3f ms  %7.4f x step" % (name, ms, ms / step_ms))


if __name__ == "__main__":
    main()
