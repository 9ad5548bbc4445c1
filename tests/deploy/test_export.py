"""Export: MXNet symbol+params round trips, ONNX parity in onnxruntime, baked preprocessing, clear errors."""
import json
import os
import sys

import numpy as np
import pytest

from gluon_inception import TOPOLOGIES, googlenet
from gluon_inception._compat import mx
from gluon_inception.deploy.export import (
    ExportError,
    bake_preprocessing,
    check_onnx,
    export_mxnet,
    export_onnx,
    load_mxnet,
    run_onnx,
)
from gluon_inception.preprocessing import Preprocessing
from tests.support import require

# Results depend on the CPU's instruction sets: .ci/run runs these again under DNNL_MAX_CPU_ISA=AVX2 and with AMX on.
pytestmark = pytest.mark.isa

SIZE = 64
PRE = Preprocessing(mean=(120.0, 110.0, 100.0), std=(60.0, 55.0, 50.0), crop_size=SIZE)


def _net(topology="gluoncv", classes=4, seed=0):
    mx.random.seed(seed)
    net = googlenet(classes=classes, topology=topology)
    # Non-trivial BatchNorm statistics, so that an export that dropped them would show.
    rng = np.random.RandomState(seed)
    for name, param in net.collect_params().items():
        if name.endswith("running_mean"):
            param.set_data(mx.nd.array(rng.uniform(-0.2, 0.2, param.shape)))
        elif name.endswith("running_var"):
            param.set_data(mx.nd.array(rng.uniform(0.5, 2.0, param.shape)))
    return net


def _batch(n=3, seed=1, pixels=False):
    rng = np.random.RandomState(seed)
    if pixels:
        return rng.uniform(0, 255, (n, 3, SIZE, SIZE)).astype("float32")
    return rng.normal(0, 1, (n, 3, SIZE, SIZE)).astype("float32")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _onnx_available():
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def test_mxnet_export_loads_with_symbolblock_imports_and_gives_equal_logits(tmp_path):
    net = _net(topology="paper")
    x = mx.nd.array(_batch())
    expected = net(x).asnumpy()
    files = export_mxnet(net, str(tmp_path / "tiny"), preprocessing=PRE, classes=["a", "b", "c", "d"])
    assert files["symbol"].endswith("tiny-symbol.json") and files["params"].endswith("tiny-0000.params")
    with pytest.warns(UserWarning, match="Cannot decide type"):  # MXNet's own, harmless
        plain = mx.gluon.SymbolBlock.imports(files["symbol"], ["data"], files["params"])
    np.testing.assert_allclose(plain(x).asnumpy(), expected, rtol=1e-5, atol=1e-5)
    loaded, meta = load_mxnet(str(tmp_path / "tiny"))
    np.testing.assert_allclose(loaded(x).asnumpy(), expected, rtol=1e-5, atol=1e-5)
    assert meta["classes"] == ["a", "b", "c", "d"]
    assert meta["preprocessing"]["mean"] == [120.0, 110.0, 100.0] and meta["preprocessing_baked"] is False
    # Shipped files are readable by others, like any new file (not owner-only like a temporary file).
    for key in ("symbol", "params", "meta"):
        assert os.stat(files[key]).st_mode & 0o777 == 0o666 & ~_umask()
    # Every weight and BN statistic of the graph is in the params file.
    saved = mx.nd.load(files["params"])
    assert len(saved) == len(list(net.collect_params().keys()))


def test_baked_preprocessing_takes_pixels_and_equals_normalising_first(tmp_path):
    net = _net()
    pixels = _batch(pixels=True)
    expected = net(PRE.normalize(mx.nd.array(pixels))).asnumpy()
    baked = bake_preprocessing(net, PRE)
    np.testing.assert_allclose(baked(mx.nd.array(pixels)).asnumpy(), expected, rtol=1e-4, atol=1e-4)
    export_mxnet(baked, str(tmp_path / "baked"))
    loaded, meta = load_mxnet(str(tmp_path / "baked"))
    np.testing.assert_allclose(loaded(mx.nd.array(pixels)).asnumpy(), expected, rtol=1e-4, atol=1e-4)
    assert meta["preprocessing_baked"] is True and meta["input"]["values"] == "pixels 0-255"
    assert meta["preprocessing"]["std"] == [60.0, 55.0, 50.0]


