"""``gluon_inception.deploy.convert``: one entry point for every inference precision, and where each runs."""
import json

import numpy as np
import pytest

import gluon_inception.deploy.precision as precision
from gluon_inception import cpu, googlenet
from gluon_inception._compat import mx
from gluon_inception.deploy import PRECISIONS, PrecisionError, check_precision, convert
from gluon_inception.errors import USAGE, UsageError
from tests.support import cpus

# Results depend on the CPU's instruction sets: .ci/run runs these again under DNNL_MAX_CPU_ISA=AVX2 and with AMX on.
pytestmark = pytest.mark.isa

SHAPE = (2, 3, 32, 32)


def _net():
    net = googlenet(classes=3, topology="gluoncv")
    net.initialize(mx.init.Xavier(), force_reinit=True)
    return net


def _x():
    return mx.nd.array(np.random.RandomState(0).normal(0, 1, SHAPE))


def test_the_vocabulary_is_four_words():
    assert PRECISIONS == ("float32", "float16", "bfloat16", "int8")


@pytest.mark.parametrize("name, device, bf16_cpu, refusal", [
    ("float32", "cpu", False, None),
    ("int8", "cpu", False, None),
    ("bfloat16", "cpu", True, None),
    ("bfloat16", "cpu", False, "bfloat16 needs a CPU with AVX-512 BF16 or AMX-BF16 (this one has neither"),
    ("float16", "cpu", True, "float16 needs a GPU: MXNet 1.9.1 has no float16 CPU kernels"),
    ("float32", "gpu", True, None),
    ("float16", "gpu", True, None),
    ("bfloat16", "gpu", True, "bfloat16 runs on the CPU only"),
    ("int8", "gpu", True, "int8 runs on the CPU only"),
    ("float64", "cpu", True, "'float64' is not a precision: choose one of float32, float16, bfloat16, int8"),
])  # fmt: skip
def test_each_precision_runs_where_mxnet_has_its_kernels(monkeypatch, name, device, bf16_cpu, refusal):
    cpus.simulate(monkeypatch, cpus.AVX512_BF16 if bf16_cpu else cpus.AVX2_ONLY)
    ctx = mx.gpu(0) if device == "gpu" else mx.cpu()  # only the context object: no GPU is used
    if refusal is None:
        check_precision(name, ctx)
        return
    with pytest.raises(PrecisionError) as caught:
        check_precision(name, ctx)
    message = str(caught.value)
    assert message.startswith(refusal) and "\n" not in message
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == USAGE


def test_float32_is_the_network_itself_hybridized_for_serving():
    net = _net()
    assert convert(net, "float32", input_shape=SHAPE) is net
    assert net._active and dict(net._flags)["static_alloc"] and dict(net._flags)["static_shape"]


def test_int8_needs_calibration_images_and_then_quantizes():
    net = _net()
    with pytest.raises(PrecisionError, match="int8 needs calibration images"):
        convert(net, "int8")
    x = _x()
    want = net(x).asnumpy()
    qnet = convert(net, "int8", calib_data=mx.nd.random.normal(shape=(8,) + SHAPE[1:]), batch_size=4)
    got = qnet(x).asnumpy()
    assert "quantize" in qnet._cached_graph[1].tojson()
    assert got.shape == want.shape and got.dtype == np.float32


def test_bfloat16_is_the_fused_onednn_conversion_or_a_usage_error():
    net = _net()
    if not cpu.supports_bf16():
        with pytest.raises(PrecisionError, match="bfloat16 needs a CPU"):
            convert(net, "bfloat16", input_shape=SHAPE)
        return
    x = _x()
    want = net(x).asnumpy()
    bnet = convert(net, "bfloat16", input_shape=SHAPE)
    ops = {node["op"] for node in json.loads(bnet._cached_graph[1].tojson())["nodes"]}
    assert "_sg_mkldnn_conv" in ops and "amp_cast" in ops, ops
    got = bnet(x).asnumpy()
    assert got.dtype == np.float32 and np.abs(got - want).max() < 0.1 * np.abs(want).max() + 1e-3


def test_float16_is_refused_on_the_cpu_before_any_work():
    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError("the network was used before the refusal")

    with pytest.raises(PrecisionError, match="float16 needs a GPU"):
        convert(Untouchable(), "float16")


def test_float16_conversion_casts_the_graph_to_float16_between_float32_input_and_output():
    # Built on the CPU, where it cannot run (MXNet 1.9.1 has no float16 CPU kernels), to read its graph.
    half = precision._to_float16(_net(), SHAPE, mx.cpu())
    sym = half._cached_graph[1]
    internals = sym.get_internals()
    types = dict(zip(internals.list_outputs(), internals.infer_type(data="float32")[1]))
    convs = [name for name in types if name.endswith("_conv0_fwd_output")]
    assert convs and all(types[name] == np.float16 for name in convs), types
    assert sym.infer_type(data="float32")[1] == [np.float32]
    assert dict(half._flags)["static_alloc"] and dict(half._flags)["static_shape"]
