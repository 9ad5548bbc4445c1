"""Distributed training with real processes: ``horovodrun -np 3`` on CPU (Gloo).

One straight 2-epoch run is shared by the tests; the resume and NaN tests restart from a copy of
its epoch-1 checkpoint, as a user would after stopping the job.
"""
import json
import os
import pickle
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from gluon_inception._compat import mx
from gluon_inception.checkpoint import latest_checkpoint, list_checkpoints
from gluon_inception.zoo import load_model_from_checkpoint
from tests.support import ROOT, child_env, require

pytestmark = [pytest.mark.horovod, pytest.mark.slow]

EXAMPLE = os.path.join(ROOT, "examples", "train_imagenet.py")
RANKS = 3
# Adam with a step at epoch 1, so that a resume must continue both the lr and Adam's moments; two
# decoding streams per rank, so that an exact resume is shown with several decoding threads.
FLAGS = [
    "--topology", "gluoncv", "--image-size", "32", "--batch-size", "4", "--augment", "chapter",
    "--optimizer", "adam", "--lr", "0.001", "--lr-scaling", "none", "--lr-steps", "1", "--lr-factor", "0.1",
    "--epochs", "2", "--log-interval", "2", "--no-progress", "--data-threads", "2",
]  # fmt: skip


def _horovodrun():
    path = shutil.which("horovodrun") or os.path.join(os.path.dirname(sys.executable), "horovodrun")
    require(os.path.isfile(path), "horovodrun (pip install horovod built with MXNet and Gloo)")
    try:
        import horovod.mxnet  # noqa: F401
    except ImportError:
        require(False, "horovod.mxnet (Horovod built with HOROVOD_WITH_MXNET=1)")
    return path


def _launch(data, checkpoints, *extra, dump=None, timeout=240, **env_extra):
    """Run the example under horovodrun; returns (CompletedProcess, seconds)."""
    env = child_env()
    # Bitwise-reproducible arithmetic, so straight and resumed runs can be compared exactly:
    # one thread per rank (oneDNN's reductions) and no tensor fusion (allreduce order).
    env.update(OMP_NUM_THREADS="1", HOROVOD_FUSION_THRESHOLD="0", HOROVOD_GLOO_TIMEOUT_SECONDS="20")
    if dump:
        env["GLUON_INCEPTION_DEBUG_DUMP"] = str(dump)
    env.update(env_extra)
    cmd = ["timeout", "-k", "10", str(timeout), _horovodrun(), "-np", str(RANKS), "-H", "localhost:%d" % RANKS,
           sys.executable, EXAMPLE, "--data", data, "--checkpoints", str(checkpoints), *FLAGS, *extra]  # fmt: skip
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout + 30)
    return proc, time.time() - start


def _params(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items()}


def _states(path):
    with open(path, "rb") as f:
        return pickle.load(f)


