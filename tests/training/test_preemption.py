"""Stopping and continuing a run: signals, mid-epoch checkpoints, the best checkpoint, TensorBoard.

The distributed tests run ``horovodrun -np 3`` on CPU and compare with one straight 2-epoch run
(4 steps per epoch): a run stopped in the middle of epoch 2 and resumed must end with the same
weights on every rank and log the same per-epoch metrics. Signals come from the fault-injection
hook (``GLUON_INCEPTION_DEBUG_SIGNAL``: a real ``os.kill`` of the rank's own process after a given
step), so the step they arrive at is known.
"""
import os
import signal
import struct
import subprocess
import sys

import numpy as np
import pytest

from gluon_inception.checkpoint import list_checkpoints, list_mid_epoch_checkpoints, read_checkpoint_meta
from gluon_inception.training import ConfigError, TrainConfig, Training
from gluon_inception.training.preemption import EXIT_INTERRUPTED, EXIT_PREEMPTED, resume_command
from tests.support import ROOT, child_env, require
from tests.training.test_horovod import RANKS, _launch, _metrics, _params, exit_statuses

EXAMPLE = os.path.join(ROOT, "examples", "train_imagenet.py")


def _has_tensorboardx():
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        return False
    return True


def _epochs(folder):
    return [r for r in _metrics(folder) if "event" not in r]


def _assert_same_run(straight, resumed):
    for rank in range(RANKS):
        a = _params(straight / "dump" / ("rank%d-final.params" % rank))
        b = _params(resumed / "dump" / ("rank%d-final.params" % rank))
        for key, value in a.items():
            np.testing.assert_allclose(b[key], value, rtol=0, atol=1e-6, err_msg="rank %d, %s" % (rank, key))
    keys = ("epoch", "lr", "lr_end", "train_loss", "train_top1", "train_top5", "train_samples", "val_top1", "val_loss")
    for a, b in zip(_epochs(straight / "ckpt"), _epochs(resumed / "ckpt"), strict=True):
        assert {k: b[k] for k in keys} == pytest.approx({k: a[k] for k in keys}, rel=1e-9)


@pytest.fixture(scope="module")
def straight(train_tiny_dataset, tmp_path_factory):
    """Two epochs without interruption; --keep-last 1 and (when tensorboardX is there) --tensorboard."""
    base = tmp_path_factory.mktemp("straight")
    extra = ["--keep-last", "1"] + (["--tensorboard", str(base / "tb")] if _has_tensorboardx() else [])
    proc, _ = _launch(train_tiny_dataset, base / "ckpt", *extra, dump=base / "dump")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return base


@pytest.mark.horovod
@pytest.mark.slow
def test_sigterm_on_one_rank_stops_every_rank_at_one_step_and_the_resumed_run_equals_the_straight_one(
    straight, train_tiny_dataset, tmp_path
):
    # SIGTERM reaches rank 1 after step 2 of epoch 2; the ranks agree on it at that step's end.
    proc, _ = _launch(train_tiny_dataset, tmp_path / "ckpt", GLUON_INCEPTION_DEBUG_SIGNAL="2:2:1:%d" % signal.SIGTERM)
    # The first rank to leave has status 75 (horovodrun names it). A rank still shutting down when
    # horovodrun stops the others may be listed as 137 or not at all (see exit_statuses); on a loaded
    # machine both happen. No rank may report anything else (143: killed by a second signal).
    statuses = exit_statuses(proc)
    output = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Exit code: %d" % EXIT_PREEMPTED in proc.stderr, output
    assert str(EXIT_PREEMPTED) in statuses and set(statuses) <= {str(EXIT_PREEMPTED), "137"}, output
    assert "SIGTERM received: stopping every rank after step 2 of epoch 2" in proc.stdout
    errors = [line for line in proc.stderr.splitlines() if "<stderr>:error: " in line]
    assert len(errors) == 1 and errors[0].startswith("[0]") and "googlenet-0001-step000002 written" in errors[0]
    assert "--resume" in proc.stderr and "horovodrun -np 3 python" in proc.stderr
    assert list_mid_epoch_checkpoints(str(tmp_path / "ckpt"), "googlenet") == [(1, 2)]
    meta = read_checkpoint_meta(str(tmp_path / "ckpt" / "googlenet-0001-step000002.params"))
    assert meta["step"] == 2 and meta["position"]["ranks"] == RANKS and meta["global_step"] == 6

    proc, _ = _launch(train_tiny_dataset, tmp_path / "ckpt", "--resume", dump=tmp_path / "dump")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "(epoch 2, after step 2 of 4): lr 0.0001" in proc.stdout
    assert list_mid_epoch_checkpoints(str(tmp_path / "ckpt"), "googlenet") == []  # superseded by epoch 2's
    _assert_same_run(straight, tmp_path)


