"""Fine-tuning, weight EMA and gradient accumulation under ``horovodrun -np 3`` on CPU (Gloo).

The pretrained weights are a random-weight 1000-class GoogLeNet served by the loopback server; every
rank registers it as an entry (serve_pretrained.py), as a user's registered entry would be.
"""
import json
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

from gluon_inception import googlenet
from gluon_inception._compat import mx
from gluon_inception.fileio import file_digest
from gluon_inception.preprocessing import Preprocessing
from tests.support import child_env
from tests.training.test_horovod import RANKS, _horovodrun

pytestmark = [pytest.mark.horovod, pytest.mark.slow]

LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "serve_pretrained.py")
ENTRY = "finetune_test_in1k"
FLAGS = [
    "--image-size", "32", "--batch-size", "4", "--augment", "chapter", "--optimizer", "adam", "--lr", "0.001",
    "--lr-scaling", "none", "--epochs", "2", "--log-interval", "2", "--no-progress", "--pretrained", ENTRY,
    "--freeze-backbone", "--ema-decay", "0.9", "--accumulate", "2",
]  # fmt: skip


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A random-weight ImageNet-style GoogLeNet (gluoncv topology) as a .params file: (bytes, arrays)."""
    folder = tmp_path_factory.mktemp("weights")
    mx.random.seed(7)
    net = googlenet(classes=1000, topology="gluoncv")
    path = folder / "random.params"
    net.save_parameters(str(path))
    return path.read_bytes(), {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items()}, file_digest(path)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, train_tiny_dataset):
    """A checkpoint of a random 4-class GoogLeNet on the tiny dataset's classes, to distil from."""
    from gluon_inception.checkpoint import save_checkpoint
    from gluon_inception.data import load_dataset

    folder = tmp_path_factory.mktemp("teacher")
    mx.random.seed(8)
    meta = {"model": {"name": "googlenet", "topology": "gluoncv", "classes": 4, "aux_logits": False, "dropout": 0.4},
            "data": {"classes": load_dataset(train_tiny_dataset).classes}, "config": {},
            "preprocessing": Preprocessing(crop_size=32).to_dict()}  # fmt: skip
    return save_checkpoint(folder, "teacher", 1, googlenet(classes=4, topology="gluoncv"), meta=meta)["params"]


def _launch(server, data, folder, cache, *extra, dump=None):
    url = server.url + "/models/finetune-test.params"
    env = child_env(OMP_NUM_THREADS="1", HOROVOD_FUSION_THRESHOLD="0", HOROVOD_GLOO_TIMEOUT_SECONDS="20",
                    GLUON_INCEPTION_MODELS=str(cache))  # fmt: skip
    for name in ("GLUON_INCEPTION_MIRRORS", "MXNET_GLUON_REPO", "MXNET_HOME"):
        env.pop(name, None)
    if dump:
        env["GLUON_INCEPTION_DEBUG_DUMP"] = str(dump)
    cmd = ["timeout", "-k", "10", "300", _horovodrun(), "-np", str(RANKS), "-H", "localhost:%d" % RANKS,
           sys.executable, LAUNCHER, ENTRY, url, server.sha256, "--", "--data", data, "--checkpoints", str(folder),
           *FLAGS, *extra]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=330)


def _params(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items()}


