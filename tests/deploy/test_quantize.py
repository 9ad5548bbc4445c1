"""INT8 and bfloat16: what they cost in accuracy on the demo digits, and clear errors."""
import numpy as np
import pytest

from gluon_inception import cpu
from gluon_inception._compat import mx
from gluon_inception.data import build_val_iter
from gluon_inception.deploy.evaluate import evaluate
from gluon_inception.deploy.quantize import (
    QuantizationError,
    collect_calibration_data,
    quantize_int8,
    to_bfloat16,
)
from gluon_inception.zoo import load_checkpoint_model
from tests.support import cpus
from tests.support.demo import assert_int8_agrees

# Results depend on the CPU's instruction sets: .ci/run runs these again under DNNL_MAX_CPU_ISA=AVX2 and with AMX on.
pytestmark = pytest.mark.isa


@pytest.fixture(scope="module")
def demo(demo_checkpoint, demo_dataset, demo_float32_result):
    loaded = load_checkpoint_model(demo_checkpoint)
    loaded.net.hybridize(static_alloc=True, static_shape=True)
    return loaded, demo_dataset, demo_float32_result


def _calibration_iter(loaded, info):
    return build_val_iter(info.split("train"), 32, preprocessing=loaded.preprocessing, num_threads=2)


@pytest.mark.slow
def test_int8_agrees_with_float32_on_every_demo_digit(demo):
    # Runs in the pytest process on purpose: calibration must work after other MXNet work too.
    # The bounds and their reasoning: tests/support/demo.py, assert_int8_agrees.
    loaded, info, fp32 = demo
    assert fp32.top1 > 0.6, "the demo model must have learned something for the comparison to mean anything"
    qnet = quantize_int8(loaded.net, _calibration_iter(loaded, info), num_calib_batches=4)
    assert_int8_agrees(qnet, loaded.net, info, loaded.preprocessing)
    # INT8 really is a different computation, not the float32 graph again.
    x = mx.nd.array(np.random.RandomState(0).normal(0, 1, (4,) + loaded.preprocessing.data_shape))
    assert np.abs(qnet(x).asnumpy() - loaded.net(x).asnumpy()).max() > 1e-4


@pytest.mark.slow
def test_int8_calibrates_after_the_work_that_broke_mxnets_collector(demo, demo_checkpoint):
    """bench/int8_calibration_repro.py's sequence: after it, MXNet's own collector loses the classifier's
    statistics ("can't generate TBlob for MKLDNN data", swallowed in its ctypes callback); ours must not."""
    loaded, info, fp32 = demo
    first = load_checkpoint_model(demo_checkpoint)
    first.net.hybridize()
    evaluate(first.net, info.split("val"), first.preprocessing, crops=(1, 10))
    for n in (1, 1, 1, 3, 2):
        first.net(mx.nd.random.normal(shape=(n,) + first.preprocessing.data_shape)).asnumpy()
    evaluate(loaded.net, info.split("test"), loaded.preprocessing, batch_size=50)
    for calib_mode in ("naive", "entropy"):
        qnet = quantize_int8(loaded.net, _calibration_iter(loaded, info), num_calib_batches=3, calib_mode=calib_mode)
        assert_int8_agrees(qnet, loaded.net, info, loaded.preprocessing)


@pytest.mark.parametrize("calib_mode", ["naive", "entropy"])
def test_a_layer_output_that_cannot_be_read_stops_the_quantization(monkeypatch, calib_mode):
    """The failure MXNet's own collector swallowed: reading one layer's output raises mid-calibration."""
    from gluon_inception import googlenet

    net = googlenet(classes=3, topology="gluoncv")
    real_asnumpy, calls = mx.nd.NDArray.asnumpy, []

    def asnumpy_failing_on_the_fifth_read(self):
        if self.shape[:1] != (8,):  # a parameter (the AMX channel padding reads them), not a layer's output
            return real_asnumpy(self)
        calls.append(self.shape)
        if len(calls) == 5:
            raise mx.base.MXNetError("Check failed: !IsMKLDNNData(): We can't generate TBlob for MKLDNN data.")
        return real_asnumpy(self)

    monkeypatch.setattr(mx.nd.NDArray, "asnumpy", asnumpy_failing_on_the_fifth_read)
    with pytest.raises(QuantizationError, match=r"failed while reading the output of layer \S+ \(.*MKLDNN data.*"
                                                r"exclude_layers_match") as caught:  # fmt: skip
        quantize_int8(net, mx.nd.random.normal(shape=(8, 3, 32, 32)), calib_mode=calib_mode)
    assert len(calls) == 5, "the calibration went on after the failed read"
    assert isinstance(caught.value.__cause__, mx.base.MXNetError)


