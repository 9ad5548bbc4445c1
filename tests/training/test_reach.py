"""Reaching further in one process: distillation loss, weight EMA, gradient accumulation, fine-tuning options
and their refusals. The 3-rank runs are in test_horovod_reach.py."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from gluon_inception import googlenet
from gluon_inception._compat import mx
from gluon_inception.checkpoint import checkpoint_paths, ema_path, save_checkpoint
from gluon_inception.dist import Dist
from gluon_inception.preprocessing import Preprocessing
from gluon_inception.training import ConfigError, TrainConfig, Training
from gluon_inception.training.distill import distillation_loss
from gluon_inception.training.finetune import configure_backbone
from gluon_inception.training.hooks import TrainingHooks
from tests.support import child_env

SINGLE = Dist(None)


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


# -- distillation --------------------------------------------------------------------------------
@pytest.mark.parametrize("temperature,weight", [(1.0, 0.5), (4.0, 0.7), (2.5, 1.0)])
def test_distillation_loss_equals_a_numpy_computation(temperature, weight):
    rng = np.random.RandomState(1)
    student, teacher = rng.randn(6, 5).astype("float32") * 3, rng.randn(6, 5).astype("float32") * 3
    s64, t64 = student.astype("float64"), teacher.astype("float64")  # the reference in double precision
    labels = np.array([0, 1, 2, 3, 4, 0])
    hard = -_log_softmax(s64)[np.arange(6), labels]
    p_t = np.exp(_log_softmax(t64 / temperature))
    kl = (p_t * (np.log(p_t) - _log_softmax(s64 / temperature))).sum(axis=1)
    expected = (1 - weight) * hard + weight * temperature**2 * kl

    got = distillation_loss(mx.nd.array(student), mx.nd.array(teacher), mx.nd.array(hard), temperature, weight)
    np.testing.assert_allclose(got.asnumpy(), expected, rtol=1e-5, atol=2e-5)
    assert (kl > 0).all()
    same = distillation_loss(mx.nd.array(student), mx.nd.array(student), mx.nd.array(hard), temperature, weight)
    np.testing.assert_allclose(same.asnumpy(), (1 - weight) * hard, rtol=1e-5, atol=1e-6)  # KL(p||p) = 0


def test_the_engine_loss_distils_the_main_head_and_keeps_aux_cross_entropy(tmp_path):
    run = Training(TrainConfig(data="x", checkpoints=str(tmp_path), distill_temperature=3.0, distill_weight=0.25,
                               aux_weight=0.3).finalize(), SINGLE)  # fmt: skip
    rng = np.random.RandomState(2)
    main, aux1, aux2, teacher = (rng.randn(4, 3).astype("float32") for _ in range(4))
    labels = np.array([0, 2, 1, 1])
    _, loss = run._loss(tuple(mx.nd.array(a) for a in (main, aux1, aux2)), mx.nd.array(labels), mx.nd.array(teacher))

    def ce(z):
        return -_log_softmax(z)[np.arange(4), labels]

    p_t = np.exp(_log_softmax(teacher / 3.0))
    kl = (p_t * (np.log(p_t) - _log_softmax(main / 3.0))).sum(axis=1)
    expected = 0.75 * ce(main) + 0.25 * 9.0 * kl + 0.3 * (ce(aux1) + ce(aux2))
    np.testing.assert_allclose(loss.asnumpy(), expected, rtol=1e-5, atol=1e-6)
    run.close()


# -- a tiny in-memory dataset and a network without BatchNorm or dropout -------------------------
class _MemoryData:
    """The DatasetSource interface over arrays, in a fixed order (no shuffling, no augmentation)."""

    num_classes, classes, demo = 3, ["a", "b", "c"], False
    preprocessing = Preprocessing(mean=(0, 0, 0), std=(1, 1, 1), crop_size=4, resize=4)

    def __init__(self, batch_size, images=24):
        rng = np.random.RandomState(5)
        self.x = rng.randn(images, 3, 4, 4).astype("float32")
        self.y = (self.x.mean(axis=(1, 2, 3)) > 0).astype("float32") + (self.x[:, 0, 0, 0] > 1)
        self.batch_size = batch_size

    def _batches(self, x, y, b):
        return [mx.io.DataBatch([mx.nd.array(x[i : i + b])], [mx.nd.array(y[i : i + b])], pad=0)
                for i in range(0, len(x) - b + 1, b)]  # fmt: skip

    def train_iter(self, epoch):
        order = np.random.RandomState(epoch).permutation(len(self.x))  # depends on the epoch only
        return self._batches(self.x[order], self.y[order], self.batch_size)

    def eval_iter(self, split):
        return self._batches(self.x[:12], self.y[:12], 4)

    def has_split(self, name):
        return name == "val"

    def describe(self):
        return {"classes": self.classes, "num_classes": 3}


def _tiny_net(seed=3):
    mx.random.seed(seed)
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Conv2D(4, 3, padding=1, in_channels=3, activation="relu"), mx.gluon.nn.GlobalAvgPool2D(),
            mx.gluon.nn.Dense(3, in_units=4))  # fmt: skip
    net.initialize(mx.init.Xavier())
    return net


def _run(tmp_path, batch_size, epochs=1, hooks=None, net=None, **options):
    defaults = dict(batch_size=batch_size, optimizer="sgd", lr=0.2, lr_scaling="none", momentum=0.9, wd=1e-3,
                    epochs=epochs, checkpoints=str(tmp_path), log_interval=2, progress=False,
                    data="memory")  # fmt: skip
    options = {**defaults, **options}
    cfg = TrainConfig(**options).finalize()
    cfg.explicit = set(options)
    training = Training(cfg, SINGLE, hooks=hooks)
    training.run(data=_MemoryData(batch_size), net=net or _tiny_net())
    return training


def _weights(net):
    return [p.data().asnumpy() for p in net.collect_params().values()]


# -- gradient accumulation -------------------------------------------------------------------------
def test_accumulating_two_batches_of_b_updates_like_one_batch_of_2b(tmp_path):
    big = _run(tmp_path / "big", batch_size=8, epochs=2, final_eval="none")
    small = _run(tmp_path / "small", batch_size=4, epochs=2, final_eval="none", accumulate=2)
    assert (big.iters_per_epoch, big.updates_per_epoch) == (3, 3)
    assert (small.iters_per_epoch, small.updates_per_epoch) == (6, 3)
    assert big.global_step == small.global_step == 6
    assert big.trainer._optimizer.num_update == small.trainer._optimizer.num_update == 6
    moved = max(np.abs(a - b).max() for a, b in zip(_weights(big.net), _weights(_tiny_net())))
    assert moved > 1e-2  # the runs trained
    for a, b in zip(_weights(big.net), _weights(small.net)):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5)
    # Metrics stay per image: both runs counted 24 training images per epoch, at similar losses.
    logs = [[json.loads(line) for line in open(tmp_path / n / "googlenet-metrics.jsonl")] for n in ("big", "small")]
    assert [r["train_samples"] for r in logs[0]] == [r["train_samples"] for r in logs[1]] == [24, 24]
    for one, two in zip(*logs):
        for key in ("train_loss", "val_loss", "val_top1"):
            assert two[key] == pytest.approx(one[key], rel=1e-4, abs=1e-6)
    for run in (big, small):
        run.close()


def test_the_lr_scaling_counts_the_accumulated_batch(tmp_path, caplog):
    caplog.set_level("INFO")
    run = _run(tmp_path, batch_size=4, final_eval="none", accumulate=2, lr_scaling="linear", lr_base_batch=16)
    assert run.schedule.base_lr == pytest.approx(0.2 * 8 / 16)
    assert "1 rank(s) x batch 4 x 2 accumulated = 8 per update, 6 steps (3 updates) per epoch" in caplog.text
    run.close()


# -- weight EMA -------------------------------------------------------------------------------------
class _Recorder(TrainingHooks):
    def __init__(self):
        self.before, self.after = None, []

    def before_step(self, net, epoch, step):
        if self.before is None:
            self.before = _weights(net)

    def after_step(self, net, epoch, step):
        self.after.append(_weights(net))


@pytest.mark.parametrize("warmup", [False, True])
def test_the_ema_equals_a_hand_computed_average_of_the_weights_after_each_update(tmp_path, warmup):
    hooks = _Recorder()
    run = _run(tmp_path, batch_size=4, final_eval="none", ema_decay=0.8, ema_warmup=warmup, hooks=hooks)
    expected = [w.astype("float32") for w in hooks.before]
    for n, weights in enumerate(hooks.after):
        d = min(0.8, (1.0 + n) / (10.0 + n)) if warmup else 0.8
        expected = [np.float32(d) * e + np.float32(1 - d) * w for e, w in zip(expected, weights)]
    assert run.ema.updates == len(hooks.after) == 6
    for got, want, raw in zip(run.ema.shadow, expected, hooks.after[-1]):
        np.testing.assert_allclose(got.asnumpy(), want, rtol=1e-6, atol=1e-7)
        assert np.abs(want - raw).max() > 1e-4  # the average is not the raw weights
    run.close()


def test_ema_is_evaluated_checkpointed_and_restored_exactly_on_resume(tmp_path):
    straight = _run(tmp_path / "straight", batch_size=4, epochs=2, ema_decay=0.9)
    records = [json.loads(line) for line in open(tmp_path / "straight" / "googlenet-metrics.jsonl")]
    assert {"val_ema_top1", "val_ema_loss", "val_ema_top5"} <= set(records[0])
    assert records[-1]["event"] == "final_eval" and "ema_top1" in records[-1]
    assert records[-1]["ema_loss"] != records[-1]["loss"]
    meta = json.load(open(tmp_path / "straight" / "googlenet-0002.json"))
    assert meta["ema"]["updates"] == 12 and meta["ema"]["name"] == "googlenet-0002.ema.params"
    saved = mx.nd.load(str(tmp_path / "straight" / "googlenet-0002.ema.params"))
    for name, shadow in zip(straight.ema.names, straight.ema.shadow):
        np.testing.assert_array_equal(saved[name].asnumpy(), shadow.asnumpy())
    # The file is a whole network: it loads with load_parameters.
    net = _tiny_net()
    net.load_parameters(str(tmp_path / "straight" / "googlenet-0002.ema.params"))

    first = _run(tmp_path / "resumed", batch_size=4, epochs=1, ema_decay=0.9)
    first.close()
    resumed = _run(tmp_path / "resumed", batch_size=4, epochs=2, ema_decay=0.9, resume=True)
    assert resumed.ema.updates == 12
    for a, b in zip(straight.ema.shadow, resumed.ema.shadow):
        np.testing.assert_allclose(b.asnumpy(), a.asnumpy(), rtol=0, atol=1e-7)
    straight.close()
    resumed.close()


def test_a_damaged_ema_file_stops_the_resume_with_one_line(tmp_path):
    _run(tmp_path, batch_size=4, epochs=1, ema_decay=0.9, final_eval="none").close()
    with open(ema_path(checkpoint_paths(tmp_path, "googlenet", 1)["params"]), "ab") as f:
        f.write(b"x")
    with pytest.raises(Exception, match="googlenet-0001.ema.params is missing or does not match the digest"):
        _run(tmp_path, batch_size=4, epochs=2, ema_decay=0.9, resume=True)


def test_pruned_checkpoints_take_their_ema_file_with_them(tmp_path):
    _run(tmp_path, batch_size=4, epochs=3, ema_decay=0.9, keep_last=1, final_eval="none").close()
    names = sorted(n for n in os.listdir(tmp_path) if n.endswith("params"))
    assert names == ["googlenet-0003.ema.params", "googlenet-0003.params", "googlenet-best.ema.params",
                     "googlenet-best.params"]


# -- fine-tuning options -----------------------------------------------------------------------------
def test_freezing_the_backbone_leaves_the_classifier_and_puts_bn_in_inference_mode():
    net = googlenet(classes=4, topology="gluoncv", aux_logits=True)
    configure_backbone(net, freeze=True)
    learned = {name for name, p in net._collect_params_with_prefix().items() if p.grad_req != "null"}
    assert learned and all(("output" in n) or ("aux" in n) for n in learned), sorted(learned)
    assert any(n.startswith("aux1.") and "conv" in n for n in learned)  # the aux heads learn (and keep BN in training)
    bns = []
    net.features.apply(lambda b: bns.append(b) if isinstance(b, mx.gluon.nn.BatchNorm) else None)
    assert bns and all(b._kwargs["use_global_stats"] for b in bns)


def test_the_backbone_lr_multiplier_spares_the_classifier():
    net = googlenet(classes=4, topology="gluoncv")
    configure_backbone(net, lr_mult=0.1)
    mults = {name: p.lr_mult for name, p in net._collect_params_with_prefix().items() if p.grad_req != "null"}
    assert {m for n, m in mults.items() if "output" in n} == {1.0}
    assert {m for n, m in mults.items() if "output" not in n} == {0.1}


@pytest.mark.parametrize(
    "options,message",
    [({"freeze_backbone": True}, "--freeze-backbone needs --pretrained"),
     ({"pretrained": "x", "freeze_backbone": True, "backbone_lr_mult": 0.1}, "not both"),
     ({"distill_weight": 1.5}, "--distill-weight must be in [0, 1]"),
     ({"ema_decay": 1.0}, "--ema-decay must be in [0, 1)"),
     ({"accumulate": 0}, "--accumulate must be a positive integer")],
)  # fmt: skip
def test_contradicting_options_are_refused(options, message):
    with pytest.raises(ConfigError) as err:
        TrainConfig(data="x", **options).finalize()
    assert message in str(err.value)


# -- bad --pretrained / --teacher: one line, exit 2 ------------------------------------------------
@pytest.fixture(scope="module")
def teacher_checkpoints(tmp_path_factory, train_tiny_dataset):
    """Checkpoints of random GoogLeNets: one with the tiny dataset's 4 classes, one with 10."""
    from gluon_inception.data import load_dataset

    info = load_dataset(train_tiny_dataset)
    folder = tmp_path_factory.mktemp("teachers")
    for classes, prefix in ((4, "four"), (10, "ten")):
        net = googlenet(classes=classes, topology="gluoncv")
        names = info.classes if classes == 4 else ["c%d" % i for i in range(10)]
        meta = {"model": {"name": "googlenet", "topology": "gluoncv", "classes": classes, "aux_logits": False,
                          "dropout": 0.4}, "data": {"classes": names},
                "preprocessing": Preprocessing(crop_size=32).to_dict(), "config": {}}  # fmt: skip
        save_checkpoint(folder / prefix, "teacher", 1, net, meta=meta)
    return folder


