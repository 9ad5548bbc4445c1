"""torchvision's googlenet weights: read without torch, converted, and equal to torchvision's logits.

The peer is torchvision itself, run by its own interpreter in a subprocess (GluonCV refuses to
import beside torch >= 2): ``GLUON_INCEPTION_TORCH_PYTHON``, else ``.venv-torch/bin/python`` at the
repository root (``scripts/setup.sh`` makes it).
"""

import hashlib
import os
import pickle
import subprocess
import types
import zipfile

import numpy as np
import pytest

from gluon_inception import cli, get_pretrained, googlenet, register_pretrained
from gluon_inception._compat import mx
from gluon_inception.weights import PretrainedWarning, store
from gluon_inception.weights.torch_pth import TorchFileError, UnsafePickleError, load_state_dict
from tests.support import ROOT, require
from tests.support.loopback import WeightServer, closed_port_url

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = (224, 208)  # at 208 torchvision's ceil-mode pool before inception5a differs from GluonCV's
pytestmark = pytest.mark.usefixtures("no_store_environment")  # tests/conftest.py


def torch_python():
    return os.environ.get("GLUON_INCEPTION_TORCH_PYTHON") or os.path.join(ROOT, ".venv-torch", "bin", "python")


@pytest.fixture(scope="session")
def peer(tmp_path_factory):
    """torchvision googlenets with random weights, saved as torchvision publishes weights."""
    python = torch_python()
    works = os.path.isfile(python) and (
        subprocess.run([python, "-c", "import torchvision"], capture_output=True).returncode == 0
    )
    require(works, "an interpreter with torch and torchvision at %s (set GLUON_INCEPTION_TORCH_PYTHON)" % python)
    folder = tmp_path_factory.mktemp("torchvision")
    state = np.random.RandomState(0)
    for size in SIZES:
        np.save(folder / ("x%d.npy" % size), state.uniform(-2, 2, (2, 3, size, size)).astype("float32"))
    proc = subprocess.run(
        [python, os.path.join(HERE, "torch_peer.py"), str(folder)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return types.SimpleNamespace(
        folder=folder,
        x={size: mx.nd.array(np.load(folder / ("x%d.npy" % size))) for size in SIZES},
        logits=lambda name, size: np.load(folder / ("%s_logits%d.npy" % (name, size))),
    )


def _check_logits(net, peer, name, sizes=SIZES):
    for size in sizes:
        expected = peer.logits(name, size)
        assert np.abs(expected[0] - expected[1]).max() > 0.1, "the peer's logits must depend on the input"
        np.testing.assert_allclose(net(peer.x[size]).asnumpy(), expected, rtol=0, atol=1e-4)


def test_published_style_weights_from_a_mirror_give_torchvisions_logits(peer, tmp_path, monkeypatch):
    """Like IMAGENET1K_V1: legacy .pth with aux heads, transform_input=True; fetched and converted."""
    data = (peer.folder / "published.pth").read_bytes()
    prefix = hashlib.sha256(data).hexdigest()[:8]
    entry = get_pretrained("googlenet_torchvision_in1k").replace(
        name="test_torchvision_release",
        sha256_prefix=prefix,
        file_name="googlenet-%s.pth" % prefix,
        mirror_path="models/googlenet-%s.pth" % prefix,
    )
    server = WeightServer()
    try:
        server.files["/" + entry.mirror_path] = data
        monkeypatch.setenv(store.ENV_MIRRORS, server.url)
        net = googlenet(pretrained=entry, root=str(tmp_path))
        assert server.requests["/" + entry.mirror_path] == 1
    finally:
        server.stop()
    assert net.topology == "torchvision" and net.features.names()[0] == "input_affine"
    assert net.class_names[0] == "tench"
    _check_logits(net, peer, "published")


@pytest.fixture
def gluoncv_refused_torchvision_served(peer, monkeypatch):
    """A loopback host that answers 404 for GluonCV's file and serves a torchvision-style .pth, which
    stands in for torchvision's file under the registered name (with its checksum and URL)."""
    data = (peer.folder / "published.pth").read_bytes()
    server = WeightServer()
    registered = get_pretrained("googlenet_torchvision_in1k")
    torchvision = get_pretrained("googlenet_torchvision_in1k").replace(
        sha256_prefix=hashlib.sha256(data).hexdigest()[:8], urls=(server.url + "/models/googlenet-1378be20.pth",)
    )
    server.files["/models/googlenet-1378be20.pth"] = data
    register_pretrained(torchvision, overwrite=True)
    monkeypatch.setenv("MXNET_GLUON_REPO", server.url)  # GluonCV's own variable: replaces the S3 URL
    dead_mirror = closed_port_url()
    monkeypatch.setenv(store.ENV_MIRRORS, dead_mirror)
    try:
        yield types.SimpleNamespace(server=server, dead_mirror=dead_mirror)
    finally:
        server.stop()
        register_pretrained(registered, overwrite=True)


def test_pretrained_true_falls_back_to_torchvisions_weights_with_one_warning(
    peer, gluoncv_refused_torchvision_served, tmp_path
):
    with pytest.warns(PretrainedWarning) as recorded:
        net = googlenet(pretrained=True, root=str(tmp_path))
    caught = [w for w in recorded if issubclass(w.category, PretrainedWarning)]
    assert len(caught) == 1, [str(w.message) for w in caught]
    message = str(caught[0].message)
    assert "loaded 'googlenet_torchvision_in1k'" in message and "69.78% top-1" in message
    assert "no source of 'googlenet_gluoncv_in1k' answered" in message and "HTTP 404" in message
    assert caught[0].filename == __file__, "the warning points at the caller's line"
    assert net.pretrained_cfg.name == "googlenet_torchvision_in1k" and net.topology == "torchvision"
    assert "fallback" in net.pretrained_cfg.provenance
    _check_logits(net, peer, "published", sizes=(224,))


def test_a_named_entry_never_falls_back_and_lists_every_source_tried(gluoncv_refused_torchvision_served, tmp_path):
    served = gluoncv_refused_torchvision_served
    with pytest.raises(store.DownloadError) as info:
        googlenet(pretrained="googlenet_gluoncv_in1k", root=str(tmp_path))
    text = str(info.value)
    cache = os.path.join(str(tmp_path), "googlenet-c7c89366.params")
    assert "%s (cache): no verified copy" % cache in text
    assert "%s/gluon/models/googlenet-c7c89366.zip: unreachable" % served.dead_mirror in text
    assert "%s/gluon/models/googlenet-c7c89366.zip: HTTP 404" % served.server.url in text
    assert served.server.requests["/models/googlenet-1378be20.pth"] == 0
    assert not os.path.exists(os.path.join(str(tmp_path), "googlenet-1378be20.pth"))


def test_the_input_transform_is_what_makes_them_equal(peer):
    net = googlenet(pretrained=str(peer.folder / "published.pth"), topology="gluoncv")
    difference = np.abs(net(peer.x[224]).asnumpy() - peer.logits("published", 224)).max()
    assert difference > 0.1, "without torchvision's transform_input the logits must differ"


def test_plain_weights_without_transform_load_with_the_gluoncv_topology(peer):
    """A state_dict of a googlenet trained with transform_input=False (zip format, no aux heads).

    The gluoncv topology has no input transform; its last pool rounds down where torchvision's
    rounds up, which only matters for inputs like 208 (13x13 before the pool), so check at 224.
    """
    net = googlenet(pretrained=str(peer.folder / "plain.pth"), topology="gluoncv")
    _check_logits(net, peer, "plain", sizes=(224,))


def test_convert_cli_writes_params_that_load_with_the_right_topology(peer, tmp_path, capsys):
    out = tmp_path / "googlenet-tv.params"
    assert cli.main(["convert", "--from", "torchvision", str(peer.folder / "published.pth"), str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "sha256 %s" % hashlib.sha256(out.read_bytes()).hexdigest() in stdout
    net = googlenet(pretrained=str(out))  # the .json beside it says topology='torchvision'
    assert net.topology == "torchvision"
    _check_logits(net, peer, "published")
    assert not any(name.startswith("aux") for name in mx.nd.load(str(out))), "torchvision's aux heads are not taken"


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_state_dicts_read_without_torch_keep_views_and_dtypes(peer, layout):
    state = load_state_dict(peer.folder / ("layouts_%s.pth" % layout))
    expected = np.load(peer.folder / "layouts.npz")
    assert sorted(state) == sorted(expected.files)
    for name in expected.files:
        np.testing.assert_array_equal(state[name].astype("float32"), expected[name], err_msg=name)
    assert state["float64"].dtype == np.float64 and state["int64"].dtype == np.int64
    assert state["transposed"].shape == (6, 4) and state["scalar"].shape == ()


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch %s" % self.marker,))


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path, layout):
    marker = tmp_path / "code-ran"
    payload = pickle.dumps({"conv1.conv.weight": _RunsCode(marker)}, protocol=2)
    path = tmp_path / "evil.pth"
    if layout == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("evil/data.pkl", payload)
    else:
        path.write_bytes(
            pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001) + pickle.dumps({}) + payload
        )
    with pytest.raises(UnsafePickleError, match="refusing to load posix.system"):
        load_state_dict(path)
    with pytest.raises(UnsafePickleError):
        googlenet(pretrained=str(path))
    assert not marker.exists()


def test_damaged_pth_files_are_reported(tmp_path, peer):
    data = (peer.folder / "plain.pth").read_bytes()
    for name, blob in {"cut.pth": data[: len(data) // 3], "noise.pth": b"\x80\x02" + b"x" * 100}.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(TorchFileError):
            load_state_dict(tmp_path / name)


def test_the_torchvision_topology_exports_with_its_input_transform(tmp_path):
    net = googlenet(topology="torchvision", classes=5)
    x = mx.nd.array(np.random.RandomState(1).uniform(-2, 2, (1, 3, 224, 224)).astype("float32"))
    net.hybridize()
    expected = net(x).asnumpy()
    net.export(str(tmp_path / "tv"))
    loaded = mx.gluon.SymbolBlock.imports(str(tmp_path / "tv-symbol.json"), ["data"], str(tmp_path / "tv-0000.params"))
    np.testing.assert_allclose(loaded(x).asnumpy(), expected, rtol=1e-5, atol=1e-5)
    assert "ChannelAffine" in repr(net) and net.min_input_size == googlenet(topology="gluoncv").min_input_size
