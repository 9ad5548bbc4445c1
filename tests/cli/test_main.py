import json
import os
import subprocess
import sys

import pytest

from tests.support import child_env


def test_console_script_info_lists_models():
    out = subprocess.run(
        [sys.executable, "-m", "gluon_inception.cli", "info", "--json"], capture_output=True, text=True, check=True,
        env=child_env(),
    ).stdout
    info = json.loads(out)
    assert info["mxnet"] == "1.9.1" and "googlenet" in info["models"]


def test_no_subcommand_prints_help_and_fails():
    proc = subprocess.run([sys.executable, "-m", "gluon_inception.cli"], capture_output=True, text=True,
                          env=child_env())
    assert proc.returncode == 2 and "COMMAND" in proc.stdout


# -- one error path: every library error is one `error:` line and a documented exit status --------
TRAIN = ["--topology", "gluoncv", "--image-size", "32", "--augment", "chapter", "--epochs", "1", "--no-progress"]


def _run(*args, stdout=subprocess.PIPE):
    env = child_env()
    env.pop("GLUON_INCEPTION_TRACEBACK", None)
    return subprocess.run([sys.executable, "-m", "gluon_inception.cli", *args], stdout=stdout,
                          stderr=subprocess.PIPE, text=True, env=env, timeout=300)


def _one_error_line(proc, code):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, proc.stderr[-3000:]
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    return lines[-1]


def test_every_library_error_has_the_base_class_and_keeps_its_builtin_base():
    from gluon_inception import checkpoint, data, deploy, errors, training, weights, zoo  # noqa: F401
    from gluon_inception.deploy import export, images, quantize
    from gluon_inception.weights import torch_pth

    usage = [checkpoint.CheckpointError, data.PrepareError, data.RecordFileError, images.NotAnImageError,
             training.ConfigError, deploy.PrecisionError, weights.UnknownPretrainedError, weights.CorruptWeightsError,
             torch_pth.TorchFileError, torch_pth.UnsafePickleError, zoo.ModelSourceError]
    failures = [export.ExportError, quantize.QuantizationError, weights.PretrainedError, weights.ChecksumError,
                weights.DownloadError, weights.TruncatedDownloadError, weights.UnsafeArchiveError,
                weights.LockTimeoutError]
    for cls in usage + failures + [training.TrainingStopped, training.NonFiniteLoss]:
        assert issubclass(cls, errors.GluonInceptionError), cls
    assert all(cls.exit_code == 2 for cls in usage) and all(cls.exit_code == 1 for cls in failures)
    assert all(issubclass(cls, ValueError) for cls in usage if cls is not weights.CorruptWeightsError)
    assert issubclass(weights.CorruptWeightsError, RuntimeError) and issubclass(export.ExportError, RuntimeError)
    assert training.NonFiniteLoss.exit_code == 3


def test_train_on_a_folder_of_plain_jpegs_is_one_line_and_exit_2(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (40, 40), (i * 80, 0, 0)).save(tmp_path / ("%d.jpg" % i))
    line = _one_error_line(_run("train", "--data", str(tmp_path), "--checkpoints", str(tmp_path / "run"), *TRAIN), 2)
    assert str(tmp_path) in line and "gluon-inception prepare" in line


def test_a_dataset_smaller_than_one_batch_is_one_line_and_exit_2(train_tiny_dataset, tmp_path):
    proc = _run("train", "--data", train_tiny_dataset, "--checkpoints", str(tmp_path / "run"), *TRAIN,
                "--batch-size", "64")
    assert "fewer than one batch of 64" in _one_error_line(proc, 2)


def test_evaluate_and_export_usage_errors_exit_2(tmp_path):
    proc = _run("evaluate", "--pretrained", "--rec", str(tmp_path / "x.rec"), "--split", "val")
    assert "--split chooses a split of --data" in _one_error_line(proc, 2)
    proc = _run("export", "--pretrained", "--precision", "int8", "-o", str(tmp_path / "m"))
    assert "--precision int8 needs --calib-data" in _one_error_line(proc, 2)
    proc = _run("predict", str(tmp_path / "missing.jpg"), "--pretrained", "no_such_weights")
    assert "unknown pretrained entry 'no_such_weights'" in _one_error_line(proc, 2)


def test_mismatched_classes_give_both_counts_and_the_first_difference():
    from gluon_inception.cli._common import check_classes
    from gluon_inception.errors import UsageError

    check_classes("the weights'", ["a", "b"], "the dataset's", ["a", "b"])
    with pytest.raises(UsageError) as caught:
        check_classes("the weights'", ["n01", "n02", "n03", "n04"], "the dataset's", ["n01", "n02", "n03"])
    assert "(4) are not the dataset's (3)" in str(caught.value) and "class 3: 'n04' vs missing" in str(caught.value)
    with pytest.raises(UsageError, match="class 1: 'dog' vs 'cow'"):
        check_classes("the weights'", ["cat", "dog", "hen"], "the dataset's", ["cat", "cow", "hen"])


def test_output_closed_early_is_quiet():
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written, as with `| head` after its lines
    proc = _run("pretrained", "list", "--json", stdout=write)
    os.close(write)
    assert proc.returncode == 141 and proc.stderr == ""


def test_help_imports_no_subcommand_module():
    code = ("import sys\nfrom gluon_inception.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n"
            "    pass\nprint(sorted(m for m in sys.modules if m.startswith('gluon_inception.cli.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=child_env()).stdout
    assert out.strip().splitlines()[-1] == "['gluon_inception.cli.main']"


def test_started_by_horovodrun_without_horovod_mxnet_is_one_line(train_tiny_dataset, tmp_path):
    # A Horovod built without MXNet support: `import horovod.mxnet` fails, but the launcher's
    # variables say every rank would silently train alone.
    fake = tmp_path / "fake"
    (fake / "horovod").mkdir(parents=True)
    (fake / "horovod" / "__init__.py").write_text("")
    (fake / "horovod" / "mxnet.py").write_text("raise ImportError('Horovod was built without MXNet')\n")
    env = child_env(fake, HOROVOD_RANK="0", HOROVOD_SIZE="3")
    env.pop("GLUON_INCEPTION_TRACEBACK", None)
    proc = subprocess.run([sys.executable, "-m", "gluon_inception.cli", "train", "--data", train_tiny_dataset,
                           "--checkpoints", str(tmp_path / "run"), *TRAIN], capture_output=True,
                          text=True, env=env, timeout=300)
    line = _one_error_line(proc, 1)
    assert "started by horovodrun" in line and "HOROVOD_WITH_MXNET=1" in line


@pytest.mark.parametrize("args", [
    ("export", "--pretrained", "-o", "m", "--calib-batches", "-1"),
    ("export", "--pretrained", "-o", "m", "--batch-size", "0"),
    ("evaluate", "--pretrained", "--rec", "x.rec", "--calib-batches", "0"),
    ("evaluate", "--pretrained", "--rec", "x.rec", "--threads", "-2"),
    ("predict", "x.jpg", "--pretrained", "--topk", "0"),
    ("predict", "x.jpg", "--checkpoint", "c", "--classes", "0"),
])  # fmt: skip
def test_a_count_below_one_is_refused_before_anything_loads(args):
    proc = _run(*args)
    flag, value = args[-2:]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "argument %s: must be a positive integer, got %s" % (flag, value) in proc.stderr.splitlines()[-1]
