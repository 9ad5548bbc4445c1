"""The evaluate, predict and export commands on the demo dataset, from the console script."""
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from gluon_inception import cli, cpu
from gluon_inception._compat import mx
from gluon_inception.deploy.evaluate import evaluate
from gluon_inception.deploy.export import load_mxnet
from gluon_inception.zoo import load_checkpoint_model
from tests.support import child_env, require
from tests.support.data_utils import png_bomb
from tests.support.demo import assert_int8_agrees


def run_cli(*args, env=None, cwd=None):
    """``python -m gluon_inception.cli ARGS`` in a subprocess (``env``: a :func:`child_env`, the default)."""
    return subprocess.run([sys.executable, "-m", "gluon_inception.cli", *args], capture_output=True, text=True,
                          env=env or child_env(), cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def checkpoint(demo_checkpoint):
    return demo_checkpoint


@pytest.fixture(scope="module")
def model(checkpoint):
    loaded = load_checkpoint_model(checkpoint)
    loaded.net.hybridize()
    return loaded


# Results depend on the CPU's instruction sets: .ci/run runs these again under DNNL_MAX_CPU_ISA=AVX2 and with AMX on.
pytestmark = pytest.mark.isa


def test_evaluate_command_prints_a_table_and_writes_the_library_numbers(tmp_path, checkpoint, model, demo_dataset):
    info = demo_dataset
    report = tmp_path / "report.json"
    proc = run_cli("evaluate", "--checkpoint", checkpoint, "--data", info.root, "--crops", "1", "10",
                   "--report", str(report))  # the val split by default
    assert proc.returncode == 0, proc.stderr
    assert "rank-1" in proc.stdout and "1-crop" in proc.stdout and "10-crop" in proc.stdout
    got = json.loads(report.read_text())
    expected = evaluate(model.net, info.split("val"), model.preprocessing, crops=(1, 10))
    for mode in (1, 10):
        row = got["results"]["%d-crop" % mode]
        assert row["count"] == 200
        assert row["top1"] == pytest.approx(expected[mode].top1, abs=1e-9)
        assert row["top5"] == pytest.approx(expected[mode].top5, abs=1e-9)
        assert row["cross_entropy"] == pytest.approx(expected[mode].cross_entropy, rel=1e-5)
    assert got["source"]["checkpoint"] == os.path.abspath(checkpoint)
    assert got["preprocessing"]["crop_size"] == 32


def test_evaluate_command_repeats_the_validation_that_training_recorded(tmp_path, checkpoint, demo_dataset):
    """Training's validation and ``gluon-inception evaluate`` are one code path: same checkpoint, same numbers."""
    report = tmp_path / "report.json"
    proc = run_cli("evaluate", "--checkpoint", checkpoint, "--data", demo_dataset.root, "--split", "val",
                   "--batch-size", "64", "--report", str(report))  # the batch size training validated with
    assert proc.returncode == 0, proc.stderr
    got = json.loads(report.read_text())["results"]["1-crop"]
    with open(checkpoint[: -len(".params")] + ".json") as f:
        recorded = json.load(f)["metrics"]["val"]
    assert got["count"] == recorded["samples"] == 200
    assert (got["top1"], got["top5"]) == (recorded["top1"], recorded["top5"])
    assert got["cross_entropy"] == pytest.approx(recorded["loss"], rel=1e-5)


def _expected_probs(model, path):
    """Preprocessing done independently with OpenCV and numpy: resize the shorter side, centre crop."""
    pre = model.preprocessing
    image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
    h, w = image.shape[:2]
    new_w, new_h = (pre.resize, pre.resize * h // w) if h > w else (pre.resize * w // h, pre.resize)
    image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    y, x = (new_h - pre.crop_size) // 2, (new_w - pre.crop_size) // 2
    crop = image[y : y + pre.crop_size, x : x + pre.crop_size].astype(np.float32)
    x = (crop - np.array(pre.mean, np.float32)) / np.array(pre.std, np.float32)
    logits = model.net(mx.nd.array(x.transpose(2, 0, 1)[None])).asnumpy()[0]
    e = np.exp(logits - logits.max())
    return e / e.sum()


def _demo_images(info, n):
    source = os.path.join(info.root, "source", "val")
    picked = []
    for digit in sorted(os.listdir(source))[:n]:
        folder = os.path.join(source, digit)
        picked.append(os.path.join(folder, sorted(os.listdir(folder))[0]))
    return picked


def test_predict_files_and_a_folder_with_a_non_image_in_it(tmp_path, checkpoint, model, demo_dataset):
    single, *others = _demo_images(demo_dataset, 4)
    folder = tmp_path / "photos"
    (folder / "more").mkdir(parents=True)
    for i, path in enumerate(others):
        shutil.copy(path, folder / ("more" if i == 0 else ".") / os.path.basename(path))
    (folder / "README.txt").write_text("not an image\n")
    proc = run_cli("predict", single, str(folder), "--checkpoint", checkpoint, "--topk", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # Files in the order given; inside a folder sorted by name, the folder's own files before its sub-folders'.
    expected_order = [single] + sorted(others[1:], key=os.path.basename) + others[:1]
    assert [os.path.basename(p["path"]) for p in out["predictions"]] == [os.path.basename(p) for p in expected_order]
    assert [os.path.basename(s["path"]) for s in out["skipped"]] == ["README.txt"]
    assert "not an image" in out["skipped"][0]["error"]
    for prediction in out["predictions"]:
        probs = _expected_probs(model, prediction["path"])
        top = prediction["top"]
        assert len(top) == 3
        assert top[0]["name"] == model.class_names[int(np.argmax(probs))]
        for entry in top:
            assert entry["name"] == model.class_names[entry["class"]]
            assert entry["probability"] == pytest.approx(probs[entry["class"]], abs=0.02)

    text = run_cli("predict", str(folder), "--checkpoint", checkpoint, "--topk", "2")
    assert text.returncode == 0
    assert "README.txt" in text.stderr and "not an image" in text.stderr
    assert "3 image(s) predicted, 1 file(s) skipped" in text.stderr
    assert text.stdout.count("%") == 6  # two classes for each of the three images


def test_predict_with_nothing_readable_fails_with_one_error_line(tmp_path, checkpoint, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert cli.main(["predict", str(tmp_path / "notes.txt"), "--checkpoint", checkpoint]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: no image could be read: %s: not an image (OpenCV cannot decode it)" % (tmp_path / "notes.txt")]
    assert cli.main(["predict", str(tmp_path), "--checkpoint", checkpoint]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: no image could be read: %s: not an image (the file is empty)"
                                               " (and 1 other file(s)" % (tmp_path / "empty.jpg")), err  # fmt: skip
    (tmp_path / "nothing").mkdir()
    assert cli.main(["predict", str(tmp_path / "nothing"), "--checkpoint", checkpoint]) == 2
    assert capsys.readouterr().err.startswith("error: no files in ")


_PEAK = (
    "import resource, subprocess, sys; proc = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
    "sys.stderr.write(proc.stderr); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
    "sys.exit(proc.returncode)"
)


def test_predict_refuses_a_decompression_bomb_in_one_line_with_little_memory(tmp_path, checkpoint):
    """An 875 KB-class PNG declaring 30000x30000 pixels once took 5.5 GB and ended in a traceback."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(30000, 30000))
    cmd = [sys.executable, "-m", "gluon_inception.cli", "predict", str(bomb), "--checkpoint", checkpoint]
    proc = subprocess.run([sys.executable, "-c", _PEAK, *cmd], capture_output=True, text=True, env=child_env(),
                          timeout=300)  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.splitlines() == [
        "error: no image could be read: %s: declares 900000000 pixels, over the limit of 64000000 "
        "($GLUON_INCEPTION_MAX_PIXELS raises it)" % bomb]
    peak_mb = int(proc.stdout.strip().splitlines()[-1]) / 1024  # ru_maxrss is in KiB on Linux
    print("predict on a 30000x30000 PNG bomb: peak resident memory %.0f MB" % peak_mb)
    assert peak_mb < 1024, peak_mb


def test_export_mxnet_from_a_checkpoint_round_trips(tmp_path, checkpoint, model):
    prefix = tmp_path / "demo"
    proc = run_cli("export", "--checkpoint", checkpoint, "--format", "mxnet", "-o", str(prefix))
    assert proc.returncode == 0, proc.stderr
    loaded, meta = load_mxnet(str(prefix))
    x = mx.nd.array(np.random.RandomState(0).normal(0, 1, (3, 3, 32, 32)))
    np.testing.assert_allclose(loaded(x).asnumpy(), model.net(x).asnumpy(), rtol=1e-5, atol=1e-5)
    assert meta["classes"] == [str(d) for d in range(10)] and meta["precision"] == "float32"


def test_export_onnx_with_baked_preprocessing_from_a_checkpoint(tmp_path, checkpoint, model):
    require(_has("onnx") and _has("onnxruntime"), "onnx and onnxruntime (pip install 'gluon-inception[onnx]')")
    from gluon_inception.deploy.export import run_onnx

    path = tmp_path / "demo.onnx"
    proc = run_cli("export", "--checkpoint", checkpoint, "--format", "onnx", "--bake-preprocessing", "-o", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "checked in onnxruntime" in proc.stdout
    pixels = np.random.RandomState(1).uniform(0, 255, (2, 3, 32, 32)).astype(np.float32)
    expected = model.net(model.preprocessing.normalize(mx.nd.array(pixels))).asnumpy()
    np.testing.assert_allclose(run_onnx(str(path), pixels), expected, rtol=0, atol=1e-4)


@pytest.mark.slow
def test_export_int8_then_evaluate_it(tmp_path, checkpoint, model, demo_dataset, demo_float32_result):
    info = demo_dataset
    prefix = tmp_path / "int8"
    proc = run_cli("export", "--checkpoint", checkpoint, "--precision", "int8", "--calib-data", info.split("train").rec,
                   "-o", str(prefix))
    assert proc.returncode == 0, proc.stderr
    qnet, meta = load_mxnet(str(prefix))
    assert meta["precision"] == "int8"
    assert_int8_agrees(qnet, model.net, info, model.preprocessing)  # the bounds' reasoning is there


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    missing = str(tmp_path / "nope-0003.params")
    assert cli.main(["export", "--checkpoint", missing, "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "checkpoint %s does not exist" % missing in err
    assert cli.main(["evaluate", "--checkpoint", missing, "--rec", str(tmp_path / "a.rec")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_checkpoint_and_requested_architecture_disagree_names_the_options(tmp_path, checkpoint, capsys):
    code = cli.main(["export", "--checkpoint", checkpoint, "--topology", "paper", "--classes", "1000",
                     "-o", str(tmp_path / "x")])
    assert code == 2
    err = capsys.readouterr().err
    assert "topology: checkpoint" in err and "has 'gluoncv', you asked for 'paper'" in err
    assert "classes: checkpoint" in err and "has 10, you asked for 1000" in err
    assert "--topology / --classes" in err
    assert not list(tmp_path.iterdir())
    # Matching values are fine.
    assert cli.main(["export", "--checkpoint", checkpoint, "--topology", "gluoncv", "--classes", "10",
                     "-o", str(tmp_path / "ok")]) == 0


def test_onnx_export_without_onnx_installed_says_how_to_install(tmp_path, checkpoint):
    blocker = tmp_path / "blocker" / "onnx"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named onnx (hidden for this test)')\n")
    proc = run_cli("export", "--checkpoint", checkpoint, "--format", "onnx", "-o", str(tmp_path / "m.onnx"),
                   env=child_env(blocker.parent))
    assert proc.returncode == 1
    assert "onnx package, which is not installed: pip install 'gluon-inception[onnx]'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "m.onnx").exists()


def _has(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


@pytest.mark.slow
def test_evaluate_int8_and_bfloat16_precisions(tmp_path, checkpoint, capsys, demo_dataset):
    info = demo_dataset
    top1 = {}
    for precision in ("float32", "int8", "bfloat16"):
        report = tmp_path / (precision + ".json")
        code = cli.main(["evaluate", "--checkpoint", checkpoint, "--data", info.root, "--split", "test",
                         "--precision", precision, "--calib-batches", "3", "--report", str(report)])
        captured = capsys.readouterr()  # each run's own output
        if precision == "bfloat16" and not cpu.supports_bf16():
            assert code == 2 and "--precision bfloat16 needs a CPU with AVX-512 BF16" in captured.err, captured.err
            continue
        assert code == 0, captured.err
        got = json.loads(report.read_text())
        assert got["precision"] == precision
        assert "(%s, 1 rank)" % precision in captured.out, captured.out
        top1[precision] = got["results"]["1-crop"]["top1"]
    # The command's plumbing, on the 300 test images: 1 point is 3 images, where INT8 was measured to
    # move 0-1 (tests/deploy/test_quantize.py checks INT8's fidelity on all 1,797 digits).
    assert abs(top1["int8"] - top1["float32"]) <= 0.01
