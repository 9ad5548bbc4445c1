"""``gluon-inception info``: what this installation has."""
import json
import platform
from importlib import metadata

from .. import gpu
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
    features = mx.runtime.Features()
    info["gpu"] = gpu_status(
        {name: features.is_enabled(name) for name in ("CUDA", "CUDNN", "NCCL")},
        _cuda_wheel(), gpu.query_gpus, _horovod_nccl(), mx.context.num_gpus(),
    )
    return info


def _cuda_wheel():
    """``"mxnet-cu112 1.9.1"`` when MXNet came from that pip wheel, else None."""
    name = gpu.WHEEL.split("==")[0]
    try:
        return "%s %s" % (name, metadata.version(name))
    except metadata.PackageNotFoundError:
        return None


def _horovod_nccl():
    try:
        from horovod.mxnet import nccl_built
    except ImportError:
        return None
    return bool(nccl_built())


def gpu_status(features, wheel, query_gpus, horovod_nccl, visible):
    """What matters on a GPU host, as a dict whose ``summary`` lines say it plainly.

    Parameters
    ----------
    features : dict
        MXNet build features ``{"CUDA": bool, "CUDNN": bool, "NCCL": bool}``.
    wheel : str or None
        The pip CUDA wheel MXNet came from (``"mxnet-cu112 1.9.1"``), None for other builds.
    query_gpus : callable
        Returns the :class:`gluon_inception.gpu.Gpu` list or raises ``GpuUnsupported``.
    horovod_nccl : bool or None
        Whether Horovod was built with NCCL (None: no Horovod with MXNet support).
    visible : int
        The GPUs MXNet sees (``mx.context.num_gpus()``).
    """
    status = {"features": features, "wheel": wheel, "visible": visible, "driver": None,
              "gpus": [], "horovod_nccl": horovod_nccl, "summary": []}
    say = status["summary"].append
    on = {True: "yes", False: "no", None: "no Horovod"}
    say("MXNet build: CUDA %s, cuDNN %s, NCCL %s" % tuple(on[features[k]] for k in ("CUDA", "CUDNN", "NCCL")))
    if wheel:
        say("%s holds machine code for sm_%s (compute capability %s)"
            % (wheel, ", sm_".join(map(str, gpu.WHEEL_ARCHS)), gpu.SUPPORTED_RANGE))
    try:
        gpus = query_gpus()
    except gpu.GpuUnsupported as error:
        gpus = []
        say("no usable NVIDIA GPU: %s" % (error if features["CUDA"] else "no driver or GPU found"))
    if gpus:
        status["driver"] = gpu.version_text(gpus[0].driver)
        say("driver %s" % status["driver"])
    for g in gpus:
        arch = gpu.wheel_arch_for(g.compute_capability)
        runs = ("runs the wheel's sm_%d code" % arch) if arch else (
            "cannot run the pip wheel (%s only)" % gpu.SUPPORTED_RANGE)
        if wheel is None and features["CUDA"]:
            runs = "(MXNet not from the pip wheel: its architectures are unknown here)"
        status["gpus"].append({"index": g.index, "name": g.name, "compute_capability": g.cc,
                               "runs": bool(arch) if wheel else None})
        say("GPU %d: %s, compute capability %s, %s" % (g.index, g.name, g.cc, runs))
    say("Horovod with NCCL: %s" % on[horovod_nccl])
    if not features["CUDA"]:
        say("this is a CPU-only installation: training and inference run on the CPU "
            "(for GPUs: GPU=1 bash scripts/setup.sh on a host with a supported NVIDIA GPU)")
    elif gpus and visible == 0:
        say("MXNet sees no GPU although nvidia-smi lists %d: check CUDA_VISIBLE_DEVICES and that the "
            "CUDA libraries load (import mxnet in this environment)" % len(gpus))
    return status


def main(args):
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        gpu_lines = info.pop("gpu")["summary"]
        for key, value in info.items():
            print("%-16s %s" % (key, value))
        for line in gpu_lines:
            print("%-16s %s" % ("gpu", line))
    return 0
