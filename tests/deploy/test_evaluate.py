"""Evaluation: rank-1/rank-5/cross-entropy counted right (ties too), 10-crop over the right crops, ranks summed."""
import json
import math
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from gluon_inception import googlenet
from gluon_inception._compat import mx
from gluon_inception.deploy.evaluate import (
    EvalResult,
    TenCropReader,
    evaluate,
    evaluate_batches,
    format_table,
    write_report,
)
from gluon_inception.deploy.metrics import MetricSums, batch_stats
from gluon_inception.preprocessing import Preprocessing
from tests.support import child_env, require

CROP, SHORT = 32, 40
PRE = Preprocessing(mean=(100.0, 110.0, 120.0), std=(50.0, 60.0, 70.0), crop_size=CROP, resize=SHORT)
CLASSES = 10


def write_rec(folder, images, labels, name="tiny"):
    """A .rec/.idx pair of lossless PNG records (so any decoder gives the same pixels)."""
    rec, idx = os.path.join(folder, name + ".rec"), os.path.join(folder, name + ".idx")
    writer = mx.recordio.MXIndexedRecordIO(idx, rec, "w")
    for i, (image, label) in enumerate(zip(images, labels)):
        header = mx.recordio.IRHeader(0, float(label), i, 0)
        writer.write_idx(i, mx.recordio.pack_img(header, image[:, :, ::-1], img_fmt=".png"))  # pack_img wants BGR
    writer.close()
    return rec


