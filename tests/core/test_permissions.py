"""Files the package writes follow the process umask, as ``open()`` would: a dataset, a checkpoint or a
weight mirror on a shared file system is readable by the people the folder is shared with."""
import os
import stat

import pytest

from gluon_inception import googlenet
from gluon_inception.checkpoint import save_checkpoint
from gluon_inception.data import prepare_dataset
from gluon_inception.fileio import atomic_open, atomic_path, current_umask
from gluon_inception.weights import store
from tests.support.data_utils import write_coloured_squares
from tests.weights.test_store import PATH, PAYLOAD, tiny_entry


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _modes(folder):
    """``{relative path: permission bits}`` of every file under ``folder``."""
    found = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(dirpath, name)
            found[os.path.relpath(path, folder)] = stat.S_IMODE(os.stat(path).st_mode)
    return found


def test_current_umask_reads_without_changing_it(umask):
    assert current_umask() == umask and current_umask() == umask


def test_atomic_writes_get_the_mode_open_would_give(tmp_path, umask):
    with atomic_open(tmp_path / "a.json", "w") as f:
        f.write("{}")
    with atomic_path(tmp_path / "b.bin") as tmp:
        with open(tmp, "wb") as f:
            f.write(b"x")
    with open(tmp_path / "plain.txt", "w") as f:
        f.write("the reference")
    assert set(_modes(tmp_path).values()) == {0o666 & ~umask}


def test_a_prepared_dataset_and_a_checkpoint_are_readable_under_umask_022(tmp_path):
    old = os.umask(0o022)
    try:
        write_coloured_squares(str(tmp_path / "src"), per_class=3, seed=1)
        prepare_dataset(str(tmp_path / "src"), str(tmp_path / "data"), val_per_class=1, image_size=24, workers=1,
                        stats_images=0)  # fmt: skip
        net = googlenet(classes=4, topology="gluoncv")
        save_checkpoint(str(tmp_path / "ckpt"), "run", 1, net, meta={"config": {}})
    finally:
        os.umask(old)
    data, ckpt = _modes(tmp_path / "data"), _modes(tmp_path / "ckpt")
    assert any(p.endswith(".lst") for p in data) and "dataset.json" in data and "run-0001.params" in ckpt, (data, ckpt)
    assert {p: m for p, m in {**data, **ckpt}.items() if m != 0o644} == {}


@pytest.mark.usefixtures("no_store_environment")
def test_cached_and_mirrored_weights_are_readable_under_umask_022(tmp_path, server):
    server.files[PATH] = PAYLOAD
    old = os.umask(0o022)
    try:
        cached = store.fetch(tiny_entry(urls=(server.url + PATH,)), root=str(tmp_path / "cache"))
        store.mirror(tiny_entry(urls=(server.url + PATH,)), str(tmp_path / "mirror"), root=str(tmp_path / "cache"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(cached).st_mode) == 0o644
    mirrored = _modes(tmp_path / "mirror")
    assert mirrored and set(mirrored.values()) == {0o644}, mirrored
