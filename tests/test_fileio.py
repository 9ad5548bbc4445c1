import os

import pytest

from gluon_inception.fileio import atomic_open, atomic_path, file_digest


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
