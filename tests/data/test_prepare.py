"""`gluon-inception prepare`: image folders -> lists, records, statistics; resumable; clear errors."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from gluon_inception import cli
from gluon_inception._compat import mx
from gluon_inception.data import PrepareError, load_dataset, prepare_dataset
from gluon_inception.data import prepare as prepare_module
from tests.support import child_env
from tests.support.data_utils import CLASS_COLOURS, make_image_tree, png_bomb

SIZE = 32
CLASSES = sorted(CLASS_COLOURS)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_image_tree(str(tmp_path_factory.mktemp("images")))


@pytest.fixture(scope="module")
def prepared(tree, tmp_path_factory):
    """The tree prepared through the console command, as a user would."""
    out = str(tmp_path_factory.mktemp("prepared") / "data")
    proc = subprocess.run(
        [sys.executable, "-m", "gluon_inception.cli", "prepare", tree["train"], out, "--val-dir", tree["val"],
         "--val-labels", tree["labels"], "--val-per-class", "2", "--image-size", str(SIZE), "--workers", "2",
         "--stats-images", "0", "--quiet"],
        capture_output=True, text=True, env=child_env(), timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "skipped   1 unreadable image(s)" in proc.stdout
    return out


def _lst(path):
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f]


def _resize_like_im2rec(image):
    h, w = image.shape[:2]
    size = (SIZE, h * SIZE // w) if h > w else (w * SIZE // h, SIZE)
    return cv2.resize(image, size)


def _truth(tree):
    with open(tree["labels"]) as f:
        rows = list(csv.reader(f))[1:]
    return {row[0]: row[1].split()[0] for row in rows}


def test_splits_have_the_requested_sizes(prepared, tree):
    info = load_dataset(prepared)
    assert info.classes == CLASSES and info.num_classes == 3 and info.image_size == SIZE
    assert info.split_names == ["train", "val", "test"]
    per_class = [tree["per_class"][c] for c in CLASSES]  # 6, 7, 7
    assert info.split("train").count == sum(per_class) - 2 * 3
    assert info.split("val").count == 2 * 3
    assert info.split("test").count == tree["val_images"] - 1, "the corrupt validation image is left out"
    assert info.meta["splits"]["train"]["class_counts"] == [n - 2 for n in per_class]
    assert info.meta["splits"]["val"]["class_counts"] == [2, 2, 2]
    for name in info.split_names:
        split = info.split(name)
        assert len(_lst(split.lst)) == split.count
        assert os.path.isfile(split.rec) and os.path.isfile(split.idx)
    assert not os.path.exists(os.path.join(prepared, ".staging"))
    with pytest.raises(ValueError, match="has no 'holdout' split; it has: train, val, test"):
        info.split("holdout")


def test_val_is_carved_out_of_train_without_overlap(prepared):
    info = load_dataset(prepared)
    train = {row[2] for row in _lst(info.split("train").lst)}
    val = {row[2] for row in _lst(info.split("val").lst)}
    assert not train & val
    assert all(p.startswith("train" + os.sep) for p in train | val)


def test_plain_image_record_iter_reads_every_record_with_the_label_of_its_source(prepared, tree):
    """The issue's acceptance check: MXNet's own iterator, no gluon_inception code in the loop."""
    info = load_dataset(prepared)
    truth = _truth(tree)
    image_root = info.meta["image_root"]
    for name in info.split_names:
        split = info.split(name)
        rows = _lst(split.lst)
        it = mx.io.ImageRecordIter(path_imgrec=split.rec, data_shape=(3, 24, 24), batch_size=1,
                                   preprocess_threads=1, verbose=False)
        seen = 0
        for row, batch in zip(rows, it):
            rel = row[2]
            folder = os.path.basename(os.path.dirname(rel))
            wnid = folder if name != "test" else truth[os.path.splitext(os.path.basename(rel))[0]]
            assert int(batch.label[0].asnumpy()[0]) == CLASSES.index(wnid) == int(float(row[1])), rel
            pixels = batch.data[0].asnumpy()[0].reshape(3, -1).mean(axis=1)  # RGB
            source = cv2.imread(os.path.join(image_root, rel), cv2.IMREAD_COLOR)
            expected = source.reshape(-1, 3).mean(axis=0)[::-1]
            assert np.abs(pixels - expected).max() < 12, (rel, pixels, expected)
            if "grey" not in rel:
                assert np.abs(pixels - np.array(CLASS_COLOURS[wnid])).max() < 25, rel
            seen += 1
        assert seen == split.count


def test_png_and_grayscale_images_become_rgb_records(prepared):
    info = load_dataset(prepared)
    rows = {row[2]: row for row in _lst(info.split("train").lst) + _lst(info.split("val").lst)}
    assert any(p.endswith(".png") for p in rows) and any("grey" in p for p in rows)
    assert not any(p.endswith(".txt") for p in rows)
    reader = mx.recordio.MXIndexedRecordIO(info.split("train").idx, info.split("train").rec, "r")
    for key in reader.keys:
        header, image = mx.recordio.unpack_img(reader.read_idx(key))
        assert image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) == SIZE
    reader.close()


def test_corrupt_image_is_skipped_counted_and_reported(prepared, tree):
    info = load_dataset(prepared)
    assert info.meta["skipped"] == 1 and info.meta["splits"]["test"]["skipped"] == 1
    with open(info.skipped_report) as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    assert rows[0] == ["split", "path", "reason"]
    assert rows[1][:2] == ["test", tree["corrupt"]] and "not a decodable image" in rows[1][2]
    assert tree["corrupt"] not in {row[2] for row in _lst(info.split("test").lst)}


def test_mean_and_std_match_the_resized_training_images(prepared):
    info = load_dataset(prepared)
    pixels = []
    for row in _lst(info.split("train").lst):
        image = cv2.imread(os.path.join(info.meta["image_root"], row[2]), cv2.IMREAD_COLOR)
        pixels.append(_resize_like_im2rec(image).reshape(-1, 3)[:, ::-1].astype(np.float64))
    pixels = np.concatenate(pixels)
    np.testing.assert_allclose(info.mean, pixels.mean(axis=0), atol=1.0)
    np.testing.assert_allclose(info.std, pixels.std(axis=0), atol=1.0)
    assert info.meta["stats"]["images"] == info.split("train").count


def test_rerun_skips_complete_outputs(prepared, tree, monkeypatch):
    before = {name: os.stat(os.path.join(prepared, name + ".rec")).st_mtime_ns for name in ("train", "val", "test")}

    def must_not_run(*args, **kwargs):
        raise AssertionError("a complete split was rebuilt")

    monkeypatch.setattr(prepare_module, "run_im2rec", must_not_run)
    info = prepare_dataset(tree["train"], prepared, val_dir=tree["val"], val_labels=tree["labels"],
                           val_per_class=2, image_size=SIZE, workers=2, stats_images=0)
    assert info.split("train").count == load_dataset(prepared).split("train").count
    after = {name: os.stat(os.path.join(prepared, name + ".rec")).st_mtime_ns for name in before}
    assert before == after


def test_interrupted_build_is_never_taken_for_complete_and_resumes(prepared, tree, tmp_path, monkeypatch):
    out = str(tmp_path / "copy")
    shutil.copytree(prepared, out)
    kwargs = dict(val_dir=tree["val"], val_labels=tree["labels"], val_per_class=2, image_size=SIZE, workers=2,
                  stats_images=0)
    # Crash while im2rec writes the val split: it leaves half a record file in the staging folder.
    os.remove(os.path.join(out, "val.json"))
    real_run = prepare_module.run_im2rec

    def crash(lst, *args, **kw):
        with open(os.path.splitext(lst)[0] + ".rec", "wb") as f:
            f.write(b"\x0a\x23\xd7\xce half a record")
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_module, "run_im2rec", crash)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(tree["train"], out, **kwargs)
    with pytest.raises(FileNotFoundError, match="not a complete prepared dataset"):
        load_dataset(out)

    calls = []

    def counting(lst, *args, **kw):
        calls.append(os.path.basename(lst))
        return real_run(lst, *args, **kw)

    monkeypatch.setattr(prepare_module, "run_im2rec", counting)
    train_mtime = os.stat(os.path.join(out, "train.rec")).st_mtime_ns
    info = prepare_dataset(tree["train"], out, **kwargs)
    assert calls == ["val.lst"], "only the incomplete split is rebuilt"
    assert os.stat(os.path.join(out, "train.rec")).st_mtime_ns == train_mtime
    assert info.split("val").count == 6 and not os.path.exists(os.path.join(out, ".staging"))


def test_other_settings_on_a_prepared_folder_need_overwrite(prepared, tree):
    with pytest.raises(PrepareError, match="built from other images or settings; pass overwrite=True"):
        prepare_dataset(tree["train"], prepared, val_dir=tree["val"], val_labels=tree["labels"], val_per_class=2,
                        image_size=SIZE + 8)


# ------------------------------------------------------------------- bad inputs


def _tree_error(tmp_path, match, **kwargs):
    train = kwargs.pop("train", str(tmp_path / "train"))
    with pytest.raises(PrepareError, match=match):
        prepare_dataset(train, str(tmp_path / "out"), **kwargs)
    assert not os.path.exists(tmp_path / "out" / "dataset.json")


def _class(tmp_path, name, count, folder="train"):
    path = tmp_path / folder / name
    path.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        cv2.imwrite(str(path / ("%d.jpg" % i)), np.full((20, 20, 3), 100, np.uint8))
    return path


def test_missing_and_empty_folders_are_clear_errors(tmp_path):
    _tree_error(tmp_path, r"image folder .*train does not exist")
    (tmp_path / "train").mkdir()
    _tree_error(tmp_path, r"has no class folders \(it is empty\)")
    cv2.imwrite(str(tmp_path / "train" / "loose.jpg"), np.zeros((8, 8, 3), np.uint8))
    _tree_error(tmp_path, r"has no class folders \(it holds 1 loose images\)")
    _class(tmp_path, "cat", 3)
    (tmp_path / "train" / "dog").mkdir()
    (tmp_path / "train" / "dog" / "readme.txt").write_text("no images here")
    _tree_error(tmp_path, r"1 class folder\(s\) in .* hold no images \(dog\)", val_per_class=1)
    _tree_error(tmp_path, "is not a folder", train=str(tmp_path / "train" / "loose.jpg"))


def test_too_few_images_to_carve_the_val_split(tmp_path):
    _class(tmp_path, "cat", 3)
    _class(tmp_path, "dog", 5)
    _tree_error(tmp_path, "class 'cat' has 3 training image.* lower --val-per-class", val_per_class=3)


def test_one_class_is_not_a_dataset(tmp_path, capsys):
    _class(tmp_path, "cat", 4)
    _tree_error(tmp_path, r"has one class folder \(cat\): a classifier needs at least two classes", val_per_class=1)
    out = str(tmp_path / "out")
    assert cli.main(["prepare", str(tmp_path / "train"), out, "--val-per-class", "1", "--quiet"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_an_image_declaring_too_many_pixels_is_skipped_without_decoding_and_listed(tmp_path):
    _class(tmp_path, "cat", 4)
    _class(tmp_path, "dog", 4)
    (tmp_path / "train" / "dog" / "bomb.png").write_bytes(png_bomb(30000, 30000))
    info = prepare_dataset(str(tmp_path / "train"), str(tmp_path / "out"), val_per_class=1, image_size=16, workers=2,
                           stats_images=0)  # fmt: skip
    assert info.meta["skipped"] == 1 and sum(info.split(n).count for n in info.split_names) == 8
    with open(info.skipped_report) as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    assert len(rows) == 1 and rows[0][:2] == ["train", os.path.join("dog", "bomb.png")]
    assert rows[0][2].startswith("declares 900000000 pixels, over the limit of")


_SLOW_IM2REC = """
import os, subprocess, sys, time
prefix = sys.argv[1]
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open(prefix + ".pids", "w") as f:
    f.write("%d %d" % (os.getpid(), worker.pid))
