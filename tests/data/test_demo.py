"""The embedded demo dataset builds offline through the normal prepare path."""
import os

import numpy as np
import pytest

from gluon_inception.data import build_train_iter, build_val_iter, load_dataset, prepare_demo
from gluon_inception.data import prepare as prepare_module


@pytest.mark.slow
def test_demo_dataset_builds_offline_and_rebuilding_is_skipped(tmp_path, monkeypatch):
    root = prepare_demo(str(tmp_path / "demo"), workers=2)
    info = load_dataset(root)
    assert info.classes == [str(d) for d in range(10)] and info.image_size == 64
    assert [info.split(n).count for n in ("train", "val", "test")] == [1297, 200, 300]
    assert info.meta["splits"]["test"]["class_counts"] == [30] * 10
    assert info.meta["splits"]["val"]["class_counts"] == [20] * 10
    assert info.meta["skipped"] == 0 and info.meta["builder"] == "mxnet tools/im2rec.py"
    assert all(40 < m < 140 for m in info.mean) and all(s > 30 for s in info.std)
    assert len({round(m, 3) for m in info.mean}) == 3, "coloured digits: the channels differ"
    assert os.path.isdir(os.path.join(root, "source", "train", "7"))

    monkeypatch.setattr(prepare_module, "run_im2rec", lambda *a, **k: pytest.fail("rebuilt a complete demo"))
    assert prepare_demo(root) == root

    train = build_train_iter(info.split("train"), 64, (3, 56, 56), rand_mirror=False)
    batch = next(iter(train))
    assert batch.data[0].shape == (64, 3, 56, 56) and len(train) == 1297 // 64
    test = build_val_iter(info.split("test"), 128, (3, 56, 56), resize=64)
    labels = np.concatenate([b.label[0].asnumpy()[: 128 - b.pad] for b in test])
    assert np.bincount(labels.astype(int)).tolist() == [30] * 10