TINY = ["--topology", "gluoncv", "--image-size", "32", "--batch-size", "4", "--augment", "chapter", "--optimizer",
        "adam", "--lr-scaling", "none", "--log-interval", "2", "--no-progress"]  # fmt: skip


def _train(data, tmp_path, *flags):
    cmd = [sys.executable, "-m", "gluon_inception.cli", "train", "--data", data, *TINY,
           "--checkpoints", str(tmp_path / "run"), *flags]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=300)


@pytest.mark.parametrize(
    "flags,expected",
    [(["--pretrained", "no_such_weights"], "--pretrained no_such_weights: "),
     (["--pretrained", "missing/weights.params"], "--pretrained missing/weights.params: "),
     (["--teacher", "no_such_teacher"], "--teacher no_such_teacher: "),
     (["--teacher", "missing/teacher-0001.params"], "--teacher missing/teacher-0001.params: checkpoint"),
     (["--teacher", "{ten}"], "has 10 classes and the dataset 4")],
)  # fmt: skip
def test_bad_pretrained_or_teacher_is_one_line_and_exit_2(flags, expected, train_tiny_dataset, teacher_checkpoints,
                                                          tmp_path):  # fmt: skip
    flags = [f.format(ten=teacher_checkpoints / "ten") for f in flags]
    proc = _train(train_tiny_dataset, tmp_path, "--epochs", "1", *flags)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(tmp_path / "run" / "googlenet-0001.params")