time.sleep(120)
"""


def test_ctrl_c_during_prepare_leaves_nothing_behind(tmp_path):
    """SIGINT (what Ctrl-C sends) while im2rec encodes: prepare exits 130, im2rec and its workers are gone,
    and no staging folder or partial file is left in the output folder."""
    _class(tmp_path, "cat", 3)
    _class(tmp_path, "dog", 3)
    tool = tmp_path / "slow_im2rec.py"
    tool.write_text(_SLOW_IM2REC)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "gluon_inception.cli", "prepare", str(tmp_path / "train"), str(out),
                             "--val-per-class", "1", "--im2rec", str(tool), "--stats-images", "0", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())  # fmt: skip
    pids_file = out / ".staging" / "train.pids"
    deadline = time.monotonic() + 120
    while not (pids_file.exists() and pids_file.read_text().strip()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.2)
    pids = [int(p) for p in pids_file.read_text().split()]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip() == "interrupted", err
    assert not (out / ".staging").exists()
    assert [name for name in os.listdir(out) if name.endswith(".partial") or name.startswith(".staging")] == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):  # im2rec and its worker were killed with their group
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.05)


def test_validation_ground_truth_problems_are_clear_errors(tmp_path):
    _class(tmp_path, "cat", 3)
    _class(tmp_path, "dog", 3)
    val = tmp_path / "val"
    val.mkdir()
    _tree_error(tmp_path, "validation folder .* holds no images", val_dir=str(val), val_per_class=1)
    for i in range(2):
        cv2.imwrite(str(val / ("v%d.JPEG" % i)), np.full((20, 20, 3), 50, np.uint8))
    _tree_error(tmp_path, "flat .* pass --val-labels", val_dir=str(val), val_per_class=1)
    labels = tmp_path / "gt.csv"
    labels.write_text("ImageId,PredictionString\nv0,cat 1 2 3 4\n")
    _tree_error(tmp_path, "1 image\\(s\\) have no ground truth \\(e.g. v1\\)", val_dir=str(val),
                val_labels=str(labels), val_per_class=1)
    labels.write_text("ImageId,PredictionString\nv0,cat 1 2 3 4\nv1,cow 1 2 3 4\n")
    _tree_error(tmp_path, "class 'cow' of image 'v1' is not one of the 2 training classes", val_dir=str(val),
                val_labels=str(labels), val_per_class=1)
    labels.write_text("v0,cat\nv1,dog\nv2,dog\n")
    _tree_error(tmp_path, "1 ground-truth row\\(s\\) name images that are not there \\(e.g. v2\\)",
                val_dir=str(val), val_labels=str(labels), val_per_class=1)
    _class(tmp_path, "bird", 1, folder="val_folders")
    _tree_error(tmp_path, "class folders that the training set lacks: bird", val_dir=str(tmp_path / "val_folders"))


def test_cli_reports_bad_input_with_exit_code_2(tmp_path, capsys):
    from gluon_inception.cli import main

    assert main(["prepare", str(tmp_path / "nope"), str(tmp_path / "out")]) == 2
    assert "image folder %s does not exist" % (tmp_path / "nope") in capsys.readouterr().err
    assert main(["prepare", str(tmp_path / "out")]) == 2


def test_load_dataset_explains_a_folder_that_is_not_prepared(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*gluon-inception prepare"):
        load_dataset(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="has no dataset.json"):
        load_dataset(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not a gluon-inception dataset description"):
        load_dataset(tmp_path)
    (tmp_path / "dataset.json").write_text("{half")
    with pytest.raises(ValueError, match="not readable JSON"):
        load_dataset(tmp_path)



@pytest.mark.slow
def test_concurrent_prepares_of_one_folder_build_it_once(tree, tmp_path):
    """Every Horovod rank may call prepare at once: one builds, the others wait and find it complete."""
    out = str(tmp_path / "shared")
    cmd = [sys.executable, "-m", "gluon_inception.cli", "prepare", tree["train"], out, "--val-per-class", "0",
           "--image-size", "24", "--workers", "2", "--quiet"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
             for _ in range(3)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert len({stdout for stdout, _ in outputs}) == 1, "all three see the same dataset"
    info = load_dataset(out)
    assert info.split_names == ["train"] and info.split("train").count == sum(tree["per_class"].values())
    assert info.image_size == 24


# -- checksums -----------------------------------------------------------------------------------
def test_prepare_records_a_checksum_of_each_record_file_and_of_each_record(prepared):
    from gluon_inception.data.records import read_checksums, read_index
    from gluon_inception.fileio import file_digest

    info = load_dataset(prepared)
    for name in info.split_names:
        split = info.split(name)
        assert split.sha256 == file_digest(split.rec)
        assert len(read_checksums(split.checksums)) == len(read_index(split.idx)[0]) == split.count


def _damage_one_jpeg(folder, split="train", position=3):
    """Flip 64 bytes inside the JPEG of one record; returns that record's image path from the .lst."""
    from gluon_inception.data.records import read_image_record, read_index

    rec, idx, lst = (os.path.join(folder, split + ext) for ext in (".rec", ".idx", ".lst"))
    keys, offsets = read_index(idx)
    with open(rec, "rb") as f:
        _, jpeg = read_image_record(f, offsets[position])
        f.seek(offsets[position])
        record = f.read(offsets[position + 1] - offsets[position])
    start = offsets[position] + record.index(jpeg[:64]) + len(jpeg) // 2
    with open(rec, "r+b") as f:
        f.seek(start)
        chunk = f.read(64)
        f.seek(start)
        f.write(bytes(b ^ 0xFF for b in chunk))
    return {int(row[0]): row[-1] for row in _lst(lst)}[keys[position]]


