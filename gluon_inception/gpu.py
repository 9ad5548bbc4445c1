"""Which NVIDIA GPUs the pip MXNet CUDA wheel runs on, and what this host has.

Standard library only: ``scripts/setup_gpu.sh`` runs this file (``python gpu.py preflight``)
before MXNet is installed, and ``gluon-inception info`` imports it.

The facts behind the numbers: ``mxnet-cu112==1.9.1`` (like ``mxnet-cu117``, the last CUDA wheel on
the registry) holds machine code for sm_50, 60, 70, 80 and 86 and no PTX. Machine code for sm_XY
runs on compute capability X.Z with Z >= Y, so 5.0 to 8.9 (Maxwell to Ada) can run it; 9.0 and
later (Hopper, Blackwell) cannot ("no kernel image is available"), nor can anything before 5.0.
"""
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

WHEEL = "mxnet-cu112==1.9.1"
#: Architectures (sm_XY as XY) with machine code in the wheel's libmxnet.so; it carries no PTX.
WHEEL_ARCHS = (50, 60, 70, 80, 86)
SUPPORTED_RANGE = "5.0-8.9"
#: CUDA 11 minor-version compatibility: the oldest driver the CUDA 11 runtime libraries accept.
MIN_DRIVER = (450, 80, 2)
#: The driver of CUDA 11.8, whose runtime libraries (NVRTC among them) the pip packages supply.
FULL_DRIVER = (520, 61, 5)
#: CUDA 11 runtime libraries from pip that the wheel loads (it bundles none of them).
CUDA_PACKAGES = (
    "nvidia-cuda-runtime-cu11",
    "nvidia-cuda-nvrtc-cu11",
    "nvidia-cublas-cu11",
    "nvidia-cufft-cu11",
    "nvidia-cusolver-cu11",
    "nvidia-curand-cu11",
    "nvidia-cusparse-cu11",
    "nvidia-nvtx-cu11",
    "nvidia-cudnn-cu11==8.9.*",
    "nvidia-nccl-cu11",
)
WHAT_TO_DO = (
    "Use the CPU build (bash scripts/setup.sh without GPU=1), or build MXNet 1.9.1 from source "
    "with CUDA_ARCH set for this GPU (docs/installation.rst, GPU support)."
)


class GpuUnsupported(Exception):
    """This host cannot run the pip MXNet CUDA wheel; the message says why and what to do."""


@dataclass(frozen=True)
class Gpu:
    """One GPU as ``nvidia-smi`` reports it."""

    index: int
    name: str
    compute_capability: tuple
    driver: tuple

    @property
    def cc(self):
        """The compute capability as text, e.g. ``"8.6"``."""
        return "%d.%d" % self.compute_capability


def parse_version(text):
    """``"535.104.05"`` -> ``(535, 104, 5)``."""
    return tuple(int(part) for part in re.findall(r"\d+", text))