def test_a_layer_without_statistics_stops_the_quantization(monkeypatch):
    """If the float32 graph gives no output for a layer MXNet calibrates, nothing is quantized with a guess."""
    import gluon_inception.deploy.quantize as quantize
    from gluon_inception import googlenet

    net = googlenet(classes=3, topology="gluoncv")
    real = quantize._layer_statistics

    def asks_for_one_more_layer(sym, args, auxs, layers, *rest):
        return real(sym, args, auxs, layers + ["nowhere_output"], *rest)

    monkeypatch.setattr(quantize, "_layer_statistics", asks_for_one_more_layer)
    with pytest.raises(QuantizationError, match="nowhere_output"):
        quantize_int8(net, mx.nd.random.normal(shape=(8, 3, 32, 32)))


@pytest.mark.slow
def test_bfloat16_top1_on_the_demo_test_split(demo):
    loaded, info, fp32 = demo
    if not cpu.supports_bf16():
        with pytest.raises(QuantizationError, match="no native bfloat16"):
            to_bfloat16(loaded.net, input_shape=(1,) + loaded.preprocessing.data_shape)
        return
    bnet = to_bfloat16(loaded.net, input_shape=(1,) + loaded.preprocessing.data_shape)
    bf16 = evaluate(bnet, info.split("test"), loaded.preprocessing, batch_size=50)[1]
    print("demo test split, 1 crop: float32 top-1 %.4f, bfloat16 top-1 %.4f" % (fp32.top1, bf16.top1))
    assert abs(bf16.top1 - fp32.top1) <= 0.005


def test_bfloat16_is_refused_on_a_cpu_without_it(monkeypatch):
    cpus.simulate(monkeypatch, cpus.AVX2_ONLY)
    with pytest.raises(QuantizationError, match="no native bfloat16"):
        to_bfloat16(object())
    cpus.simulate(monkeypatch, cpus.SAPPHIRE_RAPIDS)
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX2")  # a capped CPU is refused like one without the instructions
    with pytest.raises(QuantizationError, match="no native bfloat16"):
        to_bfloat16(object())


def test_calibration_data_drops_padding_rows_and_stops_after_n_batches():
    batches = [
        mx.io.DataBatch(data=[mx.nd.ones((4, 3, 8, 8)) * i], label=[mx.nd.zeros(4)], pad=2 if i == 1 else 0)
        for i in range(3)
    ]
    data = collect_calibration_data(batches, num_batches=2)
    assert data.shape == (6, 3, 8, 8)  # 4 + (4 - 2 padding rows)
    assert sorted(set(data.asnumpy()[:, 0, 0, 0].tolist())) == [0.0, 1.0]


def test_quantize_without_calibration_images_is_a_clear_error():
    from gluon_inception import googlenet

    with pytest.raises(QuantizationError, match="yielded no batch"):
        quantize_int8(googlenet(classes=3), [])
    with pytest.raises(QuantizationError, match="unknown calib_mode"):
        quantize_int8(googlenet(classes=3), [], calib_mode="best")


def test_quantizing_keeps_the_float_networks_hybridize_settings():
    from gluon_inception import googlenet

    net = googlenet(classes=3, topology="gluoncv")
    net.hybridize(static_alloc=True, static_shape=True)
    quantize_int8(net, mx.nd.random.normal(shape=(8, 3, 32, 32)))
    assert net._active and dict(net._flags)["static_alloc"] and dict(net._flags)["static_shape"]


def _ops(block):
    """Operator name -> count in a SymbolBlock's graph."""
    import collections
    import json

    graph = json.loads(block._cached_graph[1].tojson())
    return collections.Counter(node["op"] for node in graph["nodes"] if node["op"] != "null")


def test_optimize_float32_fuses_batchnorm_and_relu_into_the_convolutions():
    from gluon_inception import googlenet
    from gluon_inception.deploy.quantize import optimize_float32

    net = googlenet(classes=3, topology="gluoncv")
    net.hybridize(static_alloc=True)
    x = mx.nd.array(np.random.RandomState(0).normal(0, 1, (2, 3, 32, 32)))
    fused = optimize_float32(net, input_shape=(2, 3, 32, 32))
    ops = _ops(fused)
    assert ops["_sg_mkldnn_conv"] == 57 and "BatchNorm" not in ops and "Activation" not in ops, ops
    np.testing.assert_allclose(fused(x).asnumpy(), net(x).asnumpy(), rtol=1e-4, atol=1e-4)
    assert dict(net._flags)["static_alloc"] and not dict(net._flags)["static_shape"], "the caller's settings must stay"


