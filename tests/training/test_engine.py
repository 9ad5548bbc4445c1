"""The training engine in one process: guards on options, losses, and the command line end to end."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gluon_inception._compat import mx
from gluon_inception.checkpoint import save_checkpoint
from gluon_inception.data import load_dataset
from gluon_inception.deploy.evaluate import evaluate
from gluon_inception.dist import Dist
from gluon_inception.preprocessing import Preprocessing
from gluon_inception.training import ConfigError, TrainConfig, Training
from gluon_inception.training.engine import NO_DATA_MESSAGE
from gluon_inception.zoo import load_checkpoint_model, load_model_from_checkpoint
from tests.support import ROOT, child_env

SINGLE = Dist(None)  # never initialise Horovod inside the test process


TINY_FLAGS = [
    "--topology", "gluoncv", "--image-size", "32", "--batch-size", "4", "--augment", "chapter",
    "--optimizer", "adam", "--lr", "0.001", "--lr-scaling", "none", "--log-interval", "2", "--no-progress",
]  # fmt: skip


def _cfg(tmp_path, **kwargs):
    kwargs.setdefault("checkpoints", str(tmp_path / "ckpt"))
    return TrainConfig(**kwargs).finalize()


# -- refusals ----------------------------------------------------------------------------------
def test_no_data_and_no_demo_says_how_to_get_either(tmp_path):
    with pytest.raises(ConfigError) as err:
        Training(_cfg(tmp_path), SINGLE)
    assert "gluon-inception prepare" in str(err.value) and "--demo" in str(err.value)
    assert str(err.value) == NO_DATA_MESSAGE


def test_float16_on_cpu_is_refused_with_the_reason(tmp_path):
    with pytest.raises(ConfigError, match="float16 needs a GPU"):
        Training(_cfg(tmp_path, data="x", precision="float16"), SINGLE)


def test_fresh_run_refuses_to_overwrite_an_existing_run(tmp_path):
    from gluon_inception import googlenet

    save_checkpoint(tmp_path / "ckpt", "googlenet", 1, googlenet(classes=2, topology="gluoncv"), meta={})
    with pytest.raises(ConfigError, match="--resume"):
        Training(_cfg(tmp_path, data="x"), SINGLE)


def test_start_epoch_without_that_checkpoint_lists_the_available_ones(tmp_path):
    from gluon_inception import googlenet
    from gluon_inception.checkpoint import CheckpointError

    net = googlenet(classes=2, topology="gluoncv")
    for epoch in (1, 2):
        save_checkpoint(tmp_path / "ckpt", "googlenet", epoch, net, meta={"config": {}})
    with pytest.raises(CheckpointError, match="epoch 7.*available epochs: 1, 2"):
        Training(_cfg(tmp_path, data="x", start_epoch=7), SINGLE)


def test_resume_without_any_checkpoint_starts_from_scratch(tmp_path):
    run = Training(_cfg(tmp_path, data="x", resume=True), SINGLE)
    assert run.start_epoch == 0 and run.resume_meta is None
    run.close()


# -- losses and targets ------------------------------------------------------------------------
class _Data:
    num_classes = 4


def _bare_training(tmp_path, **kwargs):
    run = Training(_cfg(tmp_path, data="x", **kwargs), SINGLE)
    run.data = _Data()
    return run


def test_aux_heads_add_their_loss_with_weight(tmp_path):
    run = _bare_training(tmp_path, aux_weight=0.3)
    rng = np.random.RandomState(0)
    main, aux1, aux2 = (mx.nd.array(rng.randn(5, 4)) for _ in range(3))
    labels = mx.nd.array([0, 1, 2, 3, 0])
    ce = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    logits, loss = run._loss((main, aux1, aux2), labels)
    expected = ce(main, labels) + 0.3 * (ce(aux1, labels) + ce(aux2, labels))
    np.testing.assert_allclose(loss.asnumpy(), expected.asnumpy(), rtol=1e-6)
    assert logits is main
    run.close()


def test_label_smoothing_and_mixup_make_soft_targets(tmp_path):
    run = _bare_training(tmp_path, label_smoothing=0.1, mixup=0.2)
    x = mx.nd.array(np.arange(4 * 3 * 2 * 2, dtype="float32").reshape(4, 3, 2, 2))
    y = mx.nd.array([0, 1, 2, 3])
    mixed, targets, labels = run._targets(x, y, np.random.RandomState(3), mixup=True)
    targets = targets.asnumpy()
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
    assert targets.min() >= 0.1 / 4 - 1e-7  # smoothing keeps every class above eps / C
    lam = float((mixed[0] - x[3]).sum().asscalar() / (x[0] - x[3]).sum().asscalar())
    dominant = y.asnumpy() if lam >= 0.5 else y.asnumpy()[::-1]
    np.testing.assert_array_equal(labels.asnumpy(), dominant)
    _, smooth_only, plain = run._targets(x, y, None, mixup=False)
    np.testing.assert_allclose(smooth_only.asnumpy()[0], [0.925, 0.025, 0.025, 0.025], rtol=1e-6)
    run.close()


def test_no_wd_on_bn_and_bias_sets_their_wd_mult_to_zero(tmp_path):
    from gluon_inception import googlenet

    run = _bare_training(tmp_path, no_wd_bn_bias=True, image_size=32, hybridize=False)
    net = run.build_model(googlenet(classes=4, topology="gluoncv"))
    mults = {name: p.wd_mult for name, p in net.collect_params().items()}
    assert all(m == 0 for n, m in mults.items() if n.endswith(("gamma", "beta", "bias")))
    assert all(m == 1 for n, m in mults.items() if n.endswith("weight"))
    run.close()


def test_too_small_image_size_is_refused_before_training(tmp_path):
    run = _bare_training(tmp_path, image_size=24)
    with pytest.raises(ConfigError, match="at least 31"):
        run.build_model(__import__("gluon_inception").googlenet(classes=4, topology="gluoncv"))
    run.close()


# -- the command line, one process -------------------------------------------------------------
@pytest.fixture(scope="module")
def single_process_run(train_tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    cmd = [sys.executable, "-m", "gluon_inception.cli", "train", "--data", train_tiny_dataset, *TINY_FLAGS,
           "--epochs", "2", "--lr-steps", "1", "--checkpoints", str(out), "--prefix", "tiny",
           "--label-smoothing", "0.1", "--no-wd-bn-bias"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=300)
    return proc, out


@pytest.mark.slow
def test_single_process_trains_checkpoints_and_evaluates(single_process_run, train_tiny_dataset):
    proc, out = single_process_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "final evaluation on the test split, 16 images: top-1" in proc.stdout
    lines = [json.loads(line) for line in open(out / "tiny-metrics.jsonl")]
    epochs = [r for r in lines if "event" not in r]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert [r["lr"] for r in epochs] == pytest.approx([1e-3, 1e-4])
    assert epochs[0]["train_samples"] == 56 // 4 * 4 and epochs[0]["val_samples"] == 12
    assert lines[-1]["event"] == "final_eval" and lines[-1]["samples"] == 16
    net, meta = load_model_from_checkpoint(str(out))
    assert meta["epoch"] == 2 and meta["model"]["classes"] == 4 and meta["config"]["label_smoothing"] == 0.1
    assert meta["data"]["classes"] == ["blue", "green", "red", "yellow"]
    assert os.path.isfile(out / "tiny.log") and "epoch 2/2" in open(out / "tiny.log").read()
    info = load_dataset(train_tiny_dataset)  # --augment chapter: mean subtraction only
    assert meta["preprocessing"] == Preprocessing(info.mean, (1, 1, 1), crop_size=32).to_dict()
    # The final evaluation and the library's evaluate() on the saved network are one code path.
    loaded = load_checkpoint_model(str(out))
    loaded.net.hybridize(static_alloc=True, static_shape=True)
    again = evaluate(loaded.net, info.split("test"), loaded.preprocessing, batch_size=4)[1]
    assert (again.count, again.top1, again.top5) == (16, lines[-1]["top1"], lines[-1]["top5"])
    assert again.cross_entropy == pytest.approx(lines[-1]["loss"], rel=1e-5)


@pytest.mark.slow
def test_chapter_workflow_restart_from_an_epoch_with_a_new_lr(single_process_run, train_tiny_dataset, tmp_path):
    import shutil

    _, out = single_process_run
    run = tmp_path / "run"
    shutil.copytree(out, run)
    cmd = [sys.executable, "-m", "gluon_inception.cli", "train", "--checkpoints", str(run), "--prefix", "tiny",
           "--start-epoch", "1", "--lr", "0.0005", "--epochs", "3", "--no-progress"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed from" in proc.stdout and "tiny-0001.params" in proc.stdout and "set by --lr" in proc.stdout
    epochs = [json.loads(line) for line in open(run / "tiny-metrics.jsonl")]
    epochs = [r for r in epochs if "event" not in r]
    # Epoch 1 is the original run's; 2 and 3 ran at the new rate (the drop at epoch 1 lies behind).
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert [r["lr"] for r in epochs] == pytest.approx([1e-3, 5e-4, 5e-4])
    # Everything not given again came from the checkpoint's config (data, model, smoothing ...).
    _, meta = load_model_from_checkpoint(str(run))
    assert meta["epoch"] == 3 and meta["config"]["label_smoothing"] == 0.1 and meta["config"]["data"]


@pytest.mark.slow
def test_plot_command_draws_the_run(single_process_run, tmp_path):
    _, out = single_process_run
    png = tmp_path / "fig.png"
    proc = subprocess.run(
        [sys.executable, "-m", "gluon_inception.cli", "plot", str(out), "-o", str(png)],
        capture_output=True, text=True, env=child_env(), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10000


@pytest.mark.slow
def test_without_horovod_it_trains_in_one_process_and_says_so(train_tiny_dataset, tmp_path):
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        textwrap.dedent(
            """
            import builtins
            _real_import = builtins.__import__
            def _no_horovod(name, *args, **kwargs):
                if name == "horovod" or name.startswith("horovod."):
                    raise ImportError("No module named 'horovod' (hidden by the test)")
                return _real_import(name, *args, **kwargs)
            builtins.__import__ = _no_horovod
            """
        )
    )
    cmd = [sys.executable, os.path.join(ROOT, "examples", "train_imagenet.py"), "--data", train_tiny_dataset,
           *TINY_FLAGS, "--epochs", "1", "--checkpoints", str(tmp_path / "run"), "--final-eval", "none"]  # fmt: skip
    env = child_env(blocker)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Horovod is not available" in proc.stdout and "training in a single process" in proc.stdout
    assert "1 rank(s)" in proc.stdout
    assert os.path.isfile(tmp_path / "run" / "googlenet-0001.json")


def test_cli_without_data_exits_2_with_the_how_to(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "gluon_inception.cli", "train", "--checkpoints", str(tmp_path / "run")],
        capture_output=True, text=True, env=child_env(), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "gluon-inception prepare" in proc.stderr and "--demo" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(tmp_path / "run")  # a refused run leaves nothing behind


def test_cli_lists_recipes():
    proc = subprocess.run(
        [sys.executable, "-m", "gluon_inception.cli", "train", "--list-recipes"],
        capture_output=True, text=True, env=child_env(), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0 and "chapter-adam" in proc.stdout and "recommended" in proc.stdout