def _metrics(folder):
    with open(os.path.join(str(folder), "googlenet-metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def straight(train_tiny_dataset, tmp_path_factory):
    base = tmp_path_factory.mktemp("straight")
    proc, _ = _launch(train_tiny_dataset, base / "ckpt", dump=base / "dump")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return base


def _copy_epoch(source, epoch, target):
    """The run's folder as it was when stopped after ``epoch`` (the metrics log runs further)."""
    target.mkdir()
    for name in os.listdir(source):
        if name.startswith("googlenet-%04d." % epoch) or name == "googlenet-metrics.jsonl":
            shutil.copy(os.path.join(source, name), target / name)


def test_three_ranks_end_with_identical_weights_and_the_loss_goes_down(straight):
    final = [_params(straight / "dump" / ("rank%d-final.params" % r)) for r in range(RANKS)]
    for rank in (1, 2):
        for key, value in final[0].items():
            # Learned weights and BatchNorm running statistics alike.
            np.testing.assert_array_equal(final[rank][key], value, err_msg="rank %d, %s" % (rank, key))
    records = _metrics(straight / "ckpt")
    epochs = [r for r in records if "event" not in r]
    assert epochs[1]["train_loss"] < epochs[0]["train_loss"]
    # Uneven shards (train 19/19/18, test 6/6/4) and still every rank ran 4 steps of 4 images ...
    assert [r["train_samples"] for r in epochs] == [RANKS * 4 * 4] * 2
    # ... and every validation/test image was counted exactly once over the ranks.
    assert [r["val_samples"] for r in epochs] == [12, 12]
    assert records[-1]["event"] == "final_eval" and records[-1]["samples"] == 16
    saved = _params(latest_checkpoint(str(straight / "ckpt")))
    for key, value in final[0].items():
        np.testing.assert_array_equal(saved[key], value)


def test_resume_equals_the_straight_run_with_lr_and_adam_state_on_every_rank(straight, train_tiny_dataset, tmp_path):
    _copy_epoch(straight / "ckpt", 1, tmp_path / "ckpt")
    proc, _ = _launch(train_tiny_dataset, tmp_path / "ckpt", "--resume", dump=tmp_path / "dump")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "resumed from" in proc.stdout and "lr 0.0001 (continuing the schedule)" in proc.stdout

    # Every rank restored rank 0's Adam state after epoch 1: moments and step count (bias correction).
    with open(straight / "ckpt" / "googlenet-0001.states", "rb") as f:
        saved_states, saved_optimizer = pickle.loads(f.read())
    for rank in range(RANKS):
        restored = _states(tmp_path / "dump" / ("rank%d-restored-states.pkl" % rank))
        assert restored["optimizer"] == "Adam" and restored["num_update"] == 4
        assert set(restored["counts"].values()) == {4}, "rank %d restarted Adam's bias correction" % rank
        for index, (mean, var) in saved_states.items():
            np.testing.assert_array_equal(restored["states"][index][0], mean.asnumpy())
            np.testing.assert_array_equal(restored["states"][index][1], var.asnumpy())

    # The lr schedule continued: epoch 2 ran at 1e-4 in both runs.
    straight_epochs = [r for r in _metrics(straight / "ckpt") if "event" not in r]
    resumed_epochs = [r for r in _metrics(tmp_path / "ckpt") if "event" not in r]
    assert [r["epoch"] for r in resumed_epochs] == [1, 2]  # the old epoch-2 line was replaced
    assert resumed_epochs[1]["lr"] == pytest.approx(straight_epochs[1]["lr"]) == pytest.approx(1e-4)

    # 1 epoch + resume + 1 epoch == 2 epochs straight, on every rank, weights and optimizer state.
    for rank in range(RANKS):
        straight_params = _params(straight / "dump" / ("rank%d-final.params" % rank))
        resumed_params = _params(tmp_path / "dump" / ("rank%d-final.params" % rank))
        for key, value in straight_params.items():
            np.testing.assert_allclose(resumed_params[key], value, rtol=1e-6, atol=1e-7, err_msg=key)
        a = _states(straight / "dump" / ("rank%d-final-states.pkl" % rank))
        b = _states(tmp_path / "dump" / ("rank%d-final-states.pkl" % rank))
        assert a["counts"] == b["counts"] and a["num_update"] == b["num_update"] == 8
        for index in a["states"]:
            for x, y in zip(a["states"][index], b["states"][index]):
                np.testing.assert_allclose(y, x, rtol=1e-6, atol=1e-9)


def test_nan_loss_on_one_rank_stops_every_rank_and_keeps_the_last_checkpoint(
    straight, train_tiny_dataset, tmp_path
):
    _copy_epoch(straight / "ckpt", 1, tmp_path / "ckpt")
    proc, seconds = _launch(
        train_tiny_dataset, tmp_path / "ckpt", "--resume", GLUON_INCEPTION_DEBUG_NAN="2:2:1", timeout=180
    )
    assert proc.returncode != 0
    assert "non-finite training loss (NaN or inf) in epoch 2, step 2 of 4" in proc.stderr
    assert "googlenet-0001" in proc.stderr  # names the last good checkpoint
    # (horovodrun itself prints a traceback when a rank exits non-zero; the ranks must not)
    assert not [line for line in proc.stderr.splitlines() if line.startswith("[") and "Traceback" in line]
    assert list_checkpoints(str(tmp_path / "ckpt")) == [("googlenet", 1)]
    net, meta = load_model_from_checkpoint(str(tmp_path / "ckpt"))  # intact: digest checked
    assert meta["epoch"] == 1
    assert all(np.isfinite(p.data().asnumpy()).all() for p in net.collect_params().values())


def test_a_killed_rank_ends_the_whole_job_promptly_with_an_error(train_tiny_dataset, tmp_path):
    proc, seconds = _launch(
        train_tiny_dataset, tmp_path / "ckpt", "--epochs", "3", GLUON_INCEPTION_DEBUG_KILL="1:2:1", timeout=150
    )
    assert proc.returncode != 0
    assert proc.returncode != 124, "the job hung until the test's timeout killed it"
    assert "exited with non-zero status" in proc.stderr
    assert seconds < 120
    assert list_checkpoints(str(tmp_path / "ckpt")) == []


def test_after_the_writer_rank_is_killed_mid_checkpoint_the_next_start_leaves_no_partial_file(
    train_tiny_dataset, tmp_path
):
    import re
    import signal

    folder = tmp_path / "ckpt"
    env = child_env(OMP_NUM_THREADS="1", HOROVOD_GLOO_TIMEOUT_SECONDS="20")
    cmd = ["timeout", "-k", "10", "240", _horovodrun(), "-np", str(RANKS), "-H", "localhost:%d" % RANKS,
           sys.executable, EXAMPLE, "--data", train_tiny_dataset, "--checkpoints", str(folder), *FLAGS]  # fmt: skip
    job = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    killed = None
    try:
        deadline = time.monotonic() + 240
        while killed is None and job.poll() is None and time.monotonic() < deadline:
            names = os.listdir(folder) if folder.is_dir() else []
            for name in names:
                # .googlenet-0001.params.PID@HOST.XXXX.partial: rank 0 is writing; SIGKILL it mid-write
                match = re.match(r"^\..+\.(\d+)@[^.]+\..+\.partial$", name)
                if match:
                    killed = int(match.group(1))
                    os.kill(killed, signal.SIGKILL)
                    break
            time.sleep(0.002)
        _, stderr = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert killed is not None, "never saw rank 0 write a checkpoint"
    assert job.returncode not in (0, 124), stderr[-3000:]
    assert [n for n in os.listdir(folder) if n.endswith(".partial")], "the kill left a temporary file"

    proc, _ = _launch(train_tiny_dataset, folder, "--resume", timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not [n for n in os.listdir(folder) if n.endswith(".partial")]
    assert list_checkpoints(str(folder))[-1] == ("googlenet", 2)


def exit_statuses(proc):
    """The non-zero exit statuses horovodrun printed for its ranks, sorted (as strings).

    Only the first rank to leave is sure to be listed. horovodrun then stops the others (SIGTERM;
    SIGSTOP and SIGKILL 5 s later, status 137), and a rank that exits by itself meanwhile is reaped
    twice, by horovodrun's terminating thread (psutil) and by its ``Popen.wait``; when psutil wins,
    ``Popen.wait`` sees status 0 and horovodrun prints nothing for that rank. Seen with a script
    that can only exit 75 (ignore SIGTERM, sleep 2 s, exit 75): 3 ranks, 2 lines in 2 of 6 runs.
    So callers must not require one line per rank.
    """
    lines = (proc.stdout + proc.stderr).splitlines()
    return sorted(line.split()[-1].rstrip(".") for line in lines if " exit with status code " in line)


def _rank_errors(proc):
    """The ``error:`` lines the ranks printed, and each rank's exit status as horovodrun reports it."""
    errors = [line for line in proc.stderr.splitlines() if "<stderr>:error: " in line]
    return errors, exit_statuses(proc)


@pytest.mark.parametrize("case", ["jpeg-folder", "too-small"])
def test_a_usage_error_is_one_line_from_rank_0_and_exit_2_on_every_rank(case, train_tiny_dataset, tmp_path):
    if case == "jpeg-folder":
        from PIL import Image

        data = tmp_path / "jpegs"
        data.mkdir()
        for i in range(3):
            Image.new("RGB", (40, 40), (i * 80, 0, 0)).save(data / ("%d.jpg" % i))
        data, extra, expected = str(data), (), "has no dataset.json"
    else:  # 56 training images over 3 ranks: 18 or 19 per shard, fewer than one batch of 32
        data, extra, expected = train_tiny_dataset, ("--batch-size", "32"), "fewer than one batch of 32"
    proc, _ = _launch(data, tmp_path / "ckpt", *extra, timeout=180)
    errors, statuses = _rank_errors(proc)
    assert len(errors) == 1 and errors[0].startswith("[0]<stderr>:error: ") and expected in errors[0], proc.stderr
    assert "2" in statuses and set(statuses) <= {"2", "-15", "143"}, proc.stderr  # SIGTERM from horovodrun first
    assert not [line for line in proc.stderr.splitlines() if line.startswith("[") and "Traceback" in line]
    assert not os.path.exists(tmp_path / "ckpt" / "googlenet-0001.params")


def _one_ending(proc, code, expected):
    """Every rank ended as rank 0 did: one ``error:`` line (rank 0's), status ``code`` from the ranks
    horovodrun lists (or its SIGTERM of a rank still leaving), and no traceback from any rank."""
    errors, statuses = _rank_errors(proc)
    assert len(errors) == 1 and errors[0].startswith("[0]<stderr>:error: ") and expected in errors[0], proc.stderr
    assert str(code) in statuses and set(statuses) <= {str(code), "-15", "143"}, (statuses, proc.stderr[-3000:])
    assert "Exit code: %d" % code in proc.stdout + proc.stderr or statuses[0] == str(code)
    ranks = [line for line in proc.stderr.splitlines() if line.startswith("[")]  # horovodrun's own traceback aside
    assert not [line for line in ranks if "Traceback" in line or "Horovod has been shut down" in line], ranks[-30:]


def test_an_error_only_rank_0_meets_ends_every_rank_with_its_line_and_status(train_tiny_dataset, tmp_path):
    """Rank 0 alone checks the data, reads a resumed checkpoint and writes checkpoints: its failures
    reach the other ranks through Dist.agree, not through a Horovod shutdown."""
    from tests.data.test_prepare import _damage_one_jpeg

    # A damaged record under --verify-data (rank 0 checks): a usage error, 2.
    data = tmp_path / "data"
    shutil.copytree(train_tiny_dataset, data)
    image = _damage_one_jpeg(str(data))
    proc, _ = _launch(str(data), tmp_path / "a", "--verify-data", "--epochs", "1", timeout=180)
    _one_ending(proc, 2, "1 damaged record(s), the image(s) %s" % image)

    # A --checkpoints path that cannot be a folder (under a file): an OS error, 1.
    (tmp_path / "file").write_text("not a folder")
    proc, _ = _launch(train_tiny_dataset, tmp_path / "file" / "ckpt", "--epochs", "1", timeout=180)
    _one_ending(proc, 1, str(tmp_path / "file"))

    # A damaged .params given to --resume (rank 0 reads it): 2.
    proc, _ = _launch(train_tiny_dataset, tmp_path / "c", "--epochs", "1", timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    params = tmp_path / "c" / "googlenet-0001.params"
    params.write_bytes(params.read_bytes()[: params.stat().st_size // 2])
    proc, _ = _launch(train_tiny_dataset, tmp_path / "c", "--epochs", "2", "--resume", timeout=180)
    _one_ending(proc, 2, "googlenet-0001")


def test_a_bad_option_is_printed_once_not_once_per_rank(train_tiny_dataset, tmp_path):
    proc, _ = _launch(train_tiny_dataset, tmp_path / "ckpt", "--optimizer", "nope", timeout=120)
    assert proc.stderr.count("invalid choice: 'nope'") == 1, proc.stderr
    assert "2" in exit_statuses(proc), proc.stderr