def test_to_bfloat16_runs_the_fused_convolutions_in_bfloat16_but_the_stem():
    from gluon_inception import googlenet

    net = googlenet(classes=3, topology="gluoncv")
    if not cpu.supports_bf16():
        with pytest.raises(QuantizationError, match="no native bfloat16"):
            to_bfloat16(net, input_shape=(2, 3, 32, 32))
        return
    bnet = to_bfloat16(net, input_shape=(2, 3, 32, 32))
    ops = _ops(bnet)
    assert ops["_sg_mkldnn_conv"] == 57 and "BatchNorm" not in ops, ops
    sym = bnet._cached_graph[1]
    internals = sym.get_internals()
    types = dict(zip(internals.list_outputs(), internals.infer_type(data="float32")[1]))
    convs = [name for name in types if name.startswith("sg_mkldnn_conv") and name.endswith("_output")]
    low = [name for name in convs if types[name] != np.float32]
    stem = [name for name in convs if name.endswith("_0_output")]
    if cpu.amx_in_use():  # with AMX switched on, the stem is fastest in bfloat16 too
        assert len(low) == 57, types
        # and every convolution's input is padded to a multiple of 32 channels (amx.pad_channels)
        weights = [p.data().shape for name, p in bnet.collect_params().items() if name.endswith("weight")]
        assert all(s[1] < 32 or s[1] % 32 == 0 for s in weights if len(s) == 4), weights
        assert any(s[1] == 544 for s in weights), weights
    else:
        assert len(low) == 56 and len(stem) == 1 and stem[0] not in low, types
    assert sym.infer_type(data="float32")[1] == [np.float32]
    x = mx.nd.array(np.random.RandomState(0).normal(0, 1, (2, 3, 32, 32)))
    got, want = bnet(x).asnumpy(), net(x).asnumpy()
    assert got.dtype == np.float32 and np.abs(got - want).max() < 0.1 * np.abs(want).max() + 1e-3


def test_fold_batchnorm_keeps_the_float32_function_with_trained_statistics():
    from gluon_inception import googlenet
    from gluon_inception.deploy.graph import fold_batchnorm
    from gluon_inception.deploy.quantize import _float_graph

    net = googlenet(classes=3, topology="gluoncv")
    rng = np.random.RandomState(0)
    for name, param in net.collect_params().items():
        if name.endswith(("running_mean", "beta")):
            param.set_data(mx.nd.array(rng.normal(0, 0.5, param.shape)))
        elif name.endswith(("running_var", "gamma")):
            param.set_data(mx.nd.array(rng.uniform(0.5, 2.0, param.shape)))
    sym, args, auxs = _float_graph(net, (2, 3, 32, 32))
    folded, fargs, fauxs = fold_batchnorm(sym, args, auxs)
    assert "BatchNorm" not in folded.tojson() and not fauxs and set(args) - set(fargs)
    x = mx.nd.array(rng.normal(0, 1, (2, 3, 32, 32)))
    outputs = []
    for s, a, b in ((sym, args, auxs), (folded, fargs, fauxs)):
        exe = s.simple_bind(mx.cpu(), grad_req="null", data=x.shape)
        exe.copy_params_from(a, b)
        outputs.append(exe.forward(is_train=False, data=x)[0].asnumpy())
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-4, atol=1e-4 * np.abs(outputs[0]).max())


def _random_statistics(net, seed=0):
    rng = np.random.RandomState(seed)
    for name, param in net.collect_params().items():
        if name.endswith(("running_mean", "beta")):
            param.set_data(mx.nd.array(rng.normal(0, 0.5, param.shape)))
        elif name.endswith(("running_var", "gamma")):
            param.set_data(mx.nd.array(rng.uniform(0.5, 2.0, param.shape)))


def _run_graph(sym, args, auxs, x):
    exe = sym.simple_bind(mx.cpu(), grad_req="null", data=x.shape)
    exe.copy_params_from(args, auxs)
    return exe.forward(is_train=False, data=x)[0].asnumpy()


