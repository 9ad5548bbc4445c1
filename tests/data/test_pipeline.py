"""Pipelines: even sharding over ranks, padding, presets, and record files checked before MXNet sees them."""
import json
import os
import shutil

import numpy as np
import pytest

from gluon_inception._compat import mx
from gluon_inception.data import (
    RecordFileError,
    augmentation,
    build_train_iter,
    build_val_iter,
    check_record_file,
    shard_sizes,
)
from tests.support.data_utils import FakeDist, write_numbered_records

MEAN = (0.0, 0.0, 0.0)
COUNT = 22  # three ranks: shards of 8, 8 and 6 records


@pytest.fixture(scope="module")
def numbered(tmp_path_factory):
    rec, _ = write_numbered_records(str(tmp_path_factory.mktemp("numbered") / "numbered.rec"), COUNT)
    return rec


def _epoch(it):
    """(labels of real samples, batches, pads) of one epoch."""
    labels, pads, batches = [], [], 0
    for batch in it:
        batches += 1
        assert batch.data[0].shape == (it.batch_size, 3, 12, 12)
        real = it.batch_size - batch.pad
        labels.extend(batch.label[0].asnumpy()[:real].astype(int).tolist())
        pads.append(batch.pad)
    return labels, batches, pads


def test_shard_sizes_follow_mxnet_indexed_split():
    assert shard_sizes(22, 3) == [8, 8, 6]
    assert shard_sizes(10, 3) == [4, 4, 2]
    assert shard_sizes(4, 3) == [2, 2, 0]


def test_val_shards_for_three_ranks_are_disjoint_cover_the_split_and_have_equal_batches(numbered):
    iters = [build_val_iter(numbered, 3, (3, 12, 12), resize=12, mean=MEAN, dist=FakeDist(r, 3)) for r in range(3)]
    assert [len(it) for it in iters] == [3, 3, 3]
    assert [it.num_samples for it in iters] == [8, 8, 6]
    for epoch in range(2):
        seen = []
        for it in iters:
            labels, batches, pads = _epoch(it)
            assert batches == len(it)
            assert len(labels) == it.num_samples
            seen.append(labels)
            it.reset()
        flat = [x for labels in seen for x in labels]
        assert sorted(flat) == list(range(COUNT)), "every record exactly once across ranks (epoch %d)" % epoch
        assert all(set(a).isdisjoint(b) for i, a in enumerate(seen) for b in seen[i + 1:])
    # rank 2 has 6 records: two real batches and one batch that is all padding
    assert _epoch(iters[2])[2] == [0, 0, 3]
    assert _epoch(iters[0])[2] == [0, 0, 1]


def test_train_shards_run_the_same_full_batches_reshuffled_each_epoch(numbered):
    iters = [build_train_iter(numbered, 3, (3, 12, 12), mean=MEAN, dist=FakeDist(r, 3), seed=5,
                              random_resized_crop=False, rand_mirror=False) for r in range(3)]
    assert [len(it) for it in iters] == [2, 2, 2], "floor(smallest shard 6 / batch 3) on every rank"
    shards = [set(range(0, 8)), set(range(8, 16)), set(range(16, 22))]
    orders = []
    for _ in range(3):
        for r, it in enumerate(iters):
            labels, batches, pads = _epoch(it)
            assert batches == 2 and pads == [0, 0] and len(labels) == it.num_samples == 6
            assert len(set(labels)) == 6 and set(labels) <= shards[r], "no duplicates, only this rank's shard"
            if r == 0:
                orders.append(labels)
        for it in iters:
            it.reset()
    assert len({tuple(o) for o in orders}) > 1, "each epoch draws a new shuffle"


def test_iterating_again_after_an_epoch_starts_the_next_one(numbered):
    it = build_val_iter(numbered, 5, (3, 12, 12), resize=12, mean=MEAN)
    first = _epoch(it)[0]
    second = _epoch(it)[0]  # no explicit reset()
    assert first == second == list(range(COUNT))
    assert len(it) == 5 and _epoch(it)[2][-1] == 3


