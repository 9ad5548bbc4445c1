"""``--precision bfloat16`` training: where it is refused, float32 checkpoints, and an exact resume.

MXNet's AMP patches its operator functions for the rest of a process, so every bfloat16 run here
is a child process (``gluon-inception train``); the refusals happen before AMP is touched. The
children inherit ``DNNL_MAX_CPU_ISA`` and ``GLUON_INCEPTION_AMX`` from this process, which is how a
child that did not ask Linux for AMX permission once died of SIGILL: the resume test covers that too,
with AMX switched on, on AMX machines.
"""
import subprocess
import sys

import numpy as np
import pytest

from gluon_inception import cpu
from gluon_inception._compat import mx
from gluon_inception.dist import Dist
from gluon_inception.training import ConfigError, TrainConfig, Training, precision
from tests.support import child_env, cpus

# Results depend on the CPU's instruction sets: .ci/run runs these again under DNNL_MAX_CPU_ISA=AVX2 and with AMX on.
pytestmark = pytest.mark.isa

SINGLE = Dist(None)

TINY_FLAGS = [
    "--topology", "gluoncv", "--image-size", "32", "--batch-size", "4", "--augment", "chapter",
    "--optimizer", "sgd", "--lr", "0.01", "--lr-scaling", "none", "--log-interval", "2", "--no-progress",
    "--final-eval", "none", "--data-threads", "1",
]  # fmt: skip


def _cfg(tmp_path, **kwargs):
    return TrainConfig(checkpoints=str(tmp_path / "ckpt"), data="x", **kwargs).finalize()


class _GpuDist(Dist):
    """A single-process Dist whose device is a GPU (only the context object is made, no GPU is used)."""

    def context(self):
        return mx.gpu(0)


def test_bfloat16_on_a_cpu_without_bf16_instructions_is_refused(tmp_path, monkeypatch):
    cpus.simulate(monkeypatch, cpus.AVX2_ONLY)
    with pytest.raises(ConfigError, match="--precision bfloat16 needs a CPU with AVX-512 BF16 or AMX"):
        Training(_cfg(tmp_path, precision="bfloat16"), SINGLE)


def test_bfloat16_on_a_cpu_capped_below_avx512_bf16_is_refused_like_one_without_it(tmp_path, monkeypatch):
    cpus.simulate(monkeypatch, cpus.SAPPHIRE_RAPIDS)
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX512_CORE_VNNI")
    with pytest.raises(ConfigError, match="--precision bfloat16 needs a CPU with AVX-512 BF16 or AMX"):
        Training(_cfg(tmp_path, precision="bfloat16"), SINGLE)


def test_bfloat16_on_a_gpu_is_refused_with_what_to_use(tmp_path, monkeypatch):
    cpus.simulate(monkeypatch, cpus.AVX512_BF16)
    with pytest.raises(ConfigError, match="CPUs only.*--precision float16"):
        Training(_cfg(tmp_path, precision="bfloat16"), _GpuDist(None))


