"""Exported files in ONNX Runtime and OpenVINO: IR export, INT8 (NNCF, ONNX Runtime), one loader, damaged files."""
import os

import numpy as np
import pytest

from gluon_inception import googlenet
from gluon_inception._compat import mx
from gluon_inception.deploy import ModelFileError, load_model_file
from gluon_inception.deploy.export import ExportError, bake_preprocessing, export_mxnet, export_onnx
from gluon_inception.deploy.runtimes import choose_runtime, export_openvino, quantize_file
from gluon_inception.errors import UsageError
from gluon_inception.preprocessing import Preprocessing
from tests.support import require_deploy_runtimes

SIZE = 32
PRE = Preprocessing(mean=(120.0, 110.0, 100.0), std=(60.0, 55.0, 50.0), crop_size=SIZE)
CLASSES = ["cat", "dog", "cow"]


@pytest.fixture(autouse=True)
def _runtimes():
    require_deploy_runtimes()


@pytest.fixture(scope="module")
def net():
    mx.random.seed(0)
    net = googlenet(classes=len(CLASSES), topology="gluoncv")
    rng = np.random.RandomState(0)
    for name, param in net.collect_params().items():  # statistics an export must not drop
        if name.endswith("running_mean"):
            param.set_data(mx.nd.array(rng.uniform(-0.2, 0.2, param.shape)))
        elif name.endswith("running_var"):
            param.set_data(mx.nd.array(rng.uniform(0.5, 2.0, param.shape)))
    net.hybridize()
    return net


def _images(n=4, seed=1):
    return np.random.RandomState(seed).normal(0, 1, (n, 3, SIZE, SIZE)).astype(np.float32)


@pytest.fixture(scope="module")
def files(net, tmp_path_factory):
    folder = tmp_path_factory.mktemp("exported")
    out = {"xml": str(folder / "net.xml"), "onnx": str(folder / "net.onnx"), "mxnet": str(folder / "net"),
           "baked": str(folder / "baked.xml")}
    result = export_openvino(net, out["xml"], PRE, classes=CLASSES)
    assert result["max_abs_diff"] < 1e-4 and os.path.exists(result["bin"])
    export_onnx(net, out["onnx"], PRE, classes=CLASSES)
    export_mxnet(net, out["mxnet"], PRE, classes=CLASSES)
    export_openvino(bake_preprocessing(net, PRE), out["baked"], PRE, classes=CLASSES)
    return out


@pytest.mark.parametrize("which,runtime", [("xml", None), ("onnx", "onnxruntime"), ("onnx", "openvino"),
                                           ("mxnet", None), ("baked", None)])
def test_every_file_in_every_runtime_gives_mxnets_logits_with_its_classes(net, files, which, runtime):
    model = load_model_file(files[which], runtime)
    assert model.classes == CLASSES and model.preprocessing == PRE and model.num_classes == 3
    assert model.baked == (which == "baked") and model.precision == "float32"
    x = _images()
    want = net(mx.nd.array(x)).asnumpy()
    np.testing.assert_allclose(model(x), want, rtol=0, atol=1e-4)
    got = model(mx.nd.array(x))  # an NDArray in, an NDArray out: evaluate() and predict_images() pass these
    assert isinstance(got, mx.nd.NDArray)
    np.testing.assert_allclose(got.asnumpy(), want, rtol=0, atol=1e-4)


def test_a_baked_file_runs_on_pixels(net, files):
    model = load_model_file(files["baked"])
    pixels = np.random.RandomState(2).uniform(0, 255, (2, 3, SIZE, SIZE)).astype(np.float32)
    want = net(mx.nd.array(PRE.normalize(pixels))).asnumpy()
    np.testing.assert_allclose(model.run(pixels), want, rtol=0, atol=1e-4)


def test_the_runtime_comes_from_the_file_unless_the_file_is_onnx():
    assert choose_runtime("m.xml") == "openvino" and choose_runtime("m.bin") == "openvino"
    assert choose_runtime("prefix") == "mxnet" and choose_runtime("prefix-symbol.json") == "mxnet"
    with pytest.raises(UsageError, match="m.onnx runs in onnxruntime or openvino: choose one with --runtime"):
        choose_runtime("m.onnx")
    with pytest.raises(UsageError, match=r"--runtime onnxruntime cannot run m.xml \(an OpenVINO IR\): use openvino"):
        choose_runtime("m.xml", "onnxruntime")
    with pytest.raises(UsageError, match="--runtime mxnet cannot run m.onnx"):
        choose_runtime("m.onnx", "mxnet")


def test_precision_requests_a_file_or_runtime_cannot_meet_are_refused(files):
    with pytest.raises(ModelFileError, match="is a float32 file: --precision int8 needs an INT8 export"):
        load_model_file(files["xml"], precision="int8")
    with pytest.raises(ModelFileError, match="--precision bfloat16 does not run in onnxruntime"):
        load_model_file(files["onnx"], "onnxruntime", precision="bfloat16")
    with pytest.raises(ModelFileError, match="--precision float16 does not run in openvino"):
        load_model_file(files["xml"], precision="float16")