def make_images(n, seed=0, short=SHORT):
    """Random RGB images, some landscape and some portrait, with the shorter side ``short``."""
    rng = np.random.RandomState(seed)
    shapes = [(short, short + 8), (short + 6, short)]
    images = []
    for i in range(n):
        h, w = shapes[i % 2]
        # Smooth structure plus noise, so that crops at different places really differ.
        base = cv2.resize(rng.randint(0, 256, (4, 4, 3)).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
        noise = rng.randint(-30, 31, (h, w, 3))
        images.append(np.clip(base.astype(int) + noise, 0, 255).astype(np.uint8))
    return images


def normalise(crops_hwc):
    x = np.asarray(crops_hwc, dtype=np.float32).transpose(0, 3, 1, 2)
    return (x - np.array(PRE.mean, np.float32).reshape(1, 3, 1, 1)) / np.array(PRE.std, np.float32).reshape(1, 3, 1, 1)


def numpy_center_crop(image, size=CROP):
    h, w = image.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return image[y : y + size, x : x + size]


def numpy_ten_crops(image, size=CROP):
    h, w = image.shape[:2]
    crops = [
        image[:size, :size],
        image[:size, w - size :],
        image[h - size :, :size],
        image[h - size :, w - size :],
        numpy_center_crop(image, size),
    ]
    return crops + [c[:, ::-1] for c in crops]


def softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class Recorder:
    """Wraps a network and keeps every batch it was given."""

    def __init__(self, net):
        self.net, self.inputs = net, []

    def __call__(self, x):
        self.inputs.append(x.asnumpy())
        return self.net(x)


@pytest.fixture(scope="module")
def net():
    mx.random.seed(3)
    model = googlenet(classes=CLASSES, topology="gluoncv")
    model.hybridize()
    return model


def labels_with_known_ranks(probs):
    """Labels chosen from the model's own predictions: rank 0, rank 2, and the last rank, in turn."""
    order = np.argsort(-probs, axis=1)
    picks = [0, 2, CLASSES - 1]
    return np.array([order[i, picks[i % 3]] for i in range(len(probs))])


def test_center_crop_accuracy_equals_the_count_by_hand(tmp_path, net):
    images = make_images(12)
    probs = softmax(net(mx.nd.array(normalise([numpy_center_crop(im) for im in images]))).asnumpy())
    labels = labels_with_known_ranks(probs)
    rec = write_rec(str(tmp_path), images, labels)

    result = evaluate(net, rec, PRE, crops=(1,), batch_size=5)[1]  # 12 images: batches of 5, 5, 2 (+3 pad)

    assert result.count == 12
    assert result.top1 == pytest.approx(4 / 12)  # the rank-0 labels
    assert result.top5 == pytest.approx(8 / 12)  # rank 0 and rank 2
    expected_ce = -np.mean(np.log(probs[np.arange(12), labels]))
    assert result.cross_entropy == pytest.approx(expected_ce, rel=1e-4)


def test_ten_crop_feeds_the_four_corners_centre_and_mirrors(tmp_path, net):
    images = make_images(5, seed=1)
    expected_crops = np.concatenate([normalise(numpy_ten_crops(im)) for im in images])
    probs10 = softmax(net(mx.nd.array(expected_crops)).asnumpy()).reshape(5, 10, CLASSES).mean(axis=1)
    labels = labels_with_known_ranks(probs10)
    rec = write_rec(str(tmp_path), images, labels)

    recorder = Recorder(net)
    result = evaluate(recorder, rec, PRE, crops=(10,), batch_size=20)[10]  # 2 images per pass

    seen = np.concatenate(recorder.inputs)
    assert seen.shape == (50, 3, CROP, CROP)
    np.testing.assert_allclose(seen, expected_crops, rtol=0, atol=1e-5)
    assert result.count == 5
    assert result.top1 == pytest.approx(2 / 5) and result.top5 == pytest.approx(4 / 5)
    assert result.cross_entropy == pytest.approx(-np.mean(np.log(probs10[np.arange(5), labels])), rel=1e-4)


def test_ten_crop_differs_from_one_crop(tmp_path, net):
    images = make_images(6, seed=2)
    rec = write_rec(str(tmp_path), images, [i % CLASSES for i in range(6)])
    results = evaluate(net, rec, PRE, crops=(1, 10), batch_size=10)
    assert results[1].count == results[10].count == 6
    assert abs(results[1].cross_entropy - results[10].cross_entropy) > 1e-4
    table = format_table(results)
    assert "1-crop" in table and "10-crop" in table
    # the rank-k column says its k: 5, or the number of classes when there are fewer
    assert results[1].k == results[10].k == min(5, CLASSES) and "rank-%d" % min(5, CLASSES) in table


def test_ten_crop_resizes_the_shorter_side_like_opencv(tmp_path):
    images = make_images(2, seed=4, short=57)  # resized to 40 before cropping
    rec = write_rec(str(tmp_path), images, [0, 1])
    batches = list(TenCropReader(rec, PRE, batch_size=2))
    crops = batches[0][0]
    for i, image in enumerate(images):
        h, w = image.shape[:2]
        new_w, new_h = (SHORT, SHORT * h // w) if h > w else (SHORT * w // h, SHORT)
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        expected = normalise(numpy_ten_crops(resized))
        # One grey level of rounding difference between OpenCV builds is allowed.
        std = np.array(PRE.std, np.float32).reshape(1, 3, 1, 1)
        assert np.abs((crops[10 * i : 10 * i + 10] - expected) * std).max() <= 1.0 + 1e-4


def test_a_label_outside_the_model_is_a_clear_error(tmp_path, net):
    rec = write_rec(str(tmp_path), make_images(2), [0, CLASSES + 3])
    with pytest.raises(ValueError, match="outside the network's 10 classes"):
        evaluate(net, rec, PRE, crops=(10,))


def test_report_is_json_with_both_modes(tmp_path, net):
    rec = write_rec(str(tmp_path), make_images(3), [1, 2, 3])
    results = evaluate(net, rec, PRE, crops=(1, 10))
    path = write_report(str(tmp_path / "report.json"), results, extra={"model": "random"})
    report = json.loads(open(path).read())
    assert report["model"] == "random"
    assert report["results"]["1-crop"]["count"] == 3 and "top5" in report["results"]["10-crop"]


@pytest.mark.horovod
@pytest.mark.slow
def test_three_ranks_give_the_single_process_result(tmp_path, net):
    """``horovodrun -np 3 gluon-inception evaluate`` sums the ranks' counts to the single-process result."""
    require(shutil.which("horovodrun") is not None, "horovodrun on PATH (Horovod built with MXNet and Gloo)")
    from gluon_inception.checkpoint import save_checkpoint

    images = make_images(13, seed=5)  # shards of 5, 5 and 3 images
    rec = write_rec(str(tmp_path), images, [i % CLASSES for i in range(13)])
    meta = {
        "model": {"name": "googlenet", "topology": "gluoncv", "classes": CLASSES, "aux_logits": False},
        "data": {"classes": [str(i) for i in range(CLASSES)]},
        "preprocessing": PRE.to_dict(),
    }
    checkpoint = save_checkpoint(str(tmp_path / "run"), "net", 1, net, meta=meta)["params"]
    env = child_env(OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "gluon_inception.cli", "evaluate", "--checkpoint", checkpoint, "--rec", rec,
               "--crops", "1", "10", "--batch-size", "4", "--report"]
    single = tmp_path / "single.json"
    proc = subprocess.run(command + [str(single)], env=env, timeout=300, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    multi = tmp_path / "multi.json"
    proc = subprocess.run(["horovodrun", "-np", "3", "-H", "localhost:3"] + command + [str(multi)], env=env,
                          timeout=300, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.count("rank-1") == 1, "only rank 0 prints the table"
    one, three = json.loads(single.read_text()), json.loads(multi.read_text())
    assert one["ranks"] == 1 and three["ranks"] == 3
    for mode in ("1-crop", "10-crop"):
        a, b = one["results"][mode], three["results"][mode]
        assert a["count"] == b["count"] == 13
        assert a["top1"] == b["top1"] and a["top5"] == b["top5"]
        assert b["cross_entropy"] == pytest.approx(a["cross_entropy"], rel=1e-6)
    # And both equal the library's own single-process numbers.
    expected = evaluate(net, rec, PRE, crops=(1, 10))
    assert one["results"]["10-crop"]["cross_entropy"] == pytest.approx(expected[10].cross_entropy, rel=1e-5)


# -- metrics -----------------------------------------------------------------------------------
def test_batch_stats_ignore_padding_rows():
    logits = mx.nd.array([[0.1, 0.9, 0, 0, 0, 0], [0.9, 0.1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1]])
    loss = mx.nd.array([1.0, 2.0, 30.0])
    labels = mx.nd.array([1, 1, 5])
    full = batch_stats(loss, logits, labels).asnumpy()
    padded = batch_stats(loss, logits, labels, pad=1).asnumpy()
    np.testing.assert_allclose(full, [33, 2, 3, 3])
    np.testing.assert_allclose(padded, [3, 1, 2, 2])


def test_top5_becomes_top_k_with_fewer_classes():
    stats = batch_stats(mx.nd.zeros(2), mx.nd.array([[1, 0, 0], [1, 0, 0]]), mx.nd.array([2, 0])).asnumpy()
    assert stats[2] == 2  # every label is within the top 3 of 3 classes


def test_metric_sums_turn_sums_into_means():
    sums = MetricSums()
    sums.add(np.array([[2.0, 1, 2, 2], [4.0, 2, 2, 2]]))
    assert sums.summary() == {"loss": 1.5, "top1": 0.75, "top5": 1.0, "samples": 4}
    assert math.isnan(MetricSums().summary()["loss"])


def test_a_tie_with_the_true_class_counts_as_the_expected_hit_of_a_random_order():
    scores = mx.nd.array([[2, 2, 2, 2, 0, 0, 0, 0], [3, 1, 1, 1, 1, 1, 1, 0], [5, 5, 0, 0, 0, 0, 0, 0]])
    stats = batch_stats(mx.nd.zeros(3), scores, mx.nd.array([1, 2, 1])).asnumpy()
    # row 1: 4 tied at the top -> top-1 1/4, top-5 1; row 2: 1 higher, 6 tied -> top-1 0, top-5 4/6;
    # row 3: 2 tied at the top -> top-1 1/2, top-5 1.
    np.testing.assert_allclose(stats, [0, 1 / 4 + 1 / 2, 1 + 4 / 6 + 1, 3], rtol=1e-6)


def test_constant_scores_get_the_chance_rate_and_nan_scores_no_hit():
    stats = batch_stats(mx.nd.zeros(4), mx.nd.zeros((4, 10)), mx.nd.array([0, 3, 6, 9])).asnumpy()
    np.testing.assert_allclose(stats, [0, 4 * 0.1, 4 * 0.5, 4], rtol=1e-6)
    nan = batch_stats(mx.nd.zeros(1), mx.nd.array([[float("nan"), 0.0]]), mx.nd.array([0])).asnumpy()
    assert nan[1] == 0 and nan[2] == 0


class ConstantNet:
    """Logits that are all equal: every class ties with every other."""

    def __call__(self, x):
        return mx.nd.zeros((x.shape[0], 4))


def _batches(labels, batch_size=3):
    """DataBatches of tiny images with the last one padded, as build_val_iter makes them."""
    out = []
    for first in range(0, len(labels), batch_size):
        chunk = list(labels[first : first + batch_size])
        pad = batch_size - len(chunk)
        out.append(mx.io.DataBatch([mx.nd.zeros((batch_size, 3, 4, 4))], [mx.nd.array(chunk + [0] * pad)], pad=pad))
    return out


def test_training_validation_and_evaluate_count_ties_the_same_way(tmp_path):
    from gluon_inception.dist import Dist
    from gluon_inception.training import TrainConfig, Training

    labels = [0, 1, 2, 3, 1, 2, 3]
    direct = evaluate_batches(ConstantNet(), _batches(labels))
    assert (direct.count, direct.top1, direct.top5) == (7, pytest.approx(0.25), pytest.approx(1.0))
    assert direct.cross_entropy == pytest.approx(math.log(4), rel=1e-5)  # summed in float32 on the device

    class Data:
        num_classes = 4

        def eval_iter(self, split):
            return _batches(labels)

    run = Training(TrainConfig(data="x", checkpoints=str(tmp_path)).finalize(), Dist(None))
    run.data, run.net = Data(), ConstantNet()
    try:
        val = run.evaluate("val")
    finally:
        run.close()
    assert val == {"loss": direct.cross_entropy, "top1": direct.top1, "top5": direct.top5, "samples": 7,
                   "split": "val"}


def test_the_table_labels_rank_k_with_its_k_when_there_are_fewer_than_5_classes():
    table = format_table({1: EvalResult(crops=1, count=8, top1=0.5, top5=1.0, cross_entropy=0.7, k=3)})
    assert "rank-3" in table.splitlines()[0] and "rank-5" not in table