def test_padding_rows_hold_real_samples_not_garbage(numbered):
    it = build_val_iter(numbered, 4, (3, 12, 12), resize=12, mean=MEAN, std=(1, 1, 1))
    # copy what we keep: the iterator reuses a batch's buffers a few batches later (MXNet's prefetcher)
    batches = [(b.data[0].asnumpy(), b.label[0].asnumpy(), b.pad) for b in it]
    data, label, pad = batches[-1]
    assert pad == 2
    assert np.isfinite(data).all() and label[2] == label[0] == 20 and label[3] == 20
    # the grey level written into record i is 7*i: the pipeline hands the image through unchanged
    assert abs(float(batches[0][0][1].mean()) - 7.0) < 2.0
    assert abs(float(data[1].mean()) - 7.0 * 21) < 2.0


def test_presets_normalise_with_the_given_statistics(numbered):
    for preset in ("inception", "chapter"):
        it = build_train_iter(numbered, 4, (3, 12, 12), preset=preset, mean=(100, 100, 100), std=(50, 50, 50))
        data = next(iter(it)).data[0].asnumpy()
        assert np.isfinite(data).all() and data.shape == (4, 3, 12, 12)
        assert it.mean == (100.0,) * 3 and it.std == (50.0,) * 3
        # grey levels are 0..147: normalised values lie within (0 - 100) / 50 .. (255 - 100) / 50
        assert data.min() >= -2.01 and data.max() <= 3.11
    chapter = build_train_iter(numbered, 4, (3, 12, 12), preset="chapter", mean=(1, 2, 3))
    assert chapter.std == (1.0, 1.0, 1.0), "the chapter preset subtracts the mean only"


def test_augmentation_presets_are_the_documented_ones():
    chapter = augmentation("chapter")
    assert chapter["rand_crop"] and chapter["rand_mirror"]
    assert chapter["max_rotate_angle"] == 15 and chapter["max_shear_ratio"] == 0.1
    inception = augmentation("inception")
    assert inception["random_resized_crop"] and inception["min_random_area"] == 0.08
    assert inception["min_aspect_ratio"] == pytest.approx(0.75)
    assert inception["max_aspect_ratio"] == pytest.approx(4 / 3)
    assert inception["brightness"] == inception["contrast"] == inception["saturation"] == 0.4
    assert inception["pca_noise"] == 0.1 and "rand_crop" not in inception
    with pytest.raises(ValueError, match="unknown augmentation preset 'mixup'"):
        augmentation("mixup")


def test_stored_images_smaller_than_the_chapter_crop_are_refused(numbered, tmp_path):
    rec = tmp_path / "train.rec"
    shutil.copy(numbered, rec)
    shutil.copy(numbered[:-4] + ".idx", tmp_path / "train.idx")
    meta = {"format": "gluon-inception-dataset", "version": 1, "classes": ["a"], "image_size": 16,
            "mean": [1, 2, 3], "std": [4, 5, 6],
            "splits": {"train": {"rec": "train.rec", "idx": "train.idx", "lst": "train.lst", "count": COUNT}}}
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="crops 24 pixels out of images stored at 16"):
        build_train_iter(str(rec), 2, (3, 24, 24), preset="chapter")
    it = build_train_iter(str(rec), 2, (3, 12, 12))
    assert it.mean == (1.0, 2.0, 3.0) and it.std == (4.0, 5.0, 6.0), "defaults come from dataset.json"


def test_too_few_records_for_the_ranks_or_the_batch_is_a_clear_error(numbered):
    with pytest.raises(ValueError, match="fewer than one batch of 7"):
        build_train_iter(numbered, 7, (3, 12, 12), mean=MEAN, dist=FakeDist(2, 3))
    with pytest.raises(ValueError, match="too few to give each of 30 ranks a shard"):
        build_val_iter(numbered, 1, (3, 12, 12), mean=MEAN, dist=FakeDist(0, 30))
    with pytest.raises(ValueError, match="pass mean="):
        build_val_iter(numbered, 1, (3, 12, 12))


# ------------------------------------------------------------------- bad record files


