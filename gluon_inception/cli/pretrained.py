"""``gluon-inception pretrained``: list, fetch, mirror and purge pretrained weights."""
import json
import os

from .. import weights as pretrained
from ..weights import store


def configure_parser(parser):
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = sub.add_parser("list", help="every registered entry with its accuracy, checksum and source")
    show.add_argument("--json", action="store_true", help="all metadata as JSON (what the docs table is made from)")
    show.add_argument("--markdown", action="store_true", help="the table of entries, in Markdown (e.g. for a README)")
    fetch = sub.add_parser("fetch", help="download and verify weights into the cache (e.g. before going offline)")
    fetch.add_argument(
        "names", nargs="*", metavar="NAME", help="entries to fetch (default: the one pretrained=True loads)"
    )
    fetch.add_argument(
        "--root", help="cache folder (default: $GLUON_INCEPTION_MODELS, $MXNET_HOME/models, ~/.mxnet/models)"
    )
    mirror = sub.add_parser(
        "mirror", help="download and verify weights into a folder laid out as a mirror (for nodes without internet)"
    )
    mirror.add_argument("folder", metavar="DIR", help="the mirror folder (e.g. on a shared file system)")
    mirror.add_argument("names", nargs="*", metavar="NAME", help="entries to put there (default: all registered)")
    mirror.add_argument("--root", help="cache folder to take copies from before downloading")
    purge = sub.add_parser("purge", help="delete cached weights of registered entries, and their lock files")
    purge.add_argument("names", nargs="*", metavar="NAME", help="entries to delete (default: all)")
    purge.add_argument("--root", help="cache folder")


def markdown_table(rows):
    """The table of entries in Markdown, made from :func:`gluon_inception.weights.list_pretrained` rows."""
    lines = [
        "| name | top-1 / top-5 | topology | file | checksum | preprocessing | licence |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        pre = row["preprocessing"]
        preprocessing = "resize %d, crop %d, mean %s, std %s (0-255)%s" % (
            pre["resize"],
            pre["crop_size"],
            tuple(round(v, 3) for v in pre["mean"]),
            tuple(round(v, 3) for v in pre["std"]),
            "; re-scaled inside the network" if row["input_transform"] else "",
        )
        lines.append(
            "| `%s`%s | %s / %s | `%s` | `%s` | `%s` | %s | %s |"
            % (
                row["name"],
                " (default)" if row["default"] else "",
                row["top1"],
                row["top5"],
                row["topology"],
                row["file_name"],
                row["checksum"],
                preprocessing,
                row["license"],
            )
        )
    return "\n".join(lines)


def _short_checksum(checksum):
    if not checksum:
        return "none"
    kind, _, value = checksum.partition(":")
    return "%s:%s" % (kind, value[:12] + ("..." if len(value) > 12 else ""))


def main(args):


    if args.action == "list":
        rows = pretrained.list_pretrained()
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        if args.markdown:
            print(markdown_table(rows))
            return 0
        print("%-28s %-11s %6s %6s  %-22s %s" % ("name", "topology", "top1", "top5", "checksum", "file"))
        for row in rows:
            print(
                "%-28s %-11s %6s %6s  %-22s %s%s"
                % (
                    row["name"],
                    row["topology"],
                    row["top1"],
                    row["top5"],
                    _short_checksum(row["checksum"]),
                    row["file_name"],
                    "  (default)" if row["default"] else "",
                )
            )
        print("cache: %s" % store.cache_root())
        return 0
    if args.action == "fetch":
        names = args.names or [pretrained.default_pretrained().name]
        for name in names:
            print(store.fetch(pretrained.get_pretrained(name), root=args.root))
        return 0
    if args.action == "mirror":
        for name in args.names or [row["name"] for row in pretrained.list_pretrained()]:
            entry = pretrained.get_pretrained(name)
            print("%-28s %s" % (name, store.mirror(entry, args.folder, root=args.root)))
        print(
            "mirror ready. On compute nodes:\n  export %s=%s\n  python -c 'from gluon_inception import "
            "googlenet; googlenet(pretrained=True)'" % (store.ENV_MIRRORS, os.path.abspath(args.folder))
        )
        return 0
    for path in pretrained.purge(root=args.root, names=args.names or None):
        print("removed %s" % path)
    return 0