def test_cli_refuses_bfloat16_with_one_line_and_exit_2(tmp_path):
    # A CPU without the instructions, simulated in the child.
    code = cpus.child_code(cpus.AVX2_ONLY, "import sys; from gluon_inception.cli.main import main; "
                           "sys.exit(main(sys.argv[1:]))")  # fmt: skip
    cmd = [sys.executable, "-c", code, "train", "--demo", "--precision", "bfloat16", "--checkpoints", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=cpus.child_environ(child_env()), timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [lines[-1]] and lines[-1].startswith("error: --precision bfloat16 needs a CPU"), proc.stderr


def test_switching_amp_precision_in_one_process_is_refused(monkeypatch):
    monkeypatch.setattr(precision, "_amp_precision", "bfloat16")  # as if a bfloat16 run happened before
    with pytest.raises(ConfigError, match="own process"):
        precision.init_amp("float32")


def _train(data, folder, *extra):
    cmd = [sys.executable, "-m", "gluon_inception.cli", "train", "--data", data, *TINY_FLAGS, "--precision", "bfloat16",
           "--checkpoints", str(folder), "--prefix", "bf", *extra]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(OMP_NUM_THREADS="1"), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_bfloat16_checkpoints_are_float32_and_resume_exactly(train_tiny_dataset, tmp_path):
    cpus.require_cpu(cpu.supports_bf16(), "AVX-512 BF16 or AMX-BF16 (bfloat16 training)")
    _train(train_tiny_dataset, tmp_path / "straight", "--epochs", "2")
    _train(train_tiny_dataset, tmp_path / "split", "--epochs", "1")
    proc = _train(train_tiny_dataset, tmp_path / "split", "--epochs", "2", "--resume")
    assert "resumed from" in proc.stdout
    # With AMX switched on, convolution inputs are padded to 32-channel multiples (tests/training/test_amx.py);
    # the runs above are exact with the padding. Without the switch no AMX rule runs.
    assert ("zero-padded to a multiple of 32" in proc.stdout + proc.stderr) == cpus.amx_on_here(), proc.stdout
    straight = mx.nd.load(str(tmp_path / "straight" / "bf-0002.params"))
    split = mx.nd.load(str(tmp_path / "split" / "bf-0002.params"))
    assert sorted(straight) == sorted(split)
    for name, value in straight.items():
        assert value.dtype == np.float32, name
        np.testing.assert_array_equal(split[name].asnumpy(), value.asnumpy(), err_msg=name)
    # Training moved the weights away from the first epoch's (the comparison is not of two copies).
    first = mx.nd.load(str(tmp_path / "split" / "bf-0001.params"))
    assert any(not np.array_equal(first[k].asnumpy(), straight[k].asnumpy()) for k in straight)


def _train_as_if_on_amx(data, folder, *flags):
    """``gluon-inception train --precision bfloat16`` in a child that takes this CPU for a Sapphire Rapids
    with AMX switched on. The refusals tested with it come before anything runs in bfloat16, so any CPU
    will do."""
    code = cpus.child_code(cpus.SAPPHIRE_RAPIDS, "import sys; from gluon_inception.cli.main import main; "
                           "sys.exit(main(sys.argv[1:]))")  # fmt: skip
    tiny = [f for f in TINY_FLAGS if f not in ("--image-size", "32", "--topology", "gluoncv")]
    cmd = [sys.executable, "-c", code, "train", "--data", data, *tiny, "--precision", "bfloat16", "--checkpoints",
           str(folder), *flags]  # fmt: skip
    env = cpus.child_environ(child_env(), amx=True)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def test_bfloat16_on_amx_at_an_image_size_onednn_gets_wrong_is_refused_with_sizes_that_work(
    train_tiny_dataset, tmp_path
):
    # At 96 px inception 4 works on 6x6 maps, where oneDNN 2.4's AMX 1x1 convolution corrupts memory
    # (cpu.AMX_1X1_BROKEN_AREAS).
    proc = _train_as_if_on_amx(train_tiny_dataset, tmp_path, "--topology", "gluoncv", "--image-size", "96")
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [
        "error: --precision bfloat16 at --image-size 96: on this CPU's AMX tiles, the oneDNN 2.4 inside MXNet 1.9.1 "
        "corrupts memory in 1x1 convolutions with a 6x6 output (20 of them here); use --image-size 94 or 111, or "
        "run without AMX: DNNL_MAX_CPU_ISA=AVX512_CORE_BF16 in the environment"
    ], proc.stderr
    assert not list(tmp_path.glob("*.params")), "a refused run wrote a checkpoint"


def test_bfloat16_on_amx_refuses_a_teacher_that_meets_those_sizes_when_the_student_does_not(
    train_tiny_dataset, tmp_path
):
    # At 180 px the gluoncv topology's inception 5 has 7x7 maps (its 2x2 pooling before 5a rounds up)
    # and the torchvision one's 6x6: the student is fine, its teacher is not.
    from gluon_inception import googlenet
    from gluon_inception.checkpoint import save_checkpoint
    from gluon_inception.data import load_dataset
    from gluon_inception.preprocessing import Preprocessing

    net = googlenet(classes=4, topology="torchvision")
    model = {"name": "googlenet", "topology": "torchvision", "classes": 4, "aux_logits": False, "dropout": 0.4}
    meta = {"model": model, "data": {"classes": load_dataset(train_tiny_dataset).classes},
            "preprocessing": Preprocessing(crop_size=180).to_dict(), "config": {}}  # fmt: skip
    save_checkpoint(tmp_path / "teacher", "teacher", 1, net, meta=meta)
    teacher = str(tmp_path / "teacher")
    proc = _train_as_if_on_amx(train_tiny_dataset, tmp_path / "run", "--topology", "gluoncv", "--image-size", "180",
                               "--teacher", teacher)  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    prefix = "error: --precision bfloat16 with --teacher %s at --image-size 180: on this CPU's AMX tiles" % teacher
    assert len(lines) == 1 and lines[0].startswith(prefix), proc.stderr
    assert "with a 6x6 output (8 of them here); use --image-size 174 or 207" in lines[0], lines[0]
