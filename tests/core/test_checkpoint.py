"""Checkpoints: atomic writes, incomplete ones ignored, clear errors, reloading, optimizer state on any device."""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from gluon_inception import checkpoint, googlenet
from gluon_inception._compat import mx
from gluon_inception.checkpoint import (
    CheckpointError,
    best_checkpoint,
    checkpoint_paths,
    find_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    list_mid_epoch_checkpoints,
    prune_checkpoints,
    prune_mid_epoch_checkpoints,
    restore_trainer_states,
    save_checkpoint,
)
from gluon_inception.errors import NoSpaceError
from gluon_inception.preprocessing import Preprocessing
from gluon_inception.zoo import ModelSourceError, load_checkpoint_model, load_model_from_checkpoint
from tests.support import child_env, kill_when, require


def _small_trainer(optimizer="adam", seed=0):
    mx.random.seed(seed)
    net = mx.gluon.nn.Dense(3, in_units=4)
    net.initialize(mx.init.Xavier())
    trainer = mx.gluon.Trainer(net.collect_params(), optimizer, {"learning_rate": 0.01}, kvstore=None)
    return net, trainer


def _steps(net, trainer, n, seed=1):
    rng = np.random.RandomState(seed)
    for _ in range(n):
        x = mx.nd.array(rng.randn(8, 4))
        with mx.autograd.record():
            loss = (net(x) ** 2).mean()
        loss.backward()
        trainer.step(1)


@pytest.fixture(scope="module")
def tiny_net():
    return googlenet(classes=3, topology="gluoncv")


def _meta(net):
    return {
        "model": {"name": "googlenet", "topology": net.topology, "classes": net.classes, "aux_logits": False},
        "lr": 0.1,
        "metrics": {"val": {"top1": 0.5}},
        "config": {"lr": 0.1},
        "data": {"classes": ["a", "b", "c"]},
        "preprocessing": Preprocessing(mean=[1, 2, 3], std=[1, 1, 1], crop_size=32).to_dict(),
    }


def test_saved_checkpoint_reloads_the_same_network(tmp_path, tiny_net):
    _, trainer = _small_trainer()
    paths = save_checkpoint(tmp_path, "gn", 3, tiny_net, trainer=None, meta=_meta(tiny_net))
    assert sorted(os.listdir(tmp_path)) == ["gn-0003.json", "gn-0003.params"]
    for target in (str(tmp_path), paths["params"], paths["meta"]):
        net, meta = load_model_from_checkpoint(target)
        x = mx.nd.random.uniform(shape=(1, 3, 32, 32))
        np.testing.assert_allclose(net(x).asnumpy(), tiny_net(x).asnumpy(), rtol=1e-5, atol=1e-6)
    assert meta["epoch"] == 3 and meta["model"]["topology"] == "gluoncv"
    assert meta["data"]["classes"] == ["a", "b", "c"] and meta["metrics"]["val"]["top1"] == 0.5


def test_a_checkpoint_carries_its_preprocessing_as_the_one_type(tmp_path, tiny_net):
    save_checkpoint(tmp_path / "a", "gn", 1, tiny_net, meta=_meta(tiny_net))
    loaded = load_checkpoint_model(str(tmp_path / "a"))
    assert loaded.preprocessing == Preprocessing(mean=[1, 2, 3], std=[1, 1, 1], crop_size=32)
    assert loaded.class_names == ["a", "b", "c"]
    meta = _meta(tiny_net)
    del meta["preprocessing"]
    save_checkpoint(tmp_path / "b", "gn", 1, tiny_net, meta=meta)
    with pytest.raises(ModelSourceError, match="records no preprocessing"):
        load_checkpoint_model(str(tmp_path / "b"))


def test_checkpoint_without_its_json_is_never_picked(tmp_path, tiny_net):
    save_checkpoint(tmp_path, "gn", 1, tiny_net, meta=_meta(tiny_net))
    # An interrupted write of epoch 2: the parameters are there, the .json (written last) is not.
    tiny_net.save_parameters(checkpoint_paths(tmp_path, "gn", 2)["params"])
    assert list_checkpoints(tmp_path) == [("gn", 1)]
    assert latest_checkpoint(tmp_path).endswith("gn-0001.params")
    with pytest.raises(CheckpointError, match="interrupted"):
        find_checkpoint(tmp_path, "gn", 2)
    with pytest.raises(CheckpointError, match="incomplete"):
        load_model_from_checkpoint(checkpoint_paths(tmp_path, "gn", 2)["params"])


