"""One run per checkpoint folder: a run holds it from start to close; a second run into it refuses in
one line naming the first; a lock left by a dead run is taken over, one naming another host is not."""
import os
import socket
import subprocess
import sys
import time

import pytest

from gluon_inception import cli
from gluon_inception.dist import Dist
from gluon_inception.fileio import FolderInUseError
from gluon_inception.training import TrainConfig, Training
from gluon_inception.training.engine import RUN_LOCK
from tests.support import child_env


def _cfg(folder):
    return TrainConfig(checkpoints=str(folder), data="x").finalize()


def test_a_second_run_into_a_folder_in_use_refuses_naming_the_first(tmp_path, capsys):
    first = Training(_cfg(tmp_path), Dist(None))
    try:
        with pytest.raises(FolderInUseError) as err:
            Training(_cfg(tmp_path), Dist(None))
        message = str(err.value)
        assert message.startswith("checkpoint folder %s is in use: pid %d on %s since " % (tmp_path, os.getpid(),
                                                                                           socket.gethostname()))
        assert err.value.exit_code == 2
        assert cli.main(["train", "--demo", "--checkpoints", str(tmp_path), "--epochs", "1"]) == 2
        assert capsys.readouterr().err.splitlines() == ["error: " + message]
    finally:
        first.close()
    assert not (tmp_path / RUN_LOCK).exists()
    Training(_cfg(tmp_path), Dist(None)).close()  # free again


def test_a_lock_left_by_a_killed_run_on_this_host_is_taken_over(tmp_path):
    code = ("import os, sys; from gluon_inception.dist import Dist; from gluon_inception.training import TrainConfig, "
            "Training; Training(TrainConfig(checkpoints=sys.argv[1], data='x').finalize(), Dist(None)); "
            "print('held', flush=True); os.kill(os.getpid(), 9)")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                          env=child_env(), timeout=120)  # fmt: skip
    assert proc.returncode == -9 and "held" in proc.stdout, proc.stderr[-2000:]
    assert (tmp_path / RUN_LOCK).read_text().startswith("pid ")  # left behind, naming the dead run
    Training(_cfg(tmp_path), Dist(None)).close()


def test_a_lock_naming_another_host_is_reported_with_its_age(tmp_path):
    lock = tmp_path / RUN_LOCK
    lock.write_text("pid 4242 on gpu-node-17 since 2026-12-04 09:00:00\n")
    old = time.time() - 600
    os.utime(lock, (old, old))
    with pytest.raises(FolderInUseError) as err:
        Training(_cfg(tmp_path), Dist(None))
    assert "pid 4242 on gpu-node-17 since 2026-12-04 09:00:00 (written 10 min ago;" in str(err.value)
    assert "if it has ended, delete %s" % lock in str(err.value)