def test_load_mxnet_of_a_missing_prefix_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-symbol.json does not exist"):
        load_mxnet(str(tmp_path / "nothing"))


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_onnx_logits_equal_mxnet_within_1e4(tmp_path, topology):
    require(_onnx_available(), "onnx and onnxruntime (pip install 'gluon-inception[onnx]')")
    import onnx

    net = _net(topology=topology)
    path = str(tmp_path / "net.onnx")
    result = export_onnx(net, path, preprocessing=PRE, classes=["w", "x", "y", "z"])
    assert result["max_abs_diff"] is not None and result["max_abs_diff"] <= 1e-4
    # Checked independently here too, on another batch size (the batch axis is dynamic).
    x = _batch(n=5, seed=7)
    got = run_onnx(path, x)
    np.testing.assert_allclose(got, net(mx.nd.array(x)).asnumpy(), rtol=0, atol=1e-4)
    model = onnx.load(path)
    assert [i.name for i in model.graph.input] == ["data"], "weights must not be listed as graph inputs"
    assert [o.name for o in model.graph.output] == ["logits"]
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["classes"]) == ["w", "x", "y", "z"]
    assert json.loads(props["preprocessing"])["crop_size"] == SIZE


def test_onnx_with_baked_preprocessing_takes_pixels(tmp_path):
    require(_onnx_available(), "onnx and onnxruntime (pip install 'gluon-inception[onnx]')")
    net = _net()
    path = str(tmp_path / "baked.onnx")
    export_onnx(bake_preprocessing(net, PRE), path)
    pixels = _batch(pixels=True, seed=3)
    expected = net(PRE.normalize(mx.nd.array(pixels))).asnumpy()
    np.testing.assert_allclose(run_onnx(path, pixels), expected, rtol=0, atol=1e-4)


def test_onnx_folds_the_input_scaling_into_the_first_convolution_and_batchnorm_into_all(tmp_path):
    """Baked preprocessing in front of the torchvision topology: two ChannelAffines in a row become one Sub
    in front of the first convolution (no per-channel Slice, Gather or Concat is left), and no BatchNorm is
    left; the logits still equal MXNet's, the zero-padded border of the first convolution included."""
    require(_onnx_available(), "onnx and onnxruntime (pip install 'gluon-inception[onnx]')")
    import onnx

    net = _net(topology="torchvision")
    path = str(tmp_path / "tv-baked.onnx")
    export_onnx(bake_preprocessing(net, PRE), path)
    graph = onnx.load(path).graph
    ops = [node.op_type for node in graph.node]
    assert ops[:2] == ["Sub", "Conv"] and graph.node[0].input[0] == "data" == graph.input[0].name
    assert not {"Slice", "Gather", "Mul", "Add", "BatchNormalization"} & set(ops), sorted(set(ops))
    assert ops.count("Conv") == 57 and ops.count("Concat") == 9  # one per Inception block
    pixels = _batch(pixels=True, seed=4)
    expected = net(PRE.normalize(mx.nd.array(pixels))).asnumpy()
    np.testing.assert_allclose(run_onnx(path, pixels), expected, rtol=0, atol=1e-4)


def test_onnx_check_detects_a_file_that_does_not_match(tmp_path):
    require(_onnx_available(), "onnx and onnxruntime (pip install 'gluon-inception[onnx]')")
    path = str(tmp_path / "a.onnx")
    export_onnx(_net(seed=0), path, input_shape=(1, 3, SIZE, SIZE))
    assert check_onnx(path, _net(seed=5), _batch()) > 1e-3


def test_onnx_export_without_onnx_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ExportError, match=r"onnx package, which is not installed: pip install 'gluon-inception\[onnx"):
        export_onnx(_net(), str(tmp_path / "x.onnx"), input_shape=(1, 3, SIZE, SIZE))
    assert not (tmp_path / "x.onnx").exists()


def test_int8_network_to_onnx_is_refused_clearly(tmp_path):
    require(_onnx_available(), "onnx and onnxruntime (pip install 'gluon-inception[onnx]')")
    from gluon_inception.deploy.quantize import quantize_int8

    qnet = quantize_int8(_net(), mx.nd.array(_batch(n=8)))
    with pytest.raises(ExportError, match="INT8.*--format mxnet"):
        export_onnx(qnet, str(tmp_path / "q.onnx"), input_shape=(1, 3, SIZE, SIZE))


def test_int8_network_exports_to_mxnet_and_reloads(tmp_path):
    from gluon_inception.deploy.quantize import quantize_int8

    qnet = quantize_int8(_net(), mx.nd.array(_batch(n=8)))
    x = mx.nd.array(_batch(n=2, seed=4))
    expected = qnet(x).asnumpy()
    export_mxnet(qnet, str(tmp_path / "q"), input_shape=(1, 3, SIZE, SIZE), metadata={"precision": "int8"})
    loaded, meta = load_mxnet(str(tmp_path / "q"))
    np.testing.assert_allclose(loaded(x).asnumpy(), expected, rtol=1e-5, atol=1e-5)
    assert meta["precision"] == "int8"
