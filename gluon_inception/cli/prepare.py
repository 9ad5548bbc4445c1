"""``gluon-inception prepare``: image folders (or the embedded demo) -> record files + dataset.json."""
import logging

from ..data import load_dataset, prepare_dataset, prepare_demo
from ..errors import UsageError


def configure_parser(parser):
    parser.usage = "%(prog)s TRAIN_DIR OUTPUT [options]  |  %(prog)s --demo [OUTPUT]"
    parser.add_argument("paths", nargs="*", metavar="TRAIN_DIR OUTPUT",
                        help="TRAIN_DIR: folder with one sub-folder of images per class (ILSVRC2012 train/); "
                             "OUTPUT: folder to write the record files and dataset.json to")
    parser.add_argument("--demo", action="store_true",
                        help="build the embedded demo dataset (scikit-learn digits, no download) into OUTPUT "
                             "(default: $MXNET_HOME/datasets/gluon-inception-demo, MXNET_HOME defaulting to ~/.mxnet)")
    parser.add_argument("--val-dir", help="the official validation images (becomes the test split): a folder per "
                                          "class, or a flat folder with --val-labels")
    parser.add_argument("--val-labels", help="ground truth for a flat --val-dir: LOC_val_solution.csv "
                                             "(ImageId,PredictionString)")
    parser.add_argument("--val-per-class", type=int, default=50,
                        help="training images per class held out as the val split (default 50; 0 = none)")
    parser.add_argument("--train-per-class", type=int, default=0, help="cap on train images per class (0 = all)")
    parser.add_argument("--test-per-class", type=int, default=0, help="cap on test images per class (0 = all)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="shorter side of the stored images (default 256; 64 for --demo)")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality of the stored images (default 95)")
    parser.add_argument("--workers", type=int, default=None, help="encoding processes (default: all cores)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split assignment (default 0)")
    parser.add_argument("--stats-images", type=int, default=50000,
                        help="training images decoded for the mean/std (default 50000; 0 = all)")
    parser.add_argument("--im2rec", help="an im2rec.py to use instead of the one shipped with MXNet")
    parser.add_argument("--overwrite", action="store_true",
                        help="rebuild splits that were prepared with other images or settings")
    parser.add_argument("--quiet", action="store_true", help="print only warnings and the summary")


def main(args):

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    if args.demo:
        if len(args.paths) > 1:
            raise UsageError("--demo builds its own images; give at most OUTPUT")
        output = args.paths[0] if args.paths else None
        info = load_dataset(prepare_demo(output, image_size=args.image_size or 64, workers=args.workers,
                                         seed=args.seed))
    else:
        if len(args.paths) != 2:
            raise UsageError("give TRAIN_DIR and OUTPUT (or --demo [OUTPUT])")
        train_dir, output = args.paths
        info = prepare_dataset(
            train_dir, output, val_dir=args.val_dir, val_labels=args.val_labels,
            val_per_class=args.val_per_class, train_per_class=args.train_per_class,
            test_per_class=args.test_per_class, image_size=args.image_size or 256, quality=args.quality,
            workers=args.workers, seed=args.seed, stats_images=args.stats_images, im2rec=args.im2rec,
            overwrite=args.overwrite,
        )
    print("dataset   %s" % info.root)
    print("classes   %d" % info.num_classes)
    for name in info.split_names:
        split = info.split(name)
        print("%-9s %d images  %s" % (name, split.count, split.rec))
    print("mean RGB  %s" % " ".join("%.2f" % v for v in info.mean))
    print("std RGB   %s" % " ".join("%.2f" % v for v in info.std))
    if info.meta.get("skipped"):
        print("skipped   %d unreadable image(s), listed in %s" % (info.meta["skipped"], info.skipped_report))
    return 0
