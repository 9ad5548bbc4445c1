#!/usr/bin/env python
"""Train on the demo digits with the demo recipe: our GoogLeNet and GluonCV's in our loop, torchvision's in PyTorch.

All three see the same splits (the demo's .lst files), the same augmentation (random 56-pixel
crop of the 64-pixel images, rotation up to 15 degrees, shear up to 0.1, no mirror, mean
subtraction), Adam with the demo recipe's learning rate, cosine schedule and weight decay, the
same global batch and the same number of steps. Reported: val and test top-1 after the last
epoch, the training time (epochs only) and the wall time of the whole process.

    python bench/train_demo.py                       # 1 process each, global batch 96
    python bench/train_demo.py --ranks 3 --epochs 12 # ours via horovodrun -np 3 (the README demo)

GluonCV's googlenet ends in a fixed 7x7 average pool that only fits 224-pixel inputs; here it is
swapped for a global average pool so that it runs at 56 pixels like the others. torchvision runs
in its own interpreter (``--torch-python``) as a plain single-process PyTorch loop.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_TORCH_PYTHON = os.environ.get("TORCH_PYTHON", "/work/venv-torch/bin/python")


def _demo_settings():
    with open(os.path.join(ROOT, "gluon_inception", "training", "recipes", "demo.json")) as f:
        return json.load(f)["settings"]


# -- MXNet workers (ours and GluonCV's network in our engine) ------------------------------------
def gluoncv_googlenet(classes, ctx):
    """GluonCV's googlenet with a global average pool instead of its fixed 7x7 one."""
    from gluoncv.model_zoo import get_model

    from gluon_inception._compat import mx

    net = get_model("googlenet", classes=classes)
    net.head.register_child(mx.gluon.nn.GlobalAvgPool2D(), "0")
    net.initialize(mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2), ctx=ctx)
    return net


def mxnet_worker(args):
    sys.path.insert(0, ROOT)
    from gluon_inception.data import load_dataset
    from gluon_inception.training import TrainConfig, Training
    from gluon_inception.training.logs import metrics_log_path, read_metrics_log

    settings = dict(_demo_settings())
    settings.update(epochs=args.epochs, batch_size=args.batch, progress=False, final_eval="test", seed=args.seed)
    cfg = TrainConfig(demo=True, demo_root=args.demo_root, checkpoints=args.output, **settings).finalize()
    start = time.time()
    with Training(cfg) as run:
        net = None
        if args.worker == "gluoncv":
            net = gluoncv_googlenet(load_dataset(args.demo_root).num_classes, run.ctx)
        test = run.run(net=net)
        if run.dist.is_root:
            epochs, _ = read_metrics_log(metrics_log_path(cfg.checkpoints, cfg.prefix))
            print(
                "RESULT " + json.dumps(
                    {"val_top1": epochs[-1]["val_top1"], "test_top1": test["top1"],
                     "train_time": sum(r["time"] for r in epochs), "run_time": time.time() - start,
                     "ranks": run.dist.size, "batch": cfg.batch_size}
                ),
                flush=True,
            )  # fmt: skip
    return 0


# -- PyTorch worker ------------------------------------------------------------------------------
def torch_worker(args):
    import numpy as np
    import torch
    import torchvision
    from PIL import Image
    from torchvision import transforms

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    settings = _demo_settings()
    with open(os.path.join(args.demo_root, "dataset.json")) as f:
        meta = json.load(f)
    crop = settings["image_size"]
    mean = torch.tensor(meta["mean"]).view(3, 1, 1)
    image_root = meta["image_root"]

    def read_list(split):
        items = []
        with open(os.path.join(args.demo_root, meta["splits"][split]["lst"])) as f:
            for line in f:
                _, label, path = line.rstrip("\n").split("\t")
                items.append((os.path.join(image_root, path), int(float(label))))
        return items

    # The "chapter" preset of ImageRecordIter: rotate/shear, random crop, mean subtraction (std 1).
    to_input = transforms.Compose([transforms.PILToTensor(), transforms.Lambda(lambda t: t.float() - mean)])
    train_tf = transforms.Compose([
        transforms.RandomAffine(degrees=15, shear=math.degrees(math.atan(0.1))),
        transforms.RandomCrop(crop),
        to_input,
    ])  # fmt: skip
    eval_tf = transforms.Compose([transforms.Resize(round(crop / 0.875)), transforms.CenterCrop(crop), to_input])

    class Split(torch.utils.data.Dataset):
        def __init__(self, items, transform):
            self.items, self.transform = items, transform

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            path, label = self.items[i]
            return self.transform(Image.open(path).convert("RGB")), label

    global_batch = args.batch * args.ranks
    train_loader = torch.utils.data.DataLoader(
        Split(read_list("train"), train_tf), batch_size=global_batch, shuffle=True, drop_last=True, num_workers=1
    )
    eval_loaders = {
        split: torch.utils.data.DataLoader(Split(read_list(split), eval_tf), batch_size=global_batch, num_workers=1)
        for split in ("val", "test")
    }
    net = torchvision.models.googlenet(
        num_classes=meta["num_classes"], aux_logits=False, init_weights=True, transform_input=False, dropout=0.4
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=settings["lr"], weight_decay=settings["wd"])
    total = args.epochs * len(train_loader)
    # GluonCV's cosine: base * (1 + cos(pi * t / (T - 1))) / 2 at step t.
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda t: (1 + math.cos(math.pi * min(t, total - 1) / max(1, total - 1))) / 2
    )
    loss_fn = torch.nn.CrossEntropyLoss()

    def evaluate(split):
        net.eval()
        hits = count = 0
        with torch.no_grad():
            for x, y in eval_loaders[split]:
                hits += (net(x).argmax(1) == y).sum().item()
                count += len(y)
        return hits / count

    start = time.time()
    train_time = 0.0
    for epoch in range(args.epochs):
        net.train()
        t0 = time.time()
        for x, y in train_loader:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.backward()
            optimizer.step()
            schedule.step()
        train_time += time.time() - t0
        val = evaluate("val")
        print("torch epoch %d/%d loss %.4f val top-1 %.2f%%" % (epoch + 1, args.epochs, loss.item(), 100 * val))
    test = evaluate("test")
    print(
        "RESULT " + json.dumps(
            {"val_top1": val, "test_top1": test, "train_time": train_time, "run_time": time.time() - start,
             "ranks": 1, "batch": global_batch, "threads": torch.get_num_threads()}
        ),
        flush=True,
    )  # fmt: skip
    return 0


