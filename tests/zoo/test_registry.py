"""Model names and pretrained-entry names follow one set of rules; each model name knows its weights."""
import numpy as np
import pytest

from gluon_inception import GoogLeNet, get_model, get_pretrained, list_models, list_pretrained, register_pretrained
from gluon_inception._compat import mx
from gluon_inception.errors import GluonInceptionError, UsageError
from gluon_inception.fileio import file_digest
from gluon_inception.registry import UnknownNameError
from gluon_inception.weights import UnknownPretrainedError, unregister_pretrained
from gluon_inception.zoo import googlenet, pretrained_for, register_model, unregister_model


def test_names_with_weights_are_the_ones_whose_topology_has_an_entry():
    assert list_models(pretrained=True) == ["googlenet", "googlenet_gluoncv", "googlenet_torchvision"]
    assert set(list_models()) - set(list_models(pretrained=True)) == {"googlenet_paper"}
    assert pretrained_for("googlenet") == [e["name"] for e in list_pretrained()]
    assert pretrained_for("GoogLeNet_TorchVision") == ["googlenet_torchvision_in1k"]
    assert get_model("googlenet_torchvision", classes=3).topology == "torchvision"


def test_a_name_without_weights_says_in_one_line_which_names_have_them():
    with pytest.raises(UsageError) as caught:
        get_model("googlenet_paper", pretrained=True)
    message = str(caught.value)
    assert "\n" not in message and "'googlenet_paper' has no pretrained weights" in message
    assert "googlenet, googlenet_gluoncv, googlenet_torchvision" in message


def _model_rules():
    def add(name, overwrite=False):
        register_model(name, overwrite=overwrite)(lambda **kw: name)

    return add, lambda name: get_model(name), unregister_model, UnknownNameError


def _entry_rules():
    base = get_pretrained("googlenet_gluoncv_in1k")

    def add(name, overwrite=False):
        register_pretrained(base.replace(name=name, description=name), overwrite=overwrite)

    return add, lambda name: get_pretrained(name).description, unregister_pretrained, UnknownPretrainedError


@pytest.mark.parametrize("rules", [_model_rules, _entry_rules], ids=["models", "pretrained"])
def test_both_registries_treat_names_alike(rules):
    add, get, remove, unknown = rules()
    add("Zz_Test_Name")
    try:
        assert get("zz_test_name") == get("ZZ_TEST_NAME") == "Zz_Test_Name"  # case-insensitive
        with pytest.raises(ValueError, match="'zz_test_name' is already registered: pass overwrite=True"):
            add("ZZ_test_name")  # a taken name, in any case, needs overwrite
        add("zz_test_name", overwrite=True)
        assert get("Zz_Test_Name") == "zz_test_name"
    finally:
        remove("ZZ_TEST_NAME")
    with pytest.raises(unknown, match="unknown .* 'zz_test_name': known names are googlenet"):
        get("zz_test_name")
    with pytest.raises(unknown):
        remove("zz_test_name")
    assert issubclass(unknown, (UnknownNameError, GluonInceptionError)) and unknown.exit_code == 2


def _classifier(net):
    return net._collect_params_with_prefix()["output.1.weight"].data().asnumpy()


@pytest.fixture
def local_weights(tmp_path):
    """Every shipped entry replaced by a local file of our own format (same name and topology)."""
    originals = [get_pretrained(row["name"]) for row in list_pretrained()]
    values = {}
    for entry in originals:
        net = GoogLeNet(topology=entry.topology)
        net.initialize(mx.init.Xavier())
        net(mx.nd.zeros((1, 3, 224, 224)))
        path = tmp_path / ("%s.params" % entry.name)
        net.save_parameters(str(path))
        values[entry.name] = _classifier(net)
        register_pretrained(
            entry.replace(format="gluon_inception", file_name=path.name, urls=(), sha256=file_digest(path, "sha256")),
            overwrite=True,
        )
    yield tmp_path, values
    for entry in originals:
        register_pretrained(entry, overwrite=True)


def test_every_name_with_weights_builds_with_pretrained_true(local_weights):
    root, values = local_weights
    expected = {
        "googlenet": "googlenet_gluoncv_in1k",  # the most accurate entry, as googlenet(pretrained=True) means
        "googlenet_gluoncv": "googlenet_gluoncv_in1k",
        "googlenet_torchvision": "googlenet_torchvision_in1k",
    }
    assert sorted(expected) == list_models(pretrained=True)
    for name, entry_name in expected.items():
        net = get_model(name, pretrained=True, root=str(root))
        assert net.pretrained_cfg.name == entry_name and net.topology == get_pretrained(entry_name).topology
        np.testing.assert_array_equal(_classifier(net), values[entry_name])
    assert googlenet(pretrained=True, root=str(root)).pretrained_cfg.name == "googlenet_gluoncv_in1k"
