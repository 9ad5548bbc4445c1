"""``gluon-inception check``: compare a prepared dataset's record files with the checksums ``prepare`` recorded."""
import sys

from ..data import RecordFileError, damaged_records, load_dataset
from ..data.dataset import damage_message


def configure_parser(parser):
    parser.add_argument("dataset", metavar="DATASET", help="folder written by `gluon-inception prepare`")
    parser.add_argument("--split", action="append", metavar="NAME",
                        help="check only this split (train, val or test; may be repeated; default: all)")


def main(args):
    try:
        info = load_dataset(args.dataset)
        names = args.split or info.split_names
        for name in names:
            info.split(name)  # an unknown split is an error before anything is read
    except (OSError, ValueError) as err:
        print("error: %s" % err, file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        split = info.split(name)
        try:
            bad = damaged_records(split)
        except (RecordFileError, OSError) as err:
            print("error: %s" % err, file=sys.stderr)
            failed += 1
            continue
        if bad:
            print("error: %s" % RecordFileError(split.rec, damage_message(bad)), file=sys.stderr)
            failed += 1
        else:
            print("%s: %d records match their checksums" % (name, split.count))
    return 1 if failed else 0