# -- driver --------------------------------------------------------------------------------------
def _launch(args, worker, python, output):
    cmd = [python, os.path.abspath(__file__), "--worker", worker, "--epochs", str(args.epochs), "--batch",
           str(args.batch), "--ranks", str(args.ranks), "--demo-root", args.demo_root, "--output", output,
           "--seed", str(args.seed)]  # fmt: skip
    if worker != "torch" and args.ranks > 1:
        horovodrun = shutil.which("horovodrun") or os.path.join(os.path.dirname(sys.executable), "horovodrun")
        cmd = [horovodrun, "-np", str(args.ranks), "-H", "localhost:%d" % args.ranks] + cmd
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.time() - start
    if proc.returncode != 0:
        raise SystemExit("%s failed:\n%s\n%s" % (worker, proc.stdout[-3000:], proc.stderr[-3000:]))
    line = [ln for ln in proc.stdout.splitlines() if "RESULT " in ln][-1]
    result = json.loads(line.split("RESULT ", 1)[1])
    result["wall"] = wall
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=_demo_settings()["epochs"])
    parser.add_argument("--ranks", type=int, default=1, help="Horovod ranks for our loop (torchvision: 1 process)")
    parser.add_argument("--batch", type=int, default=None, help="per-rank batch (default: 96 / ranks)")
    parser.add_argument("--demo-root", default=None, help="demo dataset folder (built if missing)")
    parser.add_argument("--torch-python", default=DEFAULT_TORCH_PYTHON)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("ours", "gluoncv", "torch"), action="append", help="run only these")
    parser.add_argument("--worker", choices=("ours", "gluoncv", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.batch is None:
        args.batch = 96 // args.ranks
    if args.worker == "torch":
        return torch_worker(args)
    if args.worker:
        return mxnet_worker(args)

    sys.path.insert(0, ROOT)
    from gluon_inception.data import default_demo_root, prepare_demo

    args.demo_root = prepare_demo(args.demo_root or default_demo_root())
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-train-demo-") as tmp:
        for worker, label, python in (
            ("ours", "our GoogLeNet (paper topology), our loop", sys.executable),
            ("gluoncv", "GluonCV googlenet (global pool), our loop", sys.executable),
            ("torch", "torchvision googlenet, plain PyTorch loop", args.torch_python),
        ):
            if args.only and worker not in args.only:
                continue
            if worker == "torch" and not os.path.isfile(python):
                print("skipping torchvision: no interpreter at %s" % python, file=sys.stderr)
                continue
            result = _launch(args, worker, python, os.path.join(tmp, worker))
            rows.append((label, result))
            print("%-45s val %.2f%% test %.2f%% train %.0f s wall %.0f s" % (
                label, 100 * result["val_top1"], 100 * result["test_top1"], result["train_time"], result["wall"]),
                flush=True)  # fmt: skip
    print()
    print("demo digits, %d epochs, global batch %d, Adam lr %g cosine; os.cpu_count() = %s"
          % (args.epochs, args.batch * args.ranks, _demo_settings()["lr"], os.cpu_count()))  # fmt: skip
    print("| network and loop | processes | val top-1 | test top-1 | training time | wall time |")
    print("|---|---|---|---|---|---|")
    for label, r in rows:
        print("| %s | %d | %.2f%% | %.2f%% | %.0f s | %.0f s |" % (
            label, r["ranks"], 100 * r["val_top1"], 100 * r["test_top1"], r["train_time"], r["wall"]))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
