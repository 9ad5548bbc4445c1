"""``gluon-inception info`` on a GPU host, with faked MXNet features, GPUs and Horovod."""
import pytest

from gluon_inception import gpu
from gluon_inception.cli.info import gpu_status

CUDA_BUILD = {"CUDA": True, "CUDNN": True, "NCCL": True}
CPU_BUILD = {"CUDA": False, "CUDNN": False, "NCCL": False}


def gpus(*specs):
    return lambda: [gpu.Gpu(i, name, cc, (535, 104, 5)) for i, (name, cc) in enumerate(specs)]


def no_driver():
    raise gpu.GpuUnsupported("no NVIDIA driver: nvidia-smi is not on PATH")


def test_supported_gpus_with_the_pip_wheel_and_horovod_nccl():
    status = gpu_status(CUDA_BUILD, "mxnet-cu112 1.9.1", gpus(("NVIDIA A10", (8, 6)), ("NVIDIA L4", (8, 9))),
                        True, visible=2)
    assert status["driver"] == "535.104.05"
    assert [g["runs"] for g in status["gpus"]] == [True, True]
    text = "\n".join(status["summary"])
    assert "MXNet build: CUDA yes, cuDNN yes, NCCL yes" in text
    assert "sm_50, sm_60, sm_70, sm_80, sm_86" in text
    assert "GPU 1: NVIDIA L4, compute capability 8.9, runs the wheel's sm_86 code" in text
    assert "Horovod with NCCL: yes" in text and "CPU-only" not in text


def test_a_hopper_gpu_is_reported_as_unable_to_run_the_wheel():
    status = gpu_status(CUDA_BUILD, "mxnet-cu112 1.9.1", gpus(("NVIDIA H200", (9, 0))), False, visible=1)
    assert status["gpus"][0]["runs"] is False
    text = "\n".join(status["summary"])
    assert "compute capability 9.0, cannot run the pip wheel (5.0-8.9 only)" in text
    assert "Horovod with NCCL: no" in text


def test_cpu_machine_says_so_plainly():
    status = gpu_status(CPU_BUILD, None, no_driver, None, visible=0)
    text = "\n".join(status["summary"])
    assert "MXNet build: CUDA no, cuDNN no, NCCL no" in text
    assert "no usable NVIDIA GPU: no driver or GPU found" in text
    assert "this is a CPU-only installation" in text
    assert status["gpus"] == [] and status["driver"] is None


@pytest.mark.parametrize("visible, warned", [(0, True), (1, False)])
def test_cuda_build_that_sees_no_gpu_points_at_the_cause(visible, warned):
    status = gpu_status(CUDA_BUILD, "mxnet-cu112 1.9.1", gpus(("NVIDIA A100", (8, 0))), True, visible)
    assert any("MXNet sees no GPU although nvidia-smi lists 1" in line for line in status["summary"]) == warned


def test_source_build_architectures_are_not_guessed():
    status = gpu_status(CUDA_BUILD, None, gpus(("NVIDIA H100", (9, 0))), True, visible=1)
    assert status["gpus"][0]["runs"] is None
    assert any("not from the pip wheel" in line for line in status["summary"])


def test_cuda_build_without_a_driver_gives_the_reason():
    status = gpu_status(CUDA_BUILD, "mxnet-cu112 1.9.1", no_driver, True, visible=0)
    assert any("nvidia-smi is not on PATH" in line for line in status["summary"])