def test_crash_while_writing_leaves_the_previous_checkpoint_usable(tmp_path, tiny_net):
    _, trainer = _small_trainer()
    save_checkpoint(tmp_path, "gn", 1, tiny_net, trainer, meta=_meta(tiny_net))
    save_checkpoint(tmp_path, "gn", 2, tiny_net, trainer, meta=_meta(tiny_net))

    class Crash(Exception):
        pass

    class CrashingTrainer:
        def save_states(self, path):
            with open(path, "wb") as f:
                f.write(b"half")
            raise Crash()

    # Rewriting epoch 2 crashes after the parameters: its old .json must not vouch for new files.
    with pytest.raises(Crash):
        save_checkpoint(tmp_path, "gn", 2, tiny_net, CrashingTrainer(), meta=_meta(tiny_net))
    assert latest_checkpoint(tmp_path).endswith("gn-0001.params")
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".partial")]
    load_model_from_checkpoint(tmp_path)


def test_missing_start_epoch_lists_the_available_ones(tmp_path, tiny_net):
    for epoch in (1, 2, 5):
        save_checkpoint(tmp_path, "gn", epoch, tiny_net, meta=_meta(tiny_net))
    with pytest.raises(CheckpointError, match="available epochs: 1, 2, 5"):
        find_checkpoint(tmp_path, "gn", 3)
    with pytest.raises(CheckpointError, match="no complete gn-NNNN checkpoints"):
        find_checkpoint(tmp_path / "empty", "gn", 3)


def test_folder_with_several_runs_needs_a_prefix(tmp_path, tiny_net):
    save_checkpoint(tmp_path, "a", 1, tiny_net, meta=_meta(tiny_net))
    save_checkpoint(tmp_path, "b", 2, tiny_net, meta=_meta(tiny_net))
    with pytest.raises(CheckpointError, match="prefixes a, b"):
        latest_checkpoint(tmp_path)
    assert latest_checkpoint(tmp_path, prefix="a").endswith("a-0001.params")


def test_damaged_parameters_are_detected_by_digest(tmp_path, tiny_net):
    paths = save_checkpoint(tmp_path, "gn", 1, tiny_net, meta=_meta(tiny_net))
    with open(paths["params"], "r+b") as f:
        f.seek(-8, os.SEEK_END)
        f.write(b"\x00" * 8)
    with pytest.raises(CheckpointError, match="digest"):
        load_model_from_checkpoint(paths["params"])


