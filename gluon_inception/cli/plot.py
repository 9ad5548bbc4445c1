"""``gluon-inception plot LOG``: the chapter-style training figure of a run, as a PNG."""

from ..training.plot import plot_metrics


def configure_parser(parser):
    parser.add_argument("log", help="a PREFIX-metrics.jsonl written by training, or its checkpoint folder")
    parser.add_argument("-o", "--output", help="PNG to write (default: the log's path with .png)")
    parser.add_argument("--title", help="figure title")


def main(args):
    path = plot_metrics(args.log, args.output, args.title)
    print(path)
    return 0
