"""Make ``import mxnet`` find the CUDA 11 libraries of the ``nvidia-*-cu11`` pip packages.

scripts/setup_gpu.sh copies this file into the virtual environment's site-packages as
``_gluon_inception_cuda.py`` next to a ``gluon_inception_cuda.pth`` that imports it at start-up.
It costs nothing until something imports ``mxnet``: then, once, it loads the libraries from the
packages' ``nvidia/<name>/lib`` folders with ``RTLD_GLOBAL``, so that libmxnet.so (which bundles
none of them) and cuDNN's own sub-libraries resolve against them without ``LD_LIBRARY_PATH``.
Remove both files to undo it.
"""
import ctypes
import glob
import os
import sys

PACKAGES = ("cuda_runtime", "cuda_nvrtc", "cublas", "cufft", "curand", "cusolver", "cusparse",
            "nvtx", "cudnn", "nccl")


def preload(site=None):
    """Load every library of the packages, retrying until no more load (dependency order)."""
    site = site or os.path.dirname(os.path.abspath(__file__))
    pending = []
    for package in PACKAGES:
        pending += sorted(glob.glob(os.path.join(site, "nvidia", package, "lib", "lib*.so*")))
    pending = [p for p in pending if not os.path.islink(p)]
    while pending:
        failed = []
        for path in pending:
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError:
                failed.append(path)
        if len(failed) == len(pending):
            break  # what is left cannot load; importing mxnet then names what is missing
        pending = failed


class _PreloadOnMXNet:
    """A meta-path entry that preloads the libraries the first time ``mxnet`` is imported."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "mxnet":
            sys.meta_path.remove(cls)
            preload()
        return None  # the ordinary finders import mxnet itself


if not any(getattr(entry, "__name__", "") == "_PreloadOnMXNet" for entry in sys.meta_path):
    sys.meta_path.insert(0, _PreloadOnMXNet)
