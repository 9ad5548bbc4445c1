"""``gluon-inception convert``: turn GluonCV or torchvision GoogLeNet weights into ours."""
import json

from ..weights.convert import convert_file, metadata_path


def configure_parser(parser):
    parser.add_argument(
        "--from",
        dest="source_format",
        required=True,
        choices=("gluoncv", "torchvision"),
        help="format of SRC: GluonCV .params (or its published .zip), torchvision state_dict .pth",
    )
    parser.add_argument("src", metavar="SRC", help="the weight file to convert")
    parser.add_argument("out", metavar="OUT", help="where to write our .params (a .json describing it goes next to it)")
    parser.add_argument("--json", action="store_true", help="print the metadata as JSON")


def main(args):


    meta = convert_file(args.src, args.out, args.source_format)
    if args.json:
        print(json.dumps(meta, indent=2))
        return 0
    model = meta["model"]
    print(
        "wrote %s (%s) and %s"
        % (args.out, "topology=%r, classes=%d" % (model["topology"], model["classes"]), metadata_path(args.out))
    )
    print("sha256 %s" % meta["sha256"])
    print("load it with googlenet(pretrained=%r); publish it with its sha256 in a PretrainedEntry" % args.out)
    return 0