def test_not_a_checkpoint_gets_a_clear_error(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_model_from_checkpoint(str(tmp_path / "x.txt"))
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        load_model_from_checkpoint(str(tmp_path))


def test_keep_last_prunes_the_oldest(tmp_path, tiny_net):
    for epoch in range(1, 5):
        save_checkpoint(tmp_path, "gn", epoch, tiny_net, meta=_meta(tiny_net))
    assert prune_checkpoints(tmp_path, "gn", 2) == [1, 2]
    assert list_checkpoints(tmp_path, "gn") == [("gn", 3), ("gn", 4)]
    assert prune_checkpoints(tmp_path, "gn", 0) == []


def test_mid_epoch_and_best_checkpoints_are_apart_from_the_epochs(tmp_path, tiny_net):
    for epoch in (1, 2):
        save_checkpoint(tmp_path, "gn", epoch, tiny_net, meta=_meta(tiny_net))
    save_checkpoint(tmp_path, "gn", 1, tiny_net, meta=_meta(tiny_net), best=True)
    for step in (3, 5):
        paths = save_checkpoint(tmp_path, "gn", 2, tiny_net, meta=_meta(tiny_net), step=step, ranks=b"per-rank")
    assert os.path.basename(paths["params"]) == "gn-0002-step000005.params"
    assert json.loads(open(paths["meta"]).read())["files"]["ranks"]["name"] == "gn-0002-step000005.ranks"
    os.remove(checkpoint_paths(tmp_path, "gn", 2, 3)["ranks"])  # incomplete without its .ranks
    assert list_mid_epoch_checkpoints(tmp_path, "gn") == [(2, 5)]
    assert list_checkpoints(tmp_path, "gn") == [("gn", 1), ("gn", 2)]  # neither kind counts as an epoch
    assert prune_checkpoints(tmp_path, "gn", 1) == [1]
    assert best_checkpoint(tmp_path) == checkpoint_paths(tmp_path, "gn", "best")["params"]  # survives --keep-last
    _, meta = load_model_from_checkpoint(best_checkpoint(tmp_path))
    assert meta["epoch"] == 1
    assert prune_mid_epoch_checkpoints(tmp_path, "gn") == [(2, 5)]
    assert list_mid_epoch_checkpoints(tmp_path, "gn") == [] and best_checkpoint(tmp_path, "other") is None


def test_meta_json_holds_epoch_files_and_versions(tmp_path, tiny_net):
    paths = save_checkpoint(tmp_path, "gn", 7, tiny_net, meta=_meta(tiny_net))
    meta = json.loads(open(paths["meta"]).read())
    assert meta["epoch"] == 7 and meta["format"] == 1 and meta["versions"]["mxnet"] == mx.__version__
    assert len(meta["files"]["params"]["sha256"]) == 64


def _states_saved_on_device(trainer, device_id, tmp_path):
    """The trainer's .states as a rank on GPU ``device_id`` would have written them."""
    path = str(tmp_path / "saved.states")
    trainer.save_states(path)
    states, optimizer = pickle.loads(open(path, "rb").read())
    optimizer._all_index_update_counts = {device_id: optimizer._all_index_update_counts[0]}
    optimizer._index_update_count = optimizer._all_index_update_counts[device_id]
    return pickle.dumps((states, optimizer))


def test_adam_state_restores_on_a_different_device(tmp_path):
    net, trainer = _small_trainer()
    _steps(net, trainer, 3)
    saved = _states_saved_on_device(trainer, device_id=2, tmp_path=tmp_path)
    weights = [p.data().copy() for p in net.collect_params().values()]

    # MXNet's own load_states: the update counts stay under device 2, so this process (device 0)
    # restarts Adam's bias correction at step 1. That is the trap restore_trainer_states avoids.
    with open(tmp_path / "other.states", "wb") as f:
        f.write(saved)
    plain_net, plain = _small_trainer()
    plain.load_states(str(tmp_path / "other.states"))
    _steps(plain_net, plain, 1)
    assert plain._optimizer._index_update_count == {0: 1, 1: 1}

    resumed_net, resumed = _small_trainer(seed=5)
    for param, value in zip(resumed_net.collect_params().values(), weights):
        param.set_data(value)
    restore_trainer_states(resumed, saved)
    assert resumed._optimizer._index_update_count == {0: 3, 1: 3}
    assert resumed._optimizer.num_update == 3

    _steps(net, trainer, 2, seed=9)  # the original run continues ...
    _steps(resumed_net, resumed, 2, seed=9)  # ... and so does the resumed one, identically
    assert resumed._optimizer._index_update_count == {0: 5, 1: 5}
    for original, restored in zip(net.collect_params().values(), resumed_net.collect_params().values()):
        np.testing.assert_allclose(restored.data().asnumpy(), original.data().asnumpy(), rtol=1e-6)


# -- a full disk -------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (needs root); mount -o remount,size=... on it frees space."""
    folder = tmp_path / "disk"
    folder.mkdir()
    require(os.geteuid() == 0, "root, to mount a small tmpfs")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(folder)], check=True)
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=True)


def _dense(units, in_units=1000):
    net = mx.gluon.nn.Dense(units, in_units=in_units)
    net.initialize()
    return net


def test_a_full_disk_is_refused_before_writing_with_the_folder_the_sizes_and_what_to_do(small_disk):
    net = _dense(1000)  # 4 MB of weights: more than the 3 MB disk
    with pytest.raises(NoSpaceError) as info:
        save_checkpoint(small_disk, "gn", 1, net)
    assert info.value.exit_code == 1  # a failure at run time (docs/cli.rst)
    message = str(info.value)
    needed = (1000 * 1000 + 1000) * 4 + (1 << 20)  # weights and bias in float32, plus 1 MB of slack
    assert "not enough space in %s for checkpoint gn-0001: it needs about %.1f MB and %.1f MB are free" % (
        small_disk, needed / 1e6, 3 * 2**20 / 1e6) in message
    assert "--keep-last" in message and "--checkpoints" in message and "--resume" in message
    assert os.listdir(small_disk) == []


