"""The GoogLeNet network: shapes, parameter counts, modes, export, parity with GluonCV."""
import numpy as np
import pytest

from gluon_inception import AuxHead, ConvBN, GoogLeNet, Inception, count_parameters, get_model, googlenet, list_models
from gluon_inception._compat import mx
from gluon_inception.weights.convert import from_gluoncv


def _x(n=2, size=224, seed=0):
    return mx.nd.array(np.random.RandomState(seed).uniform(-1, 1, (n, 3, size, size)).astype("float32"))


@pytest.fixture(scope="module")
def paper_net():
    return googlenet()


@pytest.mark.parametrize("topology", ["paper", "gluoncv"])
def test_stage_shapes_match_the_chapter(topology):
    net = googlenet(topology=topology)
    x = _x(1)
    seen = {}
    for name in net.features.names():
        x = net.features[name](x)
        seen[name] = x.shape[1:]
    assert seen["pool1"] == (64, 56, 56)
    assert seen["pool2"] == (192, 28, 28)  # entering 3a
    assert seen["pool3"] == (480, 14, 14)  # entering 4a
    assert seen["pool4"] == (832, 7, 7)  # entering 5a
    assert seen["inception5b"] == (1024, 7, 7)
    assert seen["global_pool"] == (1024, 1, 1)


@pytest.mark.parametrize("topology, expected", [("gluoncv", 6624904), ("paper", 7005832)])
def test_learnable_parameter_counts(topology, expected):
    net = GoogLeNet(topology=topology)
    assert count_parameters(net) == expected
    with_aux = GoogLeNet(topology=topology, aux_logits=True)
    assert count_parameters(with_aux) - count_parameters(net) == 6379984
    # BN running statistics are parameters too, just not learned by gradient.
    assert count_parameters(net, include_running_stats=True) > expected


def test_paper_topology_has_5x5_and_gluoncv_3x3_third_branch():
    assert GoogLeNet(topology="paper").features["inception3a"].branch3[1].kernel_size == (5, 5)
    assert GoogLeNet(topology="gluoncv").features["inception3a"].branch3[1].kernel_size == (3, 3)


def test_imperative_and_hybridized_outputs_are_equal(paper_net):
    x = _x()
    paper_net.hybridize(active=False)
    imperative = paper_net(x).asnumpy()
    paper_net.hybridize(static_alloc=True, static_shape=True)
    hybrid = paper_net(x).asnumpy()
    paper_net.hybridize(active=False)
    np.testing.assert_allclose(imperative, hybrid, rtol=1e-4, atol=1e-5)


def test_other_input_sizes_work_and_too_small_inputs_say_the_minimum():
    net = googlenet(classes=5)
    assert net(_x(1, 160)).shape == (1, 5)
    assert net(_x(1, net.min_input_size)).shape == (1, 5)
    with pytest.raises(ValueError, match="too small.*at least %d" % net.min_input_size):
        net(_x(1, net.min_input_size - 1))
    with pytest.raises(ValueError, match="3 input channels"):
        net(mx.nd.zeros((1, 1, 224, 224)))


def test_aux_outputs_only_while_training():
    net = googlenet(classes=7, aux_logits=True)
    x = _x(2)
    for hybridize in (False, True):
        net.hybridize(active=hybridize)
        with mx.autograd.record():
            out = net(x)
        assert isinstance(out, tuple) and [o.shape for o in out] == [(2, 7)] * 3
        inference = net(x)
        assert isinstance(inference, mx.nd.NDArray) and inference.shape == (2, 7)
        with mx.autograd.record(train_mode=False):
            assert isinstance(net(x), mx.nd.NDArray)
    with pytest.raises(ValueError, match="auxiliary heads need"):
        with mx.autograd.record():
            net(_x(1, 128))


def test_export_then_symbolblock_imports_gives_equal_outputs(tmp_path):
    net = googlenet(classes=10, aux_logits=True)
    net.hybridize()
    x = _x(2)
    with mx.autograd.record():  # leaves a training graph with aux outputs behind
        net(x)
    expected = net(x).asnumpy()
    net.export(str(tmp_path / "googlenet"))
    loaded = mx.gluon.SymbolBlock.imports(
        str(tmp_path / "googlenet-symbol.json"), ["data"], str(tmp_path / "googlenet-0000.params")
    )
    got = loaded(x)
    assert isinstance(got, mx.nd.NDArray), "exported graph must have one output, the logits"
    np.testing.assert_allclose(got.asnumpy(), expected, rtol=1e-4, atol=1e-5)