def test_three_ranks_fine_tune_a_new_classifier_on_a_frozen_backbone_with_ema_accumulation_and_a_teacher(
    server, weights, teacher, train_tiny_dataset, tmp_path
):
    data, served, digest = weights
    server.files["/models/finetune-test.params"] = data
    server.sha256 = digest
    proc = _launch(server, train_tiny_dataset, tmp_path / "ckpt", tmp_path / "cache", "--teacher", teacher,
                   dump=tmp_path / "dump")  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert server.requests["/models/finetune-test.params"] == 1  # rank 0 fetched it; the others got a broadcast
    assert "fine-tuning from pretrained %s: a new 4-class classifier" % ENTRY in out
    assert "frozen (BatchNorm in inference mode)" in out
    assert "3 rank(s) x batch 4 x 2 accumulated = 24 per update, 4 steps (2 updates) per epoch" in out
    assert "distilling from checkpoint %s (T 1, weight 0.5)" % teacher in out

    final = [_params(tmp_path / "dump" / ("rank%d-final.params" % r)) for r in range(RANKS)]
    for rank in (1, 2):  # every rank holds the same network, classifier included
        for key, value in final[0].items():
            np.testing.assert_array_equal(final[rank][key], value, err_msg="rank %d, %s" % (rank, key))
    backbone = [k for k in final[0] if not k.startswith("output.")]
    assert len(backbone) == len(served) - 2
    for key in backbone:  # frozen: weights and BatchNorm statistics are still the served file's
        np.testing.assert_array_equal(final[0][key], served[key], err_msg=key)
    assert final[0]["output.1.weight"].shape == (4, 1024)

    records = [json.loads(line) for line in open(tmp_path / "ckpt" / "googlenet-metrics.jsonl")]
    epochs = [r for r in records if "event" not in r]
    assert [r["train_samples"] for r in epochs] == [RANKS * 4 * 4] * 2  # metrics per image, not per update
    assert epochs[1]["train_loss"] < epochs[0]["train_loss"]
    # The trainer updated once per two micro-batches: 2 updates per epoch (one allreduce each).
    states = pickle.load(open(tmp_path / "dump" / "rank1-final-states.pkl", "rb"))
    assert states["num_update"] == 4 and set(states["counts"].values()) == {4}
    assert all("val_ema_top1" in r for r in epochs) and "ema_top1" in records[-1]
    meta = json.load(open(tmp_path / "ckpt" / "googlenet-0002.json"))
    assert meta["config"]["topology"] == "gluoncv" and meta["ema"]["updates"] == 4
    # The data was normalised as the weights expect (ImageNet statistics), not with the dataset's mean.
    assert meta["preprocessing"] == Preprocessing(crop_size=32).to_dict()
    ema = _params(tmp_path / "ckpt" / "googlenet-0002.ema.params")
    for key in backbone:
        np.testing.assert_array_equal(ema[key], served[key])
    assert np.abs(ema["output.1.weight"] - final[0]["output.1.weight"]).max() > 1e-6

    # Resume after epoch 1: no new download, and the EMA and weights end as in the straight run.
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    for name in os.listdir(tmp_path / "ckpt"):
        if name.startswith("googlenet-0001."):
            shutil.copy(tmp_path / "ckpt" / name, resumed / name)
    proc = _launch(server, train_tiny_dataset, resumed, tmp_path / "cache", "--resume")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert server.requests["/models/finetune-test.params"] == 1
    again = _params(resumed / "googlenet-0002.ema.params")
    for key, value in ema.items():
        np.testing.assert_allclose(again[key], value, rtol=1e-6, atol=1e-7, err_msg=key)
    raw = _params(resumed / "googlenet-0002.params")
    for key, value in final[0].items():
        np.testing.assert_allclose(raw[key], value, rtol=1e-6, atol=1e-7, err_msg=key)


def test_a_bad_teacher_under_three_ranks_is_one_line_from_rank_0_and_exit_2(train_tiny_dataset, tmp_path):
    from tests.training.test_horovod import _rank_errors

    env = child_env(OMP_NUM_THREADS="1", HOROVOD_GLOO_TIMEOUT_SECONDS="20")
    cmd = ["timeout", "-k", "10", "180", _horovodrun(), "-np", str(RANKS), "-H", "localhost:%d" % RANKS,
           sys.executable, "-m", "gluon_inception.cli", "train", "--data", train_tiny_dataset, "--checkpoints",
           str(tmp_path / "ckpt"), *FLAGS[:FLAGS.index("--pretrained")], "--topology", "gluoncv",
           "--teacher", "no_such_teacher"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=210)
    errors, statuses = _rank_errors(proc)
    assert len(errors) == 1 and errors[0].startswith("[0]<stderr>:error: --teacher no_such_teacher: "), proc.stderr
    assert "2" in statuses and set(statuses) <= {"2", "-15", "143"}, proc.stderr
    assert not [line for line in proc.stderr.splitlines() if line.startswith("[") and "Traceback" in line]


TEACHER_CHECK = """
import sys, numpy as np
from gluon_inception._compat import mx
from gluon_inception.training import TrainConfig, Training
cfg = TrainConfig(data=sys.argv[1], teacher=sys.argv[2], topology="gluoncv", image_size=32, batch_size=4,
                  augment="chapter", checkpoints=sys.argv[3], progress=False).finalize()
run = Training(cfg)
run.open_data()
run.build_model()
saved = mx.nd.load(sys.argv[2])
same = all(np.array_equal(p.data().asnumpy(), saved[k].asnumpy())
           for k, p in run.teacher.net._collect_params_with_prefix().items())
print("rank %d teacher equals the checkpoint: %s" % (run.dist.rank, same))
"""


def test_every_rank_distils_from_the_teachers_own_weights(teacher, train_tiny_dataset, tmp_path):
    env = child_env(OMP_NUM_THREADS="1", HOROVOD_GLOO_TIMEOUT_SECONDS="20")
    cmd = ["timeout", "-k", "10", "180", _horovodrun(), "-np", str(RANKS), "-H", "localhost:%d" % RANKS,
           sys.executable, "-c", TEACHER_CHECK, train_tiny_dataset, teacher, str(tmp_path / "ckpt")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=210)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for rank in range(RANKS):  # only rank 0 read the checkpoint; the others got its weights by broadcast
        assert "rank %d teacher equals the checkpoint: True" % rank in proc.stdout, proc.stdout[-3000:]