def test_a_write_that_still_runs_out_of_space_says_the_same_once_and_leaves_nothing(small_disk, monkeypatch):
    monkeypatch.setattr(checkpoint, "expected_checkpoint_bytes", lambda *args: 1000)  # a wrong estimate
    with pytest.raises(NoSpaceError, match="not enough space in %s for checkpoint gn-0001" % small_disk) as info:
        save_checkpoint(small_disk, "gn", 1, _dense(1000))
    assert info.value.__cause__ is None and info.value.__suppress_context__, "one message, no chained traceback"
    assert os.listdir(small_disk) == []


def test_the_second_checkpoint_is_measured_by_the_first_and_fits_after_space_is_freed(small_disk):
    net = _dense(400)  # 1.6 MB: one checkpoint fits, two do not
    save_checkpoint(small_disk, "gn", 1, net)
    needed = os.path.getsize(checkpoint_paths(small_disk, "gn", 1)["params"]) + (1 << 20)  # measured: the first's
    with pytest.raises(NoSpaceError, match="needs about %.1f MB and 1.5 MB are free" % (needed / 1e6)):
        save_checkpoint(small_disk, "gn", 2, net)
    assert list_checkpoints(small_disk) == [("gn", 1)] and len(os.listdir(small_disk)) == 2
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    save_checkpoint(small_disk, "gn", 2, net)
    assert list_checkpoints(small_disk) == [("gn", 1), ("gn", 2)]


@pytest.mark.slow
def test_training_on_a_full_disk_stops_with_one_line_and_resume_continues_after_freeing_space(
    train_tiny_dataset, tmp_path
):
    disk = tmp_path / "disk"
    disk.mkdir()
    require(os.geteuid() == 0, "root, to mount a small tmpfs")
    # One checkpoint of the tiny run is about 68 MB (parameters + Adam's two moments): room for one.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100m", "tmpfs", str(disk)], check=True)
    try:
        cmd = [sys.executable, "-m", "gluon_inception.cli", "train", "--data", train_tiny_dataset,
               "--topology", "gluoncv", "--image-size", "32", "--batch-size", "8", "--optimizer", "adam",
               "--lr", "0.001", "--lr-scaling", "none", "--no-progress", "--epochs", "2",
               "--checkpoints", str(disk), "--prefix", "tiny"]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=600)
        assert proc.returncode == 1, proc.stderr[-3000:]
        errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
        assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
        assert errors[0].startswith("error: not enough space in %s for checkpoint tiny-0002" % disk)
        assert list_checkpoints(disk) == [("tiny", 1)]
        assert not [n for n in os.listdir(disk) if n.endswith(".partial")]
        subprocess.run(["mount", "-o", "remount,size=300m", str(disk)], check=True)
        proc = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, env=child_env(), timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "tiny-0001.params" in proc.stdout  # resumed from epoch 1
        assert list_checkpoints(disk) == [("tiny", 1), ("tiny", 2)]
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


# -- a killed writer ---------------------------------------------------------------------------
WRITER = """
import sys
from gluon_inception._compat import mx
from gluon_inception.errors import NoSpaceError
from gluon_inception.checkpoint import save_checkpoint
net = mx.gluon.nn.Dense(2000, in_units=2000)
net.initialize()
epoch = 0
while True:
    epoch += 1
    save_checkpoint(sys.argv[1], "gn", epoch, net)
"""


def test_the_leftover_of_a_writer_killed_mid_checkpoint_is_removed_when_training_starts(tmp_path):
    from gluon_inception.dist import Dist
    from gluon_inception.training import TrainConfig, Training

    folder = tmp_path / "ckpt"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], env=child_env())
    kill_when(writer, lambda: folder.is_dir() and [n for n in os.listdir(folder) if n.endswith(".partial")], 60,
              "the writer's temporary file")  # fmt: skip
    assert [n for n in os.listdir(folder) if n.endswith(".partial")], "the kill left a temporary file"
    complete = list_checkpoints(folder)
    run = Training(TrainConfig(checkpoints=str(folder), prefix="gn", data="x", resume=True).finalize(), Dist(None))
    run.close()
    assert not [n for n in os.listdir(folder) if n.endswith(".partial")]
    assert list_checkpoints(folder) == complete, "complete checkpoints are untouched"