def test_flipped_bytes_inside_a_jpeg_are_reported_by_check_and_by_verify_data_naming_the_image(prepared, tmp_path):
    from gluon_inception.dist import Dist
    from gluon_inception.training import TrainConfig, Training

    folder = str(tmp_path / "data")
    shutil.copytree(prepared, folder)
    check = [sys.executable, "-m", "gluon_inception.cli", "check", folder]
    proc = subprocess.run(check, capture_output=True, text=True, env=child_env(), timeout=120)
    assert proc.returncode == 0 and "train: %d records match" % load_dataset(folder).split("train").count \
        in proc.stdout, proc.stderr
    cfg = TrainConfig(data=folder, verify_data=True, checkpoints=str(tmp_path / "ckpt")).finalize()
    with Training(cfg, Dist(None)) as run:
        run.open_data()  # intact: no complaint

    image = _damage_one_jpeg(folder)
    proc = subprocess.run(check, capture_output=True, text=True, env=child_env(), timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.count("error:") == 1 and "1 damaged record(s), the image(s) %s:" % image in proc.stderr
    assert "val: " in proc.stdout and "test: " in proc.stdout, "the other splits are still checked"
    train = [sys.executable, "-m", "gluon_inception.cli", "train", "--data", folder, "--verify-data",
             "--checkpoints", str(tmp_path / "ckpt"), "--topology", "gluoncv", "--image-size", "32",
             "--epochs", "1", "--no-progress"]  # fmt: skip
    proc = subprocess.run(train, capture_output=True, text=True, env=child_env(), timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "train.rec: 1 damaged record(s), the image(s) %s:" % image in errors[0]


def test_a_dataset_prepared_without_checksums_gets_them_without_a_rebuild(prepared, tree, tmp_path, monkeypatch):
    out = str(tmp_path / "old")
    shutil.copytree(prepared, out)
    for name in ("train", "val", "test"):
        os.remove(os.path.join(out, name + ".crc32"))
        marker = os.path.join(out, name + ".json")
        done = json.load(open(marker))
        del done["rec_sha256"]
        json.dump(done, open(marker, "w"))
    meta = json.load(open(os.path.join(out, "dataset.json")))
    for entry in meta["splits"].values():
        del entry["sha256"], entry["checksums"]
    json.dump(meta, open(os.path.join(out, "dataset.json"), "w"))
    from gluon_inception.data import verify_dataset
    from gluon_inception.data.records import RecordFileError

    with pytest.raises(RecordFileError, match="no checksums were recorded.*--overwrite"):
        verify_dataset(load_dataset(out))
    monkeypatch.setattr(prepare_module, "run_im2rec", lambda *a, **k: pytest.fail("a complete split was rebuilt"))
    info = prepare_dataset(tree["train"], out, val_dir=tree["val"], val_labels=tree["labels"],
                           val_per_class=2, image_size=SIZE, workers=2, stats_images=0)
    verify_dataset(info)
    assert info.split("train").sha256 == load_dataset(prepared).split("train").sha256


def test_training_refuses_a_dataset_of_one_class():
    from types import SimpleNamespace

    from gluon_inception.data import DatasetSource
    from gluon_inception.errors import UsageError

    one = SimpleNamespace(root="/data/cats", num_classes=1, classes=["cat"], mean=(1, 2, 3), std=(1, 1, 1))
    with pytest.raises(UsageError, match=r"/data/cats has 1 class \(cat\): a classifier needs at least two"):
        DatasetSource(one, batch_size=4, image_size=32)
