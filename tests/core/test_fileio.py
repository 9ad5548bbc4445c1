import os

import pytest

from gluon_inception.fileio import atomic_open, atomic_path, file_digest
from tests.support import child_env


def test_atomic_open_replaces_only_on_success(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"], "no temporary file is left behind"
    with atomic_open(target) as f:
        f.write("new")
    assert target.read_text() == "new"


def test_atomic_path_and_digest(tmp_path):
    with atomic_path(tmp_path / "sub" / "b.bin") as tmp:
        with open(tmp, "wb") as f:
            f.write(b"abc")
    assert file_digest(tmp_path / "sub" / "b.bin", "sha1") == "a9993e364706816aba3e25717850c26c9cd0d89d"


def test_temporary_files_name_their_writer_and_only_abandoned_ones_are_removed(tmp_path):
    from gluon_inception.fileio import partial_prefix, remove_stale_partials

    with atomic_path(tmp_path / "w.params") as tmp:
        assert os.path.basename(tmp).startswith(".w.params.%d@" % os.getpid())
        assert remove_stale_partials(tmp_path) == [], "a file this live process writes stays"
    dead = partial_prefix("w.params").replace(".%d@" % os.getpid(), ".999999999@") + "ab_c.zip.partial"
    foreign_new = ".w.params.1@elsewhere.x1.partial"
    foreign_old = ".w.params.x2.partial"  # no owner in the name: judged by age
    for name in (dead, foreign_new, foreign_old):
        (tmp_path / name).write_bytes(b"x")
    os.utime(tmp_path / foreign_old, (1, 1))
    removed = sorted(os.path.basename(p) for p in remove_stale_partials(tmp_path))
    assert removed == sorted([dead, foreign_old])
    assert sorted(os.listdir(tmp_path)) == sorted(["w.params", foreign_new])


def test_a_waiter_is_told_who_holds_the_lock_and_times_out_naming_it(tmp_path, caplog):
    import logging
    import subprocess
    import sys

    from gluon_inception.fileio import LockTimeoutError, file_lock

    lock = str(tmp_path / "job.lock")
    code = "import sys, time\nfrom gluon_inception.fileio import file_lock\nwith file_lock(sys.argv[1]):\n" \
           "    print('locked', flush=True)\n    time.sleep(120)\n"
    holder = subprocess.Popen([sys.executable, "-c", code, lock], stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        with caplog.at_level(logging.INFO, logger="gluon_inception.fileio"):
            with pytest.raises(LockTimeoutError, match="held by pid %d on .*wait longer" % holder.pid):
                with file_lock(lock, timeout=0.3, what="the job", hint="wait longer."):
                    pass
        assert "waiting for the job: pid %d on " % holder.pid in caplog.text
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    with file_lock(lock, timeout=30):  # the kernel released the killed holder's lock
        pass
    assert not os.path.exists(lock)