def _copy_pair(numbered, folder):
    rec = os.path.join(folder, "bad.rec")
    shutil.copy(numbered, rec)
    shutil.copy(numbered[:-4] + ".idx", rec[:-4] + ".idx")
    return rec


def _expect_error(rec, match, **kwargs):
    for build in (build_train_iter, build_val_iter):
        with pytest.raises(RecordFileError, match=match) as err:
            build(rec, 2, (3, 12, 12), mean=MEAN, **kwargs)
        message = str(err.value)
        assert os.path.basename(err.value.path) in message and "gluon-inception prepare" in message


def test_missing_record_file(tmp_path):
    _expect_error(str(tmp_path / "nothing.rec"), "record file does not exist")


def test_empty_record_file(tmp_path):
    (tmp_path / "empty.rec").write_bytes(b"")
    _expect_error(str(tmp_path / "empty.rec"), r"record file is empty \(0 bytes\)")


def test_file_that_is_not_a_record_file(numbered, tmp_path):
    rec = _copy_pair(numbered, str(tmp_path))
    with open(rec, "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 a JPEG renamed to .rec" * 50)
    _expect_error(rec, "not a RecordIO file")


def test_truncated_record_file(numbered, tmp_path):
    rec = _copy_pair(numbered, str(tmp_path))
    size = os.path.getsize(rec)
    with open(rec, "r+b") as f:
        f.truncate(size - 40)
    _expect_error(rec, "truncated")
    with open(rec, "r+b") as f:
        f.truncate(size // 2)  # now the index points past the end
    _expect_error(rec, "truncated or mismatched")


def test_missing_truncated_or_foreign_index(numbered, tmp_path):
    rec = _copy_pair(numbered, str(tmp_path))
    idx = rec[:-4] + ".idx"
    os.remove(idx)
    _expect_error(rec, "index file does not exist")
    lines = open(numbered[:-4] + ".idx").read().splitlines()
    with open(idx, "w") as f:
        f.write("\n".join(lines[:-3]) + "\n")  # lost its last lines
    _expect_error(rec, "do not match")
    other, other_idx = write_numbered_records(str(tmp_path / "other.rec"), 5, size=40)
    shutil.copy(other_idx, idx)  # the index of a different record file
    _expect_error(rec, "RecordIO|do not match")
    with open(idx, "w") as f:
        f.write("this is not\tan index\n")
    _expect_error(rec, "not `key<TAB>offset`")


def test_check_record_file_reports_count_and_accepts_expected(numbered):
    info = check_record_file(numbered, expected_count=COUNT)
    assert info.count == COUNT and info.keys == list(range(COUNT))
    with pytest.raises(RecordFileError, match="lists 22 records but 30 were expected"):
        check_record_file(numbered, expected_count=30)


def test_records_with_embedded_magic_numbers_are_walked_correctly(tmp_path):
    """dmlc splits a payload that contains the RecordIO magic number into several parts."""
    magic = (0xCED7230A).to_bytes(4, "little")
    rec, idx = str(tmp_path / "magic.rec"), str(tmp_path / "magic.idx")
    writer = mx.recordio.MXIndexedRecordIO(idx, rec, "w")
    payloads = [b"abcd" + magic + b"efgh" + magic + b"ij", b"klmn", magic * 3]
    for i, payload in enumerate(payloads):
        writer.write_idx(i, mx.recordio.pack(mx.recordio.IRHeader(0, float(i), i, 0), payload))
    writer.close()
    info = check_record_file(rec, spot_checks=10)
    assert info.count == 3
    from gluon_inception.data.records import read_image_record

    with open(rec, "rb") as f:
        for i, offset in enumerate(info.offsets):
            label, body = read_image_record(f, offset)
            assert label == i and body == payloads[i]


def test_inception_preset_jitters_colours_while_evaluation_is_deterministic(numbered):
    ones = dict(mean=MEAN, std=(1, 1, 1))
    train = build_train_iter(numbered, 8, (3, 12, 12), preset="inception", seed=3, **ones)
    shifts = []
    for batch in train:
        data, label = batch.data[0].asnumpy(), batch.label[0].asnumpy()
        shifts.extend(np.abs(data.mean(axis=(1, 2, 3)) - 7.0 * label))  # record i is grey level 7*i
    assert max(shifts) > 3.0, "brightness/contrast/saturation/PCA noise change the pixel values"
    val = build_val_iter(numbered, 8, (3, 12, 12), resize=12, **ones)
    for batch in val:
        data, label = batch.data[0].asnumpy(), batch.label[0].asnumpy()
        real = 8 - batch.pad
        np.testing.assert_allclose(data[:real].mean(axis=(1, 2, 3)), 7.0 * label[:real], atol=1.5)


@pytest.fixture(scope="module")
def textured(tmp_path_factory):
    """60 records of random pixels (40x48), record i labelled i: crops and flips change what comes out."""
    rec = str(tmp_path_factory.mktemp("textured") / "textured.rec")
    writer = mx.recordio.MXIndexedRecordIO(rec[:-4] + ".idx", rec, "w")
    rng = np.random.RandomState(0)
    for i in range(60):
        image = rng.randint(0, 256, (40, 48, 3)).astype(np.uint8)
        writer.write_idx(i, mx.recordio.pack_img(mx.recordio.IRHeader(0, float(i), i, 0), image, quality=90))
    writer.close()
    return rec


def _streams(rec, threads=3):
    # rank 1 of 2: records 30-59, 7 batches of 4 from 3 streams: 3, 2 and 2 batches from records 30-42, 43-51
    # and 52-59 (the first two hold one spare record each), in windows of up to 2 batches
    return build_train_iter(rec, 4, (3, 24, 24), mean=MEAN, dist=FakeDist(1, 2), seed=5, num_threads=threads,
                            window_batches=2)  # fmt: skip


def _batches(it, epochs=1, skip=0):
    """(labels, data) of every batch of ``epochs`` epochs, the last one started with ``it.skip(skip)``."""
    out = []
    for epoch in range(epochs):
        batches = iter(it)
        if epoch == epochs - 1 and skip:
            it.skip(skip)
        out.extend((b.label[0].asnumpy().astype(int), b.data[0].asnumpy()) for b in batches)
    return out


def test_streams_take_turns_each_from_its_block_and_an_epoch_reads_a_record_at_most_once(textured):
    it = _streams(textured)
    assert len(it) == 7 and it.streams == 3 and it.num_samples == 28
    blocks = [set(range(30, 43)), set(range(43, 52)), set(range(52, 60))]
    epochs = [[labels for labels, _ in _batches(it)] for _ in range(2)]
    for batches in epochs:
        for step, labels in enumerate(batches):
            assert set(labels) <= blocks[step % 3], "batch %d comes from stream %d's block" % (step, step % 3)
        seen = np.concatenate(batches).tolist()
        assert len(set(seen)) == 28 and set(range(52, 60)) <= set(seen)
        assert len(blocks[0] - set(seen)) == len(blocks[1] - set(seen)) == 1, "one spare record left out of each"
    assert [b.tolist() for b in epochs[0]] != [b.tolist() for b in epochs[1]], "each epoch draws a new order"


@pytest.mark.parametrize("steps", [1, 3, 5])
def test_skip_continues_with_the_very_batches_iterating_would_give(textured, steps):
    straight = _batches(_streams(textured), epochs=2)
    for epochs in (1, 2):  # skipping in the first epoch, and in a later one
        resumed = _batches(_streams(textured), epochs=epochs, skip=steps)
        expected = straight[: 7 * (epochs - 1)] + straight[7 * (epochs - 1) + steps: 7 * epochs]
        assert len(resumed) == len(expected)
        for (labels, data), (want_labels, want_data) in zip(resumed, expected):
            np.testing.assert_array_equal(labels, want_labels)
            np.testing.assert_array_equal(data, want_data)  # same crops, flips and colour jitter


def test_skip_is_refused_once_an_epoch_has_started(textured):
    it = _streams(textured)
    next(iter(it))
    with pytest.raises(ValueError, match="skip\\(1\\) needs a training iterator at the start of an epoch"):
        it.skip(1)
