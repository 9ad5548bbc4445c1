"""The peer side of bench/data_pipeline.py: torchvision pipelines in a DataLoader, one epoch timed.

Runs in the torch environment (GluonCV and torch >= 2 cannot share one), started by
data_pipeline.py as a subprocess, pinned to the same cores, and prints one JSON line. Modes:

- ``v2``: ``torchvision.io.decode_jpeg`` to uint8 tensors, then ``transforms.v2`` on them: random
  resized crop (8-100 % of the area, aspect 3/4..4/3, bilinear), flip, brightness/contrast/
  saturation jitter 0.4, then float, AlexNet PCA lighting 0.1 and mean/std: float32 batches;
- ``v2-uint8``: the same decode, crop and flip only: uint8 batches, the rest left to the GPU
  (the split of our ``on_device`` pipeline);
- ``pil``: PIL decode and the classic ``transforms`` doing the full list of ``v2``.

One untimed warm-up epoch (workers start, files enter the page cache), then one timed epoch of
every image; the CPU time of the main process and of every worker is measured over the same epoch.
"""
import argparse
import json
import os
import time

import torch
import torchvision
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms
from torchvision.io import ImageReadMode, decode_jpeg, read_file
from torchvision.transforms import v2

# ImageNet RGB eigenvalues/eigenvectors of the pixel covariance (0-1 scale), AlexNet's PCA
# lighting; the same constants MXNet's pca_noise uses on the 0-255 scale.
EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
EIGVEC = torch.tensor([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]])
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


class Lighting(torch.nn.Module):
    def __init__(self, alphastd):
        super().__init__()
        self.alphastd = alphastd

    def forward(self, tensor):
        alpha = torch.randn(3) * self.alphastd
        return tensor + (EIGVEC @ (alpha * EIGVAL)).view(3, 1, 1)


class JpegFiles(Dataset):
    """(uint8 CHW tensor decoded by torchvision.io.decode_jpeg, label) of an ImageFolder tree."""

    def __init__(self, folder, transform):
        self.samples = datasets.ImageFolder(folder).samples
        self.transform = transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        path, label = self.samples[i]
        return self.transform(decode_jpeg(read_file(path), mode=ImageReadMode.RGB)), label


def build(mode, folder, crop):
    crop_args = dict(size=crop, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3))
    jitter = dict(brightness=0.4, contrast=0.4, saturation=0.4)
    if mode == "pil":
        return datasets.ImageFolder(folder, transform=transforms.Compose([
            transforms.RandomResizedCrop(**crop_args), transforms.RandomHorizontalFlip(),
            transforms.ColorJitter(**jitter), transforms.ToTensor(), Lighting(0.1), transforms.Normalize(MEAN, STD),
        ]))  # fmt: skip
    geometry = [v2.RandomResizedCrop(**crop_args, antialias=False), v2.RandomHorizontalFlip()]
    if mode == "v2-uint8":
        return JpegFiles(folder, v2.Compose(geometry))
    return JpegFiles(folder, v2.Compose(geometry + [
        v2.ColorJitter(**jitter), v2.ToDtype(torch.float32, scale=True), Lighting(0.1), v2.Normalize(MEAN, STD),
    ]))  # fmt: skip


def cpu_seconds(pids):
    """User + system CPU seconds of the processes ``pids`` (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--mode", choices=("v2", "v2-uint8", "pil"), required=True)
    parser.add_argument("--cores", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--crop", type=int, default=224)
    args = parser.parse_args()
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cores]))
    torch.set_num_threads(1)
    dataset = build(args.mode, args.folder, args.crop)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.cores, drop_last=True,
                        persistent_workers=True, prefetch_factor=4, worker_init_fn=lambda _: torch.set_num_threads(1))
    dtype = torch.uint8 if args.mode == "v2-uint8" else torch.float32
    for _ in loader:  # warm-up epoch: not timed
        pass
    it = iter(loader)
    pids = [os.getpid()] + [w.pid for w in it._workers]
    cpu0, start, seen = cpu_seconds(pids), time.perf_counter(), 0
    for images, _labels in it:
        assert images.dtype == dtype and images.shape[1:] == (3, args.crop, args.crop)
        seen += images.shape[0]
    wall, cpu = time.perf_counter() - start, cpu_seconds(pids) - cpu0
    print(json.dumps({"images": seen, "wall": wall, "cpu": cpu, "torch": torch.__version__,
                      "torchvision": torchvision.__version__}))


if __name__ == "__main__":
    main()