def query_gpus(run=subprocess.run):
    """The GPUs ``nvidia-smi`` lists, with their compute capability and the driver version.

    Raises
    ------
    GpuUnsupported
        When there is no ``nvidia-smi``, it cannot reach a driver, or the driver is too old to
        report compute capabilities.
    """
    if shutil.which("nvidia-smi") is None:
        raise GpuUnsupported(
            "no NVIDIA driver: nvidia-smi is not on PATH. The CUDA build of MXNet needs the "
            "driver's libcuda.so.1 (driver >= %s). Install the NVIDIA driver, or use the CPU "
            "build (bash scripts/setup.sh without GPU=1)." % version_text(MIN_DRIVER)
        )
    query = ["nvidia-smi", "--query-gpu=index,name,compute_cap,driver_version",
             "--format=csv,noheader"]
    result = run(query, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    if result.returncode != 0:
        first = (result.stdout.strip().splitlines() or ["(no output)"])[0]
        raise GpuUnsupported(
            "nvidia-smi failed (%s): no working NVIDIA driver, or one too old to report compute "
            "capabilities (needs >= 510). Install or update the driver (>= %s), or use the CPU "
            "build (bash scripts/setup.sh without GPU=1)." % (first, version_text(FULL_DRIVER))
        )
    gpus = []
    for line in result.stdout.strip().splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 4:
            raise GpuUnsupported("cannot read this line of nvidia-smi output: %r" % line)
        index, name, cc, driver = fields
        gpus.append(Gpu(int(index), name, parse_version(cc), parse_version(driver)))
    if not gpus:
        raise GpuUnsupported("nvidia-smi lists no GPU. Use the CPU build (bash scripts/setup.sh "
                             "without GPU=1).")
    return gpus


def wheel_arch_for(compute_capability):
    """The wheel architecture whose machine code runs on this compute capability, or None.

    Examples
    --------
    >>> wheel_arch_for((8, 9)), wheel_arch_for((7, 5)), wheel_arch_for((9, 0))
    (86, 70, None)
    """
    major, minor = compute_capability
    usable = [a for a in WHEEL_ARCHS if a // 10 == major and a % 10 <= minor]
    return max(usable) if usable else None


def check_gpus(gpus):
    """Raise :class:`GpuUnsupported` unless every GPU and the driver can run the wheel.

    Returns the warnings (a driver older than CUDA 11.8's) as a list of lines.
    """
    bad = [g for g in gpus if wheel_arch_for(g.compute_capability) is None]
    if bad:
        names = ", ".join("GPU %d %s (compute capability %s)" % (g.index, g.name, g.cc) for g in bad)
        raise GpuUnsupported(
            "%s: not supported by %s, the last CUDA build of MXNet on PyPI. It holds machine code "
            "for compute capability 5.0-8.9 only (sm_%s, no PTX), so this GPU would fail with "
            "'no kernel image is available'. %s"
            % (names, WHEEL, ", sm_".join(str(a) for a in WHEEL_ARCHS), WHAT_TO_DO)
        )
    driver = gpus[0].driver
    if driver < MIN_DRIVER:
        raise GpuUnsupported(
            "NVIDIA driver %s is too old for the CUDA 11 libraries %s needs (>= %s). Update the "
            "driver, or use the CPU build." % (version_text(driver), WHEEL, version_text(MIN_DRIVER))
        )
    warnings = []
    if driver < FULL_DRIVER:
        warnings.append(
            "driver %s is older than CUDA 11.8's (%s): MXNet's runtime-compiled fused operators "
            "may fail with a PTX version error; set MXNET_USE_FUSION=0 if they do."
            % (version_text(driver), version_text(FULL_DRIVER))
        )
    return warnings


def horovod_cc_list(gpus, nvcc_archs):
    """The ``HOROVOD_BUILD_CUDA_CC_LIST`` for these GPUs (all wheel GPUs when ``gpus`` is empty).

    ``nvcc_archs`` are the architectures the chosen ``nvcc`` can target (``nvcc
    --list-gpu-arch``). Raises :class:`GpuUnsupported` when a GPU is beyond that ``nvcc``.

    Examples
    --------
    >>> horovod_cc_list([], [75, 80, 86, 89, 90, 100])
    [75, 80, 86, 89]
    """
    if not gpus:
        wanted = [a for a in nvcc_archs if 50 <= a <= 89]
        if not wanted:
            raise GpuUnsupported("this nvcc targets none of compute capability 5.0-8.9")
        return wanted
    wanted = sorted({g.compute_capability[0] * 10 + g.compute_capability[1] for g in gpus})
    missing = [a for a in wanted if a not in nvcc_archs]
    if missing:
        raise GpuUnsupported(
            "the nvcc found cannot compile for compute capability %s (it targets %s; CUDA 13 "
            "dropped everything before 7.5). Install a CUDA 11.x or 12.x toolkit that supports "
            "this GPU and point CUDA_HOME at it, then re-run." % (
                ", ".join("%d.%d" % divmod(a, 10) for a in missing),
                ", ".join("%d.%d" % divmod(a, 10) for a in sorted(nvcc_archs)) or "nothing"))
    return wanted


def version_text(version):
    """``(450, 80, 2)`` -> ``"450.80.02"``, the way NVIDIA writes driver versions."""
    return ".".join([str(version[0])] + ["%02d" % part for part in version[1:]])


def _main(argv):
    """``python gpu.py preflight`` and ``python gpu.py cc-list ARCH...`` for setup_gpu.sh."""
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    try:
        if command == "preflight":
            gpus = query_gpus()
            for line in check_gpus(gpus):
                print("warning: " + line, file=sys.stderr)
            for g in gpus:
                print("GPU %d: %s, compute capability %s, runs the wheel's sm_%d code"
                      % (g.index, g.name, g.cc, wheel_arch_for(g.compute_capability)))
            print("driver %s" % version_text(gpus[0].driver))
        elif command == "driver":
            print(version_text(query_gpus()[0].driver))
        elif command == "cc-list":
            gpus = [] if rest[:1] == ["--all"] else query_gpus()
            archs = [int(a) for a in rest if a.isdigit()]
            print(",".join(str(a) for a in horovod_cc_list(gpus, archs)))
        else:
            print("usage: gpu.py preflight | driver | cc-list [--all] ARCH...", file=sys.stderr)
            return 2
    except GpuUnsupported as error:
        print("error: %s" % error, file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
