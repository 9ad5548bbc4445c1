"""Prepare ILSVRC2012 (or any folder-per-class image tree) for training.

    python examples/prepare_imagenet.py ILSVRC/Data/CLS-LOC/train data/imagenet \\
        --val-dir ILSVRC/Data/CLS-LOC/val --val-labels LOC_val_solution.csv

takes the same options as ``gluon-inception prepare`` (see ``--help``). The val split (50 images
per class) is carved out of the training images and the official validation set becomes the test
split, as in the book chapter. ``--demo OUTPUT`` builds the embedded digits dataset instead.
"""
import sys

from gluon_inception.cli import main

if __name__ == "__main__":
    sys.exit(main(["prepare"] + sys.argv[1:]))
