"""The peer side of bench/data_pipeline.py: a PIL + torchvision-transforms DataLoader.

Runs in the torch environment (GluonCV and torch >= 2 cannot share one), started by
data_pipeline.py as a subprocess, and prints one JSON line with its throughput. It applies the
same augmentation as our "inception" preset: random resized crop (8-100% of the area, aspect
3/4..4/3), horizontal flip, brightness/contrast/saturation jitter 0.4, AlexNet-style PCA lighting
noise 0.1, mean/std normalisation, and delivers float32 NCHW batches.
"""
import argparse
import json
import os
import time

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

# ImageNet RGB eigenvalues/eigenvectors of the pixel covariance (0-1 scale), as used for PCA
# lighting noise since AlexNet; the same constants MXNet's pca_noise uses on the 0-255 scale.
EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
EIGVEC = torch.tensor([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]])


class Lighting:
    def __init__(self, alphastd):
        self.alphastd = alphastd

    def __call__(self, tensor):
        alpha = torch.randn(3) * self.alphastd
        rgb = EIGVEC @ (alpha * EIGVAL)
        return tensor + rgb.view(3, 1, 1)


def pin(cores):
    os.sched_setaffinity(0, set(range(cores)))
    torch.set_num_threads(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--cores", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--images", type=int, required=True, help="images to time (after one warm-up batch)")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    pin(args.cores)
    transform = transforms.Compose([
        transforms.RandomResizedCrop(args.crop, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)),
        transforms.RandomHorizontalFlip(),
        transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4),
        transforms.ToTensor(),
        Lighting(0.1),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    dataset = datasets.ImageFolder(args.folder, transform=transform)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.cores, drop_last=True,
                        persistent_workers=True, worker_init_fn=lambda _: torch.set_num_threads(1), prefetch_factor=4)
    results = []
    for _ in range(args.rounds):
        seen, start = 0, None
        while start is None or seen < args.images:
            for images, _labels in loader:
                assert images.dtype == torch.float32 and images.shape[1:] == (3, args.crop, args.crop)
                if start is None:  # the first batch pays for worker start-up: not timed
                    start = time.perf_counter()
                    continue
                seen += images.shape[0]
                if seen >= args.images:
                    break
        results.append(seen / (time.perf_counter() - start))
    print(json.dumps({"images_per_s": results, "torch": torch.__version__,
                      "torchvision": __import__("torchvision").__version__}))


if __name__ == "__main__":
    main()