@pytest.mark.parametrize("fold", [False, True], ids=["with BatchNorm", "BatchNorm folded"])
def test_channel_padding_reaches_32_channel_multiples_and_keeps_the_function(fold):
    from gluon_inception import googlenet
    from gluon_inception.deploy.amx import pad_channels
    from gluon_inception.deploy.graph import fold_batchnorm
    from gluon_inception.deploy.quantize import _float_graph

    net = googlenet(classes=3, topology="gluoncv")
    _random_statistics(net)
    shape = (2, 3, 32, 32)
    sym, args, auxs = _float_graph(net, shape)
    if fold:
        sym, args, auxs = fold_batchnorm(sym, args, auxs)
    psym, pargs, pauxs, padded = pad_channels(sym, args, auxs, shape)
    grown = {(before, after) for _, before, after in padded}
    assert grown == {(112, 128), (144, 160), (528, 544), (48, 64)}, padded
    assert sum(1 for _, before, _ in padded if before == 528) == 4  # every reader of inception4e's input
    weights = [v.shape for k, v in pargs.items() if v.ndim == 4]
    assert all(s[1] < 32 or s[1] % 32 == 0 for s in weights), weights
    assert sorted(pargs) == sorted(args) and sorted(pauxs) == sorted(auxs)
    x = mx.nd.array(np.random.RandomState(1).normal(0, 1, shape))
    want = _run_graph(sym, args, auxs, x)
    np.testing.assert_allclose(_run_graph(psym, pargs, pauxs, x), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_channel_padding_stops_where_it_would_reach_something_but_a_convolution():
    from gluon_inception.deploy.amx import pad_channels

    data = mx.sym.var("data")
    a = mx.sym.Activation(mx.sym.Convolution(data, kernel=(1, 1), num_filter=40, name="a"), act_type="relu")
    b = mx.sym.Convolution(a, kernel=(3, 3), pad=(1, 1), num_filter=8, name="b")  # reads 40 channels
    head = mx.sym.FullyConnected(mx.sym.concat(mx.sym.flatten(b), mx.sym.flatten(a), dim=1), num_hidden=2, name="fc")
    shape = (1, 4, 5, 5)
    arg_shapes, _, _ = head.infer_shape(data=shape)
    rng = np.random.RandomState(0)
    args = {n: mx.nd.array(rng.normal(0, 1, s)) for n, s in zip(head.list_arguments(), arg_shapes) if n != "data"}
    psym, pargs, _, padded = pad_channels(head, args, {}, shape)
    assert padded == [] and all(pargs[k].shape == args[k].shape for k in args)  # a's channels also feed fc
    x = mx.nd.array(rng.normal(0, 1, shape))
    np.testing.assert_array_equal(_run_graph(psym, pargs, {}, x), _run_graph(head, args, {}, x))


def test_int8_and_bfloat16_on_amx_are_refused_at_input_sizes_onednn_corrupts_memory_at(monkeypatch):
    # 96 px gives inception 4 its 6x6 maps (cpu.AMX_1X1_BROKEN_AREAS). AMX is simulated: the refusals come
    # before anything runs in bfloat16, and INT8 (padded for AMX) runs on any CPU's kernels; 128 px is
    # not refused.
    from gluon_inception import googlenet
    from gluon_inception.deploy.amx import refuse_broken_input

    cpus.simulate(monkeypatch, cpus.SAPPHIRE_RAPIDS, amx=True)
    net = googlenet(classes=4, topology="gluoncv")
    images = mx.nd.random.normal(shape=(2, 3, 96, 96))
    expected = ("at input shape 2x3x96x96: on this CPU's AMX tiles, the oneDNN 2.4 inside MXNet 1.9.1 corrupts memory "
                "in 1x1 convolutions with a 6x6 output (20 of them here); use an image size of 94 or 111, or run "
                "without AMX: DNNL_MAX_CPU_ISA=AVX512_CORE_BF16 in the environment")  # fmt: skip
    with pytest.raises(QuantizationError) as err:
        quantize_int8(net, images, batch_size=2)
    assert str(err.value) == "INT8 " + expected
    with pytest.raises(QuantizationError) as err:
        to_bfloat16(net, input_shape=(2, 3, 96, 96))
    assert str(err.value) == "bfloat16 " + expected
    assert refuse_broken_input(net(mx.sym.var("data")), (2, 3, 128, 128), "INT8", QuantizationError) is None
    # Built at a size that works, the models refuse the size that does not when it is given to them.
    qnet = quantize_int8(net, mx.nd.random.normal(shape=(2, 3, 128, 128)), batch_size=2)
    assert qnet(mx.nd.random.normal(shape=(2, 3, 128, 128))).shape == (2, 4)
    with pytest.raises(QuantizationError, match=r"^INT8 at input shape 1x3x96x96: .* with a 6x6 output"):
        qnet(mx.nd.random.normal(shape=(1, 3, 96, 96)))
    bnet = to_bfloat16(net, input_shape=(1, 3, 128, 128))
    with pytest.raises(QuantizationError, match=r"^bfloat16 at input shape 1x3x96x96: .* with a 6x6 output"):
        bnet(mx.nd.random.normal(shape=(1, 3, 96, 96)))