@pytest.mark.slow
def test_distilling_from_a_checkpoint_with_ema_trains_and_reports_both(train_tiny_dataset, teacher_checkpoints,
                                                                      tmp_path):  # fmt: skip
    proc = _train(train_tiny_dataset, tmp_path, "--epochs", "1", "--teacher", str(teacher_checkpoints / "four"),
                  "--distill-temperature", "2", "--ema-decay", "0.9")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    source = teacher_checkpoints / "four" / "teacher-0001.params"
    assert "distilling from checkpoint %s (T 2, weight 0.5)" % source in out
    # The teacher was trained on ImageNet-normalised input; this run's data is mean-subtracted only.
    assert "re-normalised to its own mean/std" in out
    assert "final evaluation of the weight EMA (decay 0.9)" in out
    records = [json.loads(line) for line in open(tmp_path / "run" / "googlenet-metrics.jsonl")]
    assert np.isfinite(records[0]["train_loss"]) and "val_ema_top1" in records[0]
    assert os.path.isfile(tmp_path / "run" / "googlenet-0001.ema.params")


@pytest.mark.slow
def test_fine_tuning_from_a_checkpoint_folder_keeps_its_frozen_backbone(train_tiny_dataset, teacher_checkpoints,
                                                                       tmp_path):  # fmt: skip
    source = teacher_checkpoints / "ten"  # 10 classes; the dataset has 4
    proc = _train(train_tiny_dataset, tmp_path, "--epochs", "1", "--pretrained", str(source), "--freeze-backbone",
                  "--final-eval", "none")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fine-tuning from checkpoint %s: a new 4-class classifier" % (source / "teacher-0001.params") in proc.stdout
    assert "normalisation: the pretrained weights' mean (123.7, 116.3, 103.5)" in proc.stdout
    before = mx.nd.load(str(source / "teacher-0001.params"))
    after = mx.nd.load(str(tmp_path / "run" / "googlenet-0001.params"))
    assert after["output.1.weight"].shape == (4, 1024) and before["output.1.weight"].shape == (10, 1024)
    for key, value in before.items():
        if not key.startswith("output."):
            np.testing.assert_array_equal(after[key].asnumpy(), value.asnumpy(), err_msg=key)