def test_export_without_a_forward_pass(tmp_path):
    net = googlenet(classes=3)
    net.export(str(tmp_path / "fresh"))
    loaded = mx.gluon.SymbolBlock.imports(
        str(tmp_path / "fresh-symbol.json"), ["data"], str(tmp_path / "fresh-0000.params")
    )
    x = _x(1)
    np.testing.assert_allclose(loaded(x).asnumpy(), net(x).asnumpy(), rtol=1e-4, atol=1e-5)


def test_features_alone_give_a_1024_vector_for_transfer_learning(paper_net):
    assert paper_net.features(_x(2)).shape == (2, 1024, 1, 1)


def test_parity_with_gluoncv_googlenet(tmp_path):
    from gluoncv.model_zoo import googlenet as gluoncv_googlenet

    theirs = gluoncv_googlenet(classes=1000)
    theirs.initialize(mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2))
    # Non-trivial BN statistics near identity, so that a mapped-wrong tensor would show.
    for name, p in theirs.collect_params().items():
        if name.endswith("running_mean"):
            p.set_data(mx.nd.random.uniform(-0.1, 0.1, shape=p.shape))
        elif name.endswith("running_var"):
            p.set_data(mx.nd.random.uniform(0.8, 1.2, shape=p.shape))
    x = _x(2)
    expected = theirs(x).asnumpy()
    assert np.abs(expected).max() > 1e-2 and np.abs(expected[0] - expected[1]).max() > 1e-3, "logits must depend on x"
    theirs.save_parameters(str(tmp_path / "gluoncv.params"))

    ours = GoogLeNet(topology="gluoncv")
    params = from_gluoncv(ours, mx.nd.load(str(tmp_path / "gluoncv.params")))
    mx.nd.save(str(tmp_path / "ours.params"), params)
    ours.load_parameters(str(tmp_path / "ours.params"))
    np.testing.assert_allclose(ours(x).asnumpy(), expected, rtol=0, atol=1e-5)


def test_parity_converter_refuses_the_paper_topology(tmp_path):
    with pytest.raises(ValueError, match="topology='gluoncv'"):
        from_gluoncv(GoogLeNet(topology="paper"), {})


@pytest.mark.parametrize("classes", [0, -3, 2.5, True])
def test_classes_that_are_not_a_positive_int_are_refused(classes):
    with pytest.raises(ValueError, match="classes must be an int >= 1"):
        GoogLeNet(classes=classes)


def test_unknown_topology_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="'paper', 'gluoncv'"):
        GoogLeNet(topology="v3")


def test_model_names_ignore_case_and_an_unknown_name_lists_the_known_ones():
    assert {"googlenet", "googlenet_paper", "googlenet_gluoncv"} <= set(list_models())
    assert get_model("GoogLeNet_GluonCV", classes=4).topology == "gluoncv"
    with pytest.raises(ValueError, match="unknown model 'resnet50': known names are .*googlenet"):
        get_model("resnet50")


def test_blocks_are_usable_alone_and_have_readable_reprs():
    assert repr(ConvBN(3, 64, 7, strides=2, padding=3)) == "ConvBN(3 -> 64, kernel=(7, 7), stride=(2, 2), pad=(3, 3))"
    block = Inception(192, 64, 96, 128, 16, 32, 32, third_kernel=3)
    assert "1x1 16 -> 3x3 32" in repr(block) and block.out_channels == 256
    with pytest.raises(ValueError, match="third_kernel"):
        Inception(192, 64, 96, 128, 16, 32, 32, third_kernel=7)
    head = AuxHead(528, 10)
    head.initialize()
    assert head(mx.nd.zeros((1, 528, 14, 14))).shape == (1, 10)
    text = repr(GoogLeNet())
    assert "inception4e" in text and "MaxPool(3x3/2, ceil)" in text and len(text.splitlines()) < 25


def test_ctx_is_honoured():
    net = googlenet(classes=2, ctx=mx.cpu(0))
    assert all(p.list_ctx() == [mx.cpu(0)] for p in net.collect_params().values())