@pytest.mark.horovod
@pytest.mark.slow
def test_a_signal_inside_an_accumulation_group_stops_at_its_end_and_resumes_exactly(train_tiny_dataset, tmp_path):
    # --accumulate 2 at half the batch: twice the steps, an update every 2. The SIGTERM agreed on
    # after step 3 of epoch 2 falls inside a group (unsaved gradients), so every rank stops after step 4.
    # The weight EMA is on, so its file must be part of the mid-epoch checkpoint too.
    extra = ["--batch-size", "2", "--accumulate", "2", "--ema-decay", "0.9"]
    proc, _ = _launch(train_tiny_dataset, tmp_path / "straight", *extra, dump=tmp_path / "straight-dump")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    proc, _ = _launch(train_tiny_dataset, tmp_path / "ckpt", *extra,
                      GLUON_INCEPTION_DEBUG_SIGNAL="2:3:1:%d" % signal.SIGTERM)  # fmt: skip
    assert "SIGTERM received: stopping every rank after step 4 of epoch 2" in proc.stdout, proc.stdout[-3000:]
    assert list_mid_epoch_checkpoints(str(tmp_path / "ckpt"), "googlenet") == [(1, 4)]
    meta = read_checkpoint_meta(str(tmp_path / "ckpt" / "googlenet-0001-step000004.params"))
    steps = meta["position"]["steps"]
    assert meta["global_step"] == -(-steps // 2) + 2 and meta["ema"] is not None  # updates, not steps
    assert os.path.isfile(tmp_path / "ckpt" / "googlenet-0001-step000004.ema.params")
    proc, _ = _launch(train_tiny_dataset, tmp_path / "ckpt", *extra, "--resume", dump=tmp_path / "dump")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "(epoch 2, after step 4 of %d)" % steps in proc.stdout
    for rank in range(RANKS):
        a = _params(tmp_path / "straight-dump" / ("rank%d-final.params" % rank))
        b = _params(tmp_path / "dump" / ("rank%d-final.params" % rank))
        for key, value in a.items():
            np.testing.assert_allclose(b[key], value, rtol=0, atol=1e-6, err_msg="rank %d, %s" % (rank, key))
    a, b = (read_checkpoint_meta(str(tmp_path / d / "googlenet-0002.params")) for d in ("straight", "ckpt"))
    assert b["ema"]["updates"] == a["ema"]["updates"] == 2 * -(-steps // 2)
    ema = [_params(tmp_path / d / "googlenet-0002.ema.params") for d in ("straight", "ckpt")]
    for key, value in ema[0].items():
        np.testing.assert_allclose(ema[1][key], value, rtol=0, atol=1e-6, err_msg="EMA " + key)


@pytest.mark.horovod
@pytest.mark.slow
def test_after_kill_9_of_a_rank_the_last_timed_checkpoint_resumes_exactly(straight, train_tiny_dataset, tmp_path):
    # A checkpoint at (nearly) every step: 0.0001 minutes is shorter than any step.
    proc, _ = _launch(
        train_tiny_dataset, tmp_path / "ckpt", "--save-every-minutes", "0.0001", GLUON_INCEPTION_DEBUG_KILL="2:3:1"
    )
    assert proc.returncode not in (0, 124)
    mid = list_mid_epoch_checkpoints(str(tmp_path / "ckpt"), "googlenet")
    assert len(mid) == 1 and mid[0][0] == 1 and 1 <= mid[0][1] < 4, mid  # only the newest is kept
    proc, _ = _launch(train_tiny_dataset, tmp_path / "ckpt", "--resume", dump=tmp_path / "dump")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "(epoch 2, after step %d of 4)" % mid[0][1] in proc.stdout  # only the steps after it are lost
    _assert_same_run(straight, tmp_path)


@pytest.mark.horovod
@pytest.mark.slow
def test_a_second_sigterm_exits_at_once_without_a_checkpoint(train_tiny_dataset, tmp_path):
    proc, _ = _launch(
        train_tiny_dataset, tmp_path / "ckpt", GLUON_INCEPTION_DEBUG_SIGNAL="2:2:1:%d:2" % signal.SIGTERM
    )
    assert "[1]<stderr>:gluon-inception: second stop signal (SIGTERM): exiting at once" in proc.stderr
    assert "Process 1 exit with status code 143." in proc.stdout + proc.stderr
    assert list_mid_epoch_checkpoints(str(tmp_path / "ckpt"), "googlenet") == []
    assert list_checkpoints(str(tmp_path / "ckpt")) == [("googlenet", 1)]  # the last good one is intact


@pytest.mark.horovod
@pytest.mark.slow
def test_the_best_checkpoint_survives_keep_last_and_evaluate_best_picks_it(straight, train_tiny_dataset):
    folder = straight / "ckpt"
    epochs = _epochs(folder)
    best_epoch = max(epochs, key=lambda r: (r["val_top1"], -r["epoch"]))["epoch"]  # the first of the best
    assert list_checkpoints(str(folder)) == [("googlenet", 2)]  # --keep-last 1
    meta = read_checkpoint_meta(str(folder / "googlenet-best.params"))
    assert meta["epoch"] == best_epoch and meta["metrics"]["val"]["top1"] == epochs[best_epoch - 1]["val_top1"]
    proc = subprocess.run(
        [sys.executable, "-m", "gluon_inception.cli", "evaluate", "--checkpoint", str(folder), "--best",
         "--data", train_tiny_dataset, "--split", "val", "--batch-size", "4"],
        capture_output=True, text=True, env=child_env(), timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "checkpoint googlenet-best.params" in proc.stdout
    assert "%.2f" % (100 * epochs[best_epoch - 1]["val_top1"]) in proc.stdout


def _event_scalars(folder):
    """``{tag: [(step, value), ...]}`` of every event file under ``folder`` (TFRecord framing, Event protos)."""
    from tensorboardX.proto import event_pb2

    scalars = {}
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as f:
            data = f.read()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


@pytest.mark.horovod
@pytest.mark.slow
def test_tensorboard_event_files_hold_the_scalars_per_interval_and_per_epoch(straight):
    require(_has_tensorboardx(), "tensorboardX (pip install tensorboardX)")
    scalars = _event_scalars(str(straight / "tb"))
    for tag in ("train/loss", "train/top1", "train/top5", "train/lr", "train/img_per_sec"):
        assert [step for step, _ in scalars[tag]] == [2, 4, 6, 8], tag  # every 2 steps (--log-interval 2)
    epochs = _epochs(straight / "ckpt")
    for key in ("train_loss", "train_top1", "val_top1", "lr"):
        logged = scalars["epoch/" + key]
        assert [step for step, _ in logged] == [1, 2]
        assert [v for _, v in logged] == pytest.approx([r[key] for r in epochs], rel=1e-6)
    assert [v for _, v in scalars["train/lr"]] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4])


# -- one process ------------------------------------------------------------------------------
@pytest.mark.slow
def test_sigint_stops_with_130_and_the_resume_command_and_save_now_asks_for_a_checkpoint(
    train_tiny_dataset, tmp_path
):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "SAVE_NOW").write_text("")
    cmd = [sys.executable, EXAMPLE, "--data", train_tiny_dataset, "--checkpoints", str(folder),
           "--topology", "gluoncv", "--image-size", "32", "--batch-size", "4", "--augment", "chapter",
           "--optimizer", "adam", "--epochs", "1", "--no-progress"]  # fmt: skip
    env = child_env(OMP_NUM_THREADS="1", GLUON_INCEPTION_DEBUG_SIGNAL="1:6:0:%d" % signal.SIGINT)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == EXIT_INTERRUPTED, proc.stderr[-3000:]
    # SAVE_NOW seen at step 1, acted on then and removed; SIGINT after step 6 stops after step 6.
    assert "mid-epoch checkpoint %s" % (folder / "googlenet-0000-step000001.params") in proc.stdout
    assert not (folder / "SAVE_NOW").exists()
    assert list_mid_epoch_checkpoints(str(folder), "googlenet") == [(0, 6)]
    lines = proc.stderr.strip().splitlines()
    assert lines[-2].startswith("error: stopped by SIGINT at a step boundary;")
    assert lines[-1].strip() == resume_command(1, [EXAMPLE] + cmd[2:])
    assert lines[-1].strip().startswith("python %s --data" % EXAMPLE) and lines[-1].endswith("--resume")