def test_openvino_bfloat16_where_openvino_has_it(files, net):
    import openvino as ov

    if "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        with pytest.raises(ModelFileError, match="OpenVINO has no bfloat16 kernels for this CPU"):
            load_model_file(files["xml"], precision="bfloat16")
        pytest.skip("CPU: OpenVINO has no bfloat16 here; the refusal was checked instead")
    model = load_model_file(files["xml"], precision="bfloat16")
    x = _images(8)
    assert model.precision == "bfloat16"
    np.testing.assert_allclose(model(x), net(mx.nd.array(x)).asnumpy(), rtol=0, atol=0.1)


def test_a_truncated_bin_or_a_missing_one_is_one_line(files, tmp_path):
    xml = tmp_path / "cut.xml"
    xml.write_bytes(open(files["xml"], "rb").read())
    data = open(files["xml"][:-4] + ".bin", "rb").read()
    with pytest.raises(FileNotFoundError, match="cut.bin does not exist"):
        load_model_file(str(xml))
    (tmp_path / "cut.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError) as err:
        load_model_file(str(xml))
    assert str(err.value) == "%s cannot be loaded in openvino: Incorrect weights in bin file. Export it again" % xml


def test_a_damaged_onnx_file_is_one_line_in_both_runtimes(files, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(open(files["onnx"], "rb").read()[:2000])
    for runtime in ("onnxruntime", "openvino"):
        with pytest.raises(ModelFileError, match="bad.onnx cannot be loaded in %s: .*Export it again" % runtime) as e:
            load_model_file(str(bad), runtime)
        assert "\n" not in str(e.value)


def test_class_names_that_do_not_match_the_outputs_are_refused(files, tmp_path):
    import openvino as ov

    model = ov.Core().read_model(files["xml"])
    model.set_rt_info('["only", "two"]', ["gluon_inception", "classes"])
    ov.save_model(model, str(tmp_path / "altered.xml"), compress_to_fp16=False)
    with pytest.raises(ModelFileError, match="has 3 outputs but names 2 classes"):
        load_model_file(str(tmp_path / "altered.xml"))


@pytest.mark.parametrize("which,runtime,quantizer",
                         [("xml", "openvino", "NNCF"), ("onnx", "onnxruntime", "ONNX Runtime")])
def test_int8_uses_the_runtimes_quantizer_and_keeps_metadata(net, files, tmp_path, which, runtime, quantizer):
    """OpenVINO IR: NNCF's FakeQuantize layers; ONNX: ONNX Runtime's QDQ pairs, weights per output channel."""
    import onnx

    out = str(tmp_path / ("int8" + os.path.splitext(files[which])[1]))
    calib = [_images(8, seed=s) for s in range(3)]
    result = quantize_file(files[which], out, calib, min_agreement=0.0)
    assert result["quantized_layers"] > 50 and result["images"] == 24 and result["quantizer"] == quantizer
    if which == "onnx":
        consts = {i.name: i for i in onnx.load(out).graph.initializer}
        weight_scales = [consts[n.input[1]] for n in onnx.load(out).graph.node
                         if n.op_type == "DequantizeLinear" and n.input[0] in consts and consts[n.input[0]].dims]
        assert len(weight_scales) >= 57 and all(len(scale.dims) == 1 for scale in weight_scales)  # per channel
    model = load_model_file(out, runtime)
    assert model.precision == "int8" and model.classes == CLASSES and model.preprocessing == PRE
    x = _images(4, seed=9)
    assert np.isfinite(model(x)).all() and model(x).shape == (4, 3)


def test_a_calibration_that_changes_the_answers_is_an_error_and_writes_nothing(files, tmp_path):
    out = tmp_path / "int8.xml"
    with pytest.raises(ExportError, match=r"INT8 calibration failed: .* of 8 calibration images"):
        quantize_file(files["xml"], str(out), [_images(8)], min_agreement=1.01)
    assert os.listdir(tmp_path) == []
    with pytest.raises(ExportError, match="calibration needs images"):
        quantize_file(files["xml"], str(out), [])


def test_the_onnx_file_declares_the_opset_its_nodes_follow_so_int8_runs_for_every_topology(tmp_path):
    """MXNet's exporter wrote opset-13 nodes under opset 23; ONNX Runtime then rejected a quantizer's INT8 of the
    torchvision topology (NNCF's, of its input ChannelAffine's Slice), in the bench at 224 pixels."""
    import onnx

    mx.random.seed(1)
    net = googlenet(classes=5, topology="torchvision")
    path, int8 = str(tmp_path / "tv.onnx"), str(tmp_path / "tv-int8.onnx")
    export_onnx(net, path, PRE)
    assert [o.version for o in onnx.load(path).opset_import if o.domain in ("", "ai.onnx")] == [13]
    quantize_file(path, int8, [_images(4, seed=s) for s in range(2)], min_agreement=0.0)
    model = load_model_file(int8, "onnxruntime")
    assert model(_images(2)).shape == (2, 5)
