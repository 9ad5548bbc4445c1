"""evaluate/predict/export from pretrained weights apply the preprocessing the weights' entry names."""
import json
import os

import numpy as np
import pytest

from gluon_inception import cli, get_pretrained, googlenet, register_pretrained
from gluon_inception._compat import mx
from gluon_inception.deploy.evaluate import evaluate
from gluon_inception.deploy.export import load_mxnet
from gluon_inception.fileio import file_digest
from gluon_inception.preprocessing import Preprocessing
from gluon_inception.weights import store, unregister_pretrained
from gluon_inception.zoo import load_pretrained_model

# Deliberately unusual values, so that a command falling back to defaults would show.
ENTRY_MEAN, ENTRY_STD = (102.0, 127.5, 153.0), (51.0, 63.75, 76.5)
ENTRY_RESIZE, ENTRY_CROP = 40, 32
ENTRY_PRE = Preprocessing(mean=ENTRY_MEAN, std=ENTRY_STD, crop_size=ENTRY_CROP, resize=ENTRY_RESIZE)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A 1000-class ImageNet-style entry with random weights, already in a local cache folder."""
    root = tmp_path_factory.mktemp("models")
    mx.random.seed(11)
    net = googlenet(classes=1000, topology="gluoncv")
    path = root / "saved.params"
    net.save_parameters(str(path))
    digest = file_digest(path)
    file_name = "deploy-test-%s.params" % digest[:8]
    path.rename(root / file_name)
    entry = get_pretrained("googlenet_gluoncv_in1k").replace(
        name="deploy_test_in1k", format="gluon_inception", file_name=file_name, mirror_path=file_name,
        sha1=None, sha256=digest, preprocessing=ENTRY_PRE,
    )  # fmt: skip
    register_pretrained(entry)
    yield str(root), entry
    unregister_pretrained(entry.name)


@pytest.fixture(autouse=True)
def offline_store(weights, no_store_environment, monkeypatch):
    monkeypatch.setenv(store.ENV_ROOT, weights[0])


def test_the_entrys_preprocessing_and_imagenet_names_are_used(weights):
    loaded = load_pretrained_model("deploy_test_in1k")
    assert loaded.preprocessing is ENTRY_PRE
    assert len(loaded.class_names) == 1000 and loaded.class_names[0] != "class 0"
    assert loaded.source == {"pretrained": "deploy_test_in1k"}


def test_evaluate_from_pretrained_uses_the_entrys_preprocessing(weights, tmp_path, capsys, demo_dataset):
    rec = demo_dataset.split("val").rec
    report = tmp_path / "report.json"
    assert cli.main(["evaluate", "--pretrained", "deploy_test_in1k", "--rec", rec, "--crops", "1", "10",
                     "--report", str(report)]) == 0
    assert "pretrained deploy_test_in1k" in capsys.readouterr().out
    got = json.loads(report.read_text())
    assert got["preprocessing"]["resize"] == ENTRY_RESIZE and got["preprocessing"]["crop_size"] == ENTRY_CROP
    # The same numbers from preprocessing written out by hand from the entry.
    net = googlenet(classes=1000, topology="gluoncv")
    net.load_parameters(weights[0] + "/" + weights[1].file_name)
    by_hand = Preprocessing(mean=ENTRY_MEAN, std=ENTRY_STD, crop_size=ENTRY_CROP, resize=ENTRY_RESIZE)
    expected = evaluate(net, rec, by_hand, crops=(1, 10))
    for mode in (1, 10):
        row = got["results"]["%d-crop" % mode]
        assert row["count"] == 200
        assert row["cross_entropy"] == pytest.approx(expected[mode].cross_entropy, rel=1e-5)
        assert row["top5"] == pytest.approx(expected[mode].top5)
    # ImageNet-1k weights on the digits: defaults would give other numbers (guards the test itself).
    defaults = evaluate(net, rec, Preprocessing(crop_size=ENTRY_CROP), crops=(1,))[1]
    assert defaults.cross_entropy != pytest.approx(expected[1].cross_entropy, rel=1e-3)


def test_predict_from_pretrained_names_imagenet_classes(weights, capsys, demo_dataset):
    source = os.path.join(demo_dataset.root, "source", "val", "7")
    path = os.path.join(source, sorted(os.listdir(source))[0])
    assert cli.main(["predict", path, "--pretrained", "deploy_test_in1k", "--topk", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = load_pretrained_model("deploy_test_in1k").class_names
    top = out["predictions"][0]["top"]
    assert [t["name"] for t in top] == [names[t["class"]] for t in top]


def test_pretrained_and_requested_architecture_disagree(weights, tmp_path, capsys):
    assert cli.main(["export", "--pretrained", "deploy_test_in1k", "--topology", "paper", "--classes", "10",
                     "-o", str(tmp_path / "x")]) == 2  # a usage error (docs/cli.rst)
    err = capsys.readouterr().err
    assert "pretrained entry 'deploy_test_in1k'" in err
    assert "topology: " in err and "has 'gluoncv', you asked for 'paper'" in err
    assert "has 1000, you asked for 10" in err


def test_export_from_pretrained_records_names_and_preprocessing(weights, tmp_path):
    assert cli.main(["export", "--pretrained", "deploy_test_in1k", "--bake-preprocessing",
                     "-o", str(tmp_path / "in1k")]) == 0
    net, meta = load_mxnet(str(tmp_path / "in1k"))
    assert meta["preprocessing_baked"] and meta["preprocessing"]["crop_size"] == ENTRY_CROP
    assert len(meta["classes"]) == 1000
    pixels = np.random.RandomState(0).uniform(0, 255, (1, 3, ENTRY_CROP, ENTRY_CROP)).astype(np.float32)
    loaded = load_pretrained_model("deploy_test_in1k")
    expected = loaded.net(loaded.preprocessing.normalize(mx.nd.array(pixels))).asnumpy()
    np.testing.assert_allclose(net(mx.nd.array(pixels)).asnumpy(), expected, rtol=1e-4, atol=1e-4)


def test_evaluating_on_a_dataset_with_other_classes_is_refused(weights, capsys, demo_dataset):
    # ImageNet wnids against the digits' "0".."9": the labels would index the wrong outputs.
    assert cli.main(["evaluate", "--pretrained", "deploy_test_in1k", "--data", demo_dataset.root]) == 2
    err = capsys.readouterr().err
    assert "classes (1000) are not the dataset's (10)" in err and "class 0: 'n01440764' vs '0'" in err