@pytest.mark.slow
def test_a_signal_at_an_epochs_last_step_stops_after_that_epoch_and_the_run_continues(train_tiny_dataset, tmp_path):
    folder = tmp_path / "ckpt"
    cmd = [sys.executable, EXAMPLE, "--data", train_tiny_dataset, "--checkpoints", str(folder),
           "--topology", "gluoncv", "--image-size", "32", "--batch-size", "4", "--augment", "chapter",
           "--optimizer", "adam", "--epochs", "2", "--save-every", "2", "--no-progress",
           "--final-eval", "none"]  # fmt: skip
    # 14 steps per epoch: SIGTERM after step 14, the epoch's last, is acted on when the epoch has ended.
    env = child_env(OMP_NUM_THREADS="1", GLUON_INCEPTION_DEBUG_SIGNAL="1:14:0:%d" % signal.SIGTERM)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == EXIT_PREEMPTED, proc.stderr[-3000:]
    assert "epoch 1/2  lr" in proc.stdout  # the epoch ended (validated, logged) before the stop
    # --save-every 2 wrote no checkpoint after epoch 1: the stop writes one at step 0 of epoch 2.
    assert list_checkpoints(str(folder)) == [] and list_mid_epoch_checkpoints(str(folder), "googlenet") == [(1, 0)]
    proc = subprocess.run([sys.executable, EXAMPLE, "--checkpoints", str(folder), "--resume"], capture_output=True,
                          text=True, env=child_env(OMP_NUM_THREADS="1"), timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "googlenet-0001-step000000.params (after epoch 1)" in proc.stdout
    assert list_checkpoints(str(folder)) == [("googlenet", 2)]
    assert list_mid_epoch_checkpoints(str(folder), "googlenet") == []
    assert [r["epoch"] for r in _epochs(folder)] == [1, 2]


def test_resume_command_replaces_start_epoch_and_names_the_launcher():
    argv = ["/usr/bin/gluon-inception", "train", "--demo", "--start-epoch=3", "--prefix", "a b"]
    assert resume_command(4, argv) == "horovodrun -np 4 gluon-inception train --demo --prefix 'a b' --resume"


def test_a_missing_tensorboardx_is_one_line_with_the_pip_command(tmp_path, monkeypatch):
    from gluon_inception.dist import Dist

    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails
    cfg = TrainConfig(data="x", checkpoints=str(tmp_path / "c"), tensorboard=str(tmp_path / "tb")).finalize()
    with pytest.raises(ConfigError, match=r"^--tensorboard needs tensorboardX.*pip install tensorboardX"):
        Training(cfg, Dist(None))


def test_two_runs_in_one_process_may_close_in_any_order():
    from gluon_inception.training.preemption import StopSignals

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    first, second = StopSignals(0), StopSignals(0)
    assert first.install() and second.install()
    first.uninstall()  # out of order: the second run still owns the handlers
    assert signal.getsignal(signal.SIGTERM) == second._handler
    second.uninstall()
    assert {s: signal.getsignal(s) for s in before} == before
    assert signal.set_wakeup_fd(-1) == -1  # no wake-up descriptor left behind


def test_a_failed_watchdog_thread_is_raised_in_the_training_thread(monkeypatch):
    import time

    from gluon_inception.training import preemption

    def broken(*args):
        raise OSError("select failed")

    monkeypatch.setattr(preemption.select, "select", broken)
    stops = preemption.StopSignals(0)
    assert stops.install()
    try:
        deadline = time.monotonic() + 10
        while stops.failure is None and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(RuntimeError, match="stop-signal watchdog failed.*select failed"):
            stops.check()
    finally:
        monkeypatch.undo()
        stops.uninstall()


@pytest.mark.horovod
@pytest.mark.slow
def test_sigterm_to_the_launcher_at_ten_random_moments_checkpoints_and_resumes_every_time(train_tiny_dataset,
                                                                                         tmp_path):  # fmt: skip
    """SIGTERM to horovodrun itself, as a scheduler or a Ctrl-C sends it: horovodrun passes it to every
    rank and SIGKILLs them 5 s later, so the stop must reach a step boundary, the checkpoint and the
    exit within that. Ten launches, each resumed from the checkpoint the one before wrote, each
    stopped at a random moment of its training (seeded); then the last resume runs to the end."""
    import random
    import time

    from tests.training.test_horovod import FLAGS, _horovodrun

    rng = random.Random(2026)
    folder = tmp_path / "ckpt"
    at = FLAGS.index("--epochs")
    flags = FLAGS[:at] + FLAGS[at + 2 :] + ["--epochs", "12"]
    env = child_env(OMP_NUM_THREADS="1", HOROVOD_GLOO_TIMEOUT_SECONDS="20")

    def launch(i, *extra):
        log = tmp_path / ("run%d.log" % i)
        cmd = [_horovodrun(), "-np", str(RANKS), "-H", "localhost:%d" % RANKS, sys.executable, EXAMPLE, "--data",
               train_tiny_dataset, "--checkpoints", str(folder), *flags, *extra]  # fmt: skip
        with open(log, "w") as out:
            return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env), log

    written, took = None, []
    for i in range(10):
        proc, log = launch(i, *(["--resume"] if i else []))
        deadline = time.monotonic() + 180
        while "optimizer: " not in log.read_text():  # handlers installed, training under way
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        time.sleep(rng.uniform(0.2, 2.5))
        assert proc.poll() is None, "run %d ended before its signal: %s" % (i, log.read_text()[-2000:])
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        took.append(time.monotonic() - start)
        text = log.read_text()
        if written is not None:
            assert "resumed from %s.params" % written in text, text[-3000:]
        # horovodrun's middleman SIGSTOPs each rank's shell once the rank is gone; a shell stopped before
        # it could exit is SIGKILLed 5 s later (137), and its status may be reaped by psutil instead of
        # Popen (then nothing is printed for it). Seen in CI on Python 3.13: "75, 75, 137" and no status
        # at all, each time with rank 0's stop line and a checkpoint the next launch resumed from.
        # So: 75 from every rank horovodrun names, or that race; the ranks' own evidence is checked below.
        statuses = [line.split()[-1].rstrip(".") for line in text.splitlines() if " exit with status code " in line]
        assert set(statuses) <= {str(EXIT_PREEMPTED), "137"}, (i, statuses, text[-3000:])
        assert str(EXIT_PREEMPTED) in statuses or not statuses, (i, statuses, text[-3000:])
        errors = [line for line in text.splitlines() if "<stderr>:error: stopped by SIGTERM" in line]
        assert len(errors) == 1 and errors[0].startswith("[0]"), text[-3000:]
        written = errors[0].split("; ")[1].rsplit(" written", 1)[0]
        assert os.path.isfile(written + ".params") and os.path.isfile(written + ".json"), written
    print("SIGTERM to horovodrun -> every rank gone: %s s" % ", ".join("%.1f" % t for t in took))
    proc, log = launch(10, "--resume")
    assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
    assert "resumed from %s.params" % written in log.read_text()
    assert list_checkpoints(str(folder))[-1] == ("googlenet", 12)
