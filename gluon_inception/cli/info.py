"""``gluon-inception info``: what this installation has."""
import json
import platform

from .._compat import mx, np
from .._version import __version__
from ..zoo import list_models


def configure_parser(parser):
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def collect():
    """Versions of the stack and the devices MXNet sees, as a dict."""
    info = {
        "gluon_inception": __version__,
        "python": platform.python_version(),
        "mxnet": mx.__version__,
        "numpy": np.__version__,
        "gpus": mx.context.num_gpus(),
        "models": list_models(),
    }
    try:
        import horovod

        info["horovod"] = horovod.__version__
    except ImportError:
        info["horovod"] = None
    return info


def main(args):
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print("%-16s %s" % (key, value))
    return 0
