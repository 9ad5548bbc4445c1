"""GPU install path, checked on CPU: the support matrix, the refusals, and setup_gpu.sh stopping
before it downloads anything on a GPU the pip MXNet cannot run (a fake nvidia-smi on PATH)."""
import os
import subprocess
import sys

import pytest

from gluon_inception import gpu
from tests.support import ROOT


def fake_nvidia_smi(folder, lines, exit_code=0):
    """An ``nvidia-smi`` that prints ``lines`` and exits with ``exit_code``, first on PATH."""
    folder.mkdir(exist_ok=True)
    script = folder / "nvidia-smi"
    script.write_text("#!/bin/sh\ncat <<'OUT'\n%s\nOUT\nexit %d\n" % ("\n".join(lines), exit_code))
    script.chmod(0o755)
    return dict(os.environ, PATH="%s:%s" % (folder, os.environ["PATH"]))


def run_script(args, env):
    return subprocess.run(["bash"] + args, cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("cc, arch", [((5, 0), 50), ((5, 2), 50), ((6, 1), 60), ((7, 0), 70),
                                      ((7, 5), 70), ((8, 0), 80), ((8, 6), 86), ((8, 9), 86),
                                      ((3, 7), None), ((9, 0), None), ((10, 0), None), ((12, 0), None)])
def test_wheel_runs_on_compute_capability_5_0_to_8_9_only(cc, arch):
    assert gpu.wheel_arch_for(cc) == arch


def test_query_reads_every_gpu_and_the_driver(tmp_path, monkeypatch):
    env = fake_nvidia_smi(tmp_path / "bin", ["0, NVIDIA A100-SXM4-40GB, 8.0, 535.104.05",
                                             "1, NVIDIA A10, 8.6, 535.104.05"])
    monkeypatch.setenv("PATH", env["PATH"])
    gpus = gpu.query_gpus()
    assert [(g.index, g.name, g.cc, g.driver) for g in gpus] == [
        (0, "NVIDIA A100-SXM4-40GB", "8.0", (535, 104, 5)), (1, "NVIDIA A10", "8.6", (535, 104, 5))]
    assert gpu.check_gpus(gpus) == []


def test_one_hopper_among_supported_gpus_is_refused_by_name():
    gpus = [gpu.Gpu(0, "NVIDIA A100", (8, 0), (550, 54, 15)), gpu.Gpu(1, "NVIDIA H100", (9, 0), (550, 54, 15))]
    with pytest.raises(gpu.GpuUnsupported, match=r"GPU 1 NVIDIA H100 \(compute capability 9.0\)") as error:
        gpu.check_gpus(gpus)
    assert "A100" not in str(error.value)


def test_driver_too_old_for_cuda_11_is_refused_and_an_old_11_driver_warns():
    with pytest.raises(gpu.GpuUnsupported, match="too old"):
        gpu.check_gpus([gpu.Gpu(0, "Tesla V100", (7, 0), (440, 33, 1))])
    warnings = gpu.check_gpus([gpu.Gpu(0, "Tesla V100", (7, 0), (470, 82, 1))])
    assert len(warnings) == 1 and "MXNET_USE_FUSION=0" in warnings[0]


def test_horovod_cc_list_follows_the_gpus_and_refuses_what_nvcc_cannot_target():
    cuda13 = [75, 80, 86, 87, 88, 89, 90, 100, 120]
    assert gpu.horovod_cc_list([], cuda13) == [75, 80, 86, 87, 88, 89]
    a10 = gpu.Gpu(0, "NVIDIA A10", (8, 6), (580, 65, 6))
    assert gpu.horovod_cc_list([a10, a10], cuda13) == [86]
    with pytest.raises(gpu.GpuUnsupported, match="CUDA 11.x or 12.x toolkit"):
        gpu.horovod_cc_list([gpu.Gpu(0, "Tesla V100", (7, 0), (580, 65, 6))], cuda13)


def test_setup_gpu_refuses_compute_capability_9_before_installing_anything(tmp_path):
    env = fake_nvidia_smi(tmp_path / "bin", ["0, NVIDIA H200, 9.0, 550.54.15"])
    env["VENV"] = str(tmp_path / "venv")
    result = run_script(["scripts/setup_gpu.sh"], env)
    assert result.returncode == 3, result.stdout + result.stderr
    message = result.stderr
    assert "NVIDIA H200 (compute capability 9.0)" in message
    assert "5.0-8.9" in message and "no kernel image" in message
    assert "CPU build" in message and "from source" in message
    assert not (tmp_path / "venv").exists()


def test_setup_sh_with_gpu_1_stops_on_the_same_check(tmp_path):
    env = fake_nvidia_smi(tmp_path / "bin", ["0, NVIDIA H100 80GB HBM3, 9.0, 560.35.03"])
    env.update(GPU="1", VENV=str(tmp_path / "venv"))
    result = run_script(["scripts/setup.sh"], env)
    assert result.returncode != 0
    assert "compute capability 9.0" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_setup_gpu_without_a_driver_says_so(tmp_path):
    env = fake_nvidia_smi(tmp_path / "bin", [
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."], exit_code=9)
    env["VENV"] = str(tmp_path / "venv")
    result = run_script(["scripts/setup_gpu.sh"], env)
    assert result.returncode == 3
    assert "couldn't communicate with the NVIDIA driver" in result.stderr
    assert "no working NVIDIA driver" in result.stderr and "CPU build" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_no_nvidia_smi_at_all_means_no_driver(monkeypatch):
    monkeypatch.setattr(gpu.shutil, "which", lambda name: None)
    with pytest.raises(gpu.GpuUnsupported, match="no NVIDIA driver"):
        gpu.query_gpus()


def test_preflight_prints_what_each_gpu_runs(tmp_path):
    env = fake_nvidia_smi(tmp_path / "bin", ["0, NVIDIA L4, 8.9, 550.54.15"])
    result = subprocess.run([sys.executable, os.path.join(ROOT, "gluon_inception", "gpu.py"), "preflight"],
                            env=env, stdout=subprocess.PIPE, text=True)
    assert result.returncode == 0
    assert "GPU 0: NVIDIA L4, compute capability 8.9, runs the wheel's sm_86 code" in result.stdout
