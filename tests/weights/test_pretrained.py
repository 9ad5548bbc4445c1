"""googlenet(pretrained=...) with GluonCV's weight format, served the way GluonCV publishes it.

The peer is GluonCV itself: its googlenet with random weights, saved with ``save_parameters`` and
zipped under ``gluon/models/`` like GluonCV's repository, served by a real HTTP server on 127.0.0.1.
"""

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import types
import zipfile

import numpy as np
import pytest

from gluon_inception import cli, get_pretrained, googlenet, list_pretrained, register_pretrained
from gluon_inception._compat import mx
from gluon_inception.fileio import file_digest
from gluon_inception.preprocessing import Preprocessing
from gluon_inception.weights import (
    ChecksumError,
    CorruptWeightsError,
    PretrainedWarning,
    UnknownPretrainedError,
    purge,
    resolve_pretrained,
    store,
    unregister_pretrained,
)
from gluon_inception.zoo import googlenet_paper
from tests.support import child_env

GLUONCV_SHA1 = "c7c89366fb4410c0aeb34827795f7dab9423f950"
pytestmark = pytest.mark.usefixtures("no_store_environment")  # tests/conftest.py


def _zip(member, data):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, data)
    return archive.getvalue()


@pytest.fixture(scope="session")
def release(tmp_path_factory):
    """GluonCV's googlenet with random weights, published the way GluonCV publishes its weights."""
    from gluoncv.model_zoo import googlenet as gluoncv_googlenet

    folder = tmp_path_factory.mktemp("gluoncv_release")
    theirs = gluoncv_googlenet(classes=1000)
    # He initialisation and BatchNorm values near identity keep the signal alive through all 22
    # layers (with Xavier and made-up statistics every logit is 0 and any mapping would "match");
    # distinct values per tensor make a misplaced one show.
    theirs.initialize(mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2))
    state = np.random.RandomState(3)
    ranges = {"running_mean": (-0.2, 0.2), "running_var": (0.7, 1.3), "gamma": (0.7, 1.3), "beta": (-0.2, 0.2)}
    for name, param in theirs.collect_params().items():
        for suffix, (low, high) in ranges.items():
            if name.endswith(suffix):
                param.set_data(mx.nd.array(state.uniform(low, high, size=param.shape)))
    theirs.save_parameters(str(folder / "saved.params"))
    sha1 = file_digest(folder / "saved.params", "sha1")
    file_name = "googlenet-%s.params" % sha1[:8]
    params = (folder / "saved.params").read_bytes()
    # GluonCV's own model, loaded from the file it publishes, gives the reference logits.
    reference = gluoncv_googlenet(classes=1000)
    reference.load_parameters(str(folder / "saved.params"))
    x = mx.nd.array(np.random.RandomState(0).uniform(-1, 1, (2, 3, 224, 224)).astype("float32"))
    logits = reference(x).asnumpy()
    assert np.abs(logits[0] - logits[1]).max() > 0.1, "the peer's logits must depend on the input"
    entry = get_pretrained("googlenet_gluoncv_in1k").replace(
        name="test_gluoncv_release",
        sha1=sha1,
        file_name=file_name,
        mirror_path="gluon/models/" + file_name[:-7] + ".zip",
    )
    return types.SimpleNamespace(
        folder=folder,
        params=params,
        params_path=str(folder / "saved.params"),
        archive=_zip(file_name, params),
        url_path="/" + entry.mirror_path,
        entry=entry,
        x=x,
        logits=logits,
    )


@pytest.fixture
def registered(release):
    entry = register_pretrained(release.entry)
    yield entry
    unregister_pretrained(entry.name)


@pytest.fixture
def cached(release, tmp_path):
    """A cache folder that already holds the release file (what a previous download leaves)."""
    root = tmp_path / "cache"
    root.mkdir()
    (root / release.entry.file_name).write_bytes(release.params)
    return str(root)


def _digest(net):
    digest = hashlib.sha256()
    for _, param in sorted(net._collect_params_with_prefix().items()):
        digest.update(param.data().asnumpy().tobytes())
    return digest.hexdigest()


# -- the two "done when" checks -------------------------------------------------------------------
def test_gluoncv_archive_from_mxnet_gluon_repo_gives_gluoncvs_own_logits(
    release, registered, server, tmp_path, monkeypatch
):
    server.files[release.url_path] = release.archive
    monkeypatch.setenv("MXNET_GLUON_REPO", server.url + "/")
    root = tmp_path / "cache"
    net = googlenet(pretrained=registered.name, root=str(root))
    assert net.topology == "gluoncv" and net.pretrained_cfg is registered
    np.testing.assert_allclose(net(release.x).asnumpy(), release.logits, rtol=0, atol=1e-4)
    assert os.listdir(root) == [registered.file_name]
    assert server.requests[release.url_path] == 1


def test_pretrained_true_with_a_file_that_does_not_match_fails_and_keeps_nothing(
    release, server, tmp_path, monkeypatch
):
    server.files["/gluon/models/googlenet-c7c89366.zip"] = _zip("googlenet-c7c89366.params", release.params)
    monkeypatch.setenv("MXNET_GLUON_REPO", server.url)
    root = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="expected sha1 %s" % GLUONCV_SHA1) as info:
        googlenet(pretrained=True, root=str(root))
    assert hashlib.sha1(release.params).hexdigest() in str(info.value)
    assert server.requests["/gluon/models/googlenet-c7c89366.zip"] == 1, "MXNET_GLUON_REPO replaces the default host"
    assert os.listdir(root) == []


# -- what pretrained= means -----------------------------------------------------------------------
def test_true_is_the_most_accurate_imagenet_entry_and_names_are_listed():
    assert resolve_pretrained(True).name == "googlenet_gluoncv_in1k"
    rows = list_pretrained()
    assert [r["name"] for r in rows][:2] == ["googlenet_gluoncv_in1k", "googlenet_torchvision_in1k"]
    assert rows[0]["default"] and not rows[1]["default"]
    assert rows[0]["checksum"] == "sha1:" + GLUONCV_SHA1
    assert rows[1]["checksum"] == "sha256-prefix:1378be20" and rows[1]["input_transform"]
    for row in rows:
        for key in (
            "topology",
            "file_name",
            "urls",
            "top1",
            "top5",
            "accuracy_note",
            "preprocessing",
            "license",
            "source",
            "provenance",
            "checksum_note",
        ):
            assert row[key], (row["name"], key)
        json.dumps(row)  # plain data, ready for a docs table


def test_pretrained_entries_are_the_registered_entries_most_accurate_first():
    from gluon_inception.weights import UnknownPretrainedError, pretrained_entries, unregister_pretrained

    entries = pretrained_entries()
    assert [e.name for e in entries] == [r["name"] for r in list_pretrained()]
    low = register_pretrained(entries[0].replace(name="a_low_accuracy_copy", top1=1.0))
    try:
        assert pretrained_entries()[-1] is low
        assert resolve_pretrained("A_Low_Accuracy_Copy") is low  # names resolve case-insensitively
    finally:
        unregister_pretrained(low.name)
    assert low not in pretrained_entries()
    with pytest.raises(UnknownPretrainedError):
        resolve_pretrained("a_low_accuracy_copy")


def test_a_contradicting_topology_is_refused_before_any_download():
    with pytest.raises(ValueError, match="no ImageNet-1k weights are registered for topology 'paper'"):
        googlenet(pretrained=True, topology="paper")
    with pytest.raises(ValueError, match="need topology='gluoncv', but topology='paper' was passed"):
        googlenet(pretrained="googlenet_gluoncv_in1k", topology="paper")
    with pytest.raises(ValueError, match="need topology='torchvision'"):
        googlenet_paper(pretrained="googlenet_torchvision_in1k")


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownPretrainedError, match="known names are googlenet_gluoncv_in1k, googlenet_torch"):
        googlenet(pretrained="googlenet_imagenet21k")


def test_names_and_entry_are_attached(release, registered, cached):
    net = googlenet(pretrained=registered.name, root=cached)
    assert net.pretrained_cfg.name == registered.name and net.pretrained_cfg.preprocessing == Preprocessing()
    assert len(net.class_names) == 1000 and net.class_names[0] == "tench" and net.class_ids[0] == "n01440764"
    top = int(net(release.x).asnumpy()[0].argmax())
    assert isinstance(net.class_names[top], str)


def test_other_class_counts_fine_tune_a_new_classifier(release, registered, cached):
    full = googlenet(pretrained=registered, root=cached)
    with pytest.warns(PretrainedWarning, match="classifier is freshly initialised \\(fine-tuning\\)"):
        net = googlenet(pretrained=registered, root=cached, classes=10)
    assert net(release.x).shape == (2, 10) and net.class_names is None
    assert np.array_equal(net.features(release.x).asnumpy(), full.features(release.x).asnumpy())


def test_aux_heads_load_the_backbone_and_warn_that_heads_are_untrained(release, registered, cached):
    with pytest.warns(PretrainedWarning, match="aux1 and aux2 are freshly initialised \\(untrained\\)"):
        net = googlenet(pretrained=registered, root=cached, aux_logits=True)
    np.testing.assert_allclose(net(release.x).asnumpy(), release.logits, rtol=0, atol=1e-4)
    with mx.autograd.record():
        assert len(net(release.x)) == 3


def test_a_local_copy_of_a_registered_file_is_verified(release, registered, tmp_path):
    copy = tmp_path / registered.file_name
    copy.write_bytes(release.params)
    assert googlenet(pretrained=str(copy)).pretrained_cfg is registered
    assert googlenet(pretrained=str(tmp_path)).pretrained_cfg is registered  # a folder holding it
    damaged = bytearray(release.params)
    damaged[-10] ^= 0xFF
    copy.write_bytes(bytes(damaged))
    with pytest.raises(ChecksumError, match="is not the file of pretrained entry"):
        googlenet(pretrained=str(copy))


def test_gluoncv_params_and_zip_load_from_any_path(release, tmp_path):
    zipped = tmp_path / "published.zip"
    zipped.write_bytes(release.archive)
    for path in (release.params_path, str(zipped)):
        net = googlenet(pretrained=path)
        assert net.topology == "gluoncv"
        np.testing.assert_allclose(net(release.x).asnumpy(), release.logits, rtol=0, atol=1e-4)


def test_a_corrupt_params_file_says_so(release, tmp_path):
    broken = tmp_path / "broken.params"
    broken.write_bytes(release.params[: len(release.params) // 2])
    with pytest.raises(CorruptWeightsError, match="damaged, truncated or not an MXNet .params file"):
        googlenet(pretrained=str(broken))
    with pytest.raises(FileNotFoundError, match="no such file"):
        googlenet(pretrained=str(tmp_path / "missing.params"))


def test_register_refuses_duplicates_and_purge_removes_only_registered_files(release, registered, cached):
    with pytest.raises(ValueError, match="already registered: pass overwrite=True"):
        register_pretrained(registered)
    assert register_pretrained(registered, overwrite=True) is registered
    other = os.path.join(cached, "resnet50_v1-cc729d95.params")
    open(other, "wb").close()
    removed = purge(root=cached, names=[registered.name])
    assert removed == [os.path.join(cached, registered.file_name)]
    assert os.listdir(cached) == ["resnet50_v1-cc729d95.params"]


LOAD_AT_ONCE = """
import hashlib, json, os, sys, time
from gluon_inception import cli, get_pretrained, googlenet
changes, root, go = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
entry = get_pretrained("googlenet_gluoncv_in1k").replace(**changes)
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.01)
net = googlenet(pretrained=entry, root=root)
digest = hashlib.sha256()
for _, param in sorted(net._collect_params_with_prefix().items()):
    digest.update(param.data().asnumpy().tobytes())
print(digest.hexdigest(), flush=True)
"""


@pytest.mark.slow
def test_three_processes_loading_at_once_download_once_and_agree(release, registered, server, tmp_path):
    server.files[release.url_path] = release.archive
    server.delay = 0.5  # the first download is still running when the others ask
    root, go = tmp_path / "cache", tmp_path / "go"
    changes = {k: getattr(release.entry, k) for k in ("name", "sha1", "file_name", "mirror_path")}
    env = child_env(MXNET_GLUON_REPO=server.url)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", LOAD_AT_ONCE, json.dumps(changes), str(root), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(3)
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        go.touch()
        results = [proc.communicate(timeout=300) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    assert all(proc.returncode == 0 for proc in procs), [err[-2000:] for _, err in results]
    digests = {out.strip() for out, _ in results}
    assert server.requests[release.url_path] == 1
    assert digests == {_digest(googlenet(pretrained=str(root / registered.file_name)))}
    assert sorted(os.listdir(root)) == [registered.file_name]


# -- the command line -----------------------------------------------------------------------------
def _cli(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "gluon_inception.cli", *args],
        capture_output=True,
        text=True,
        env=child_env(),
        **kwargs,
    )


def test_convert_from_gluoncv_prints_the_sha256_of_a_file_that_loads(release, tmp_path):
    zipped = tmp_path / "published.zip"
    zipped.write_bytes(release.archive)
    out = tmp_path / "ours.params"
    proc = _cli("convert", "--from", "gluoncv", str(zipped), str(out))
    assert proc.returncode == 0, proc.stderr
    assert "sha256 %s" % file_digest(out, "sha256") in proc.stdout
    meta = json.loads((tmp_path / "ours.json").read_text())
    assert meta["model"]["topology"] == "gluoncv" and meta["converted_from"]["format"] == "gluoncv"
    net = googlenet(pretrained=str(out))
    np.testing.assert_allclose(net(release.x).asnumpy(), release.logits, rtol=0, atol=1e-4)


def test_convert_refuses_the_wrong_source_format_and_writes_nothing(release, tmp_path, capsys):
    zipped = tmp_path / "published.zip"
    zipped.write_bytes(release.archive)
    assert cli.main(["convert", "--from", "torchvision", str(zipped), str(tmp_path / "x.params")]) == 2
    assert "cannot read a torchvision state dict" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["published.zip"]


def test_cli_lists_and_purges(release, cached, capsys):
    assert cli.main(["pretrained", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["name"] == "googlenet_gluoncv_in1k" and listed[0]["default"]
    shutil.copy(release.params_path, os.path.join(cached, "googlenet-c7c89366.params"))
    open(os.path.join(cached, "googlenet-c7c89366.params.lock"), "w").close()
    assert cli.main(["pretrained", "purge", "--root", cached]) == 0
    assert "googlenet-c7c89366.params.lock" in capsys.readouterr().out
    assert os.listdir(cached) == [release.entry.file_name], "entries registered elsewhere are not purged here"


def test_the_markdown_table_is_the_registrys():
    # The docs' model-zoo page is generated from the same rows (tests/test_docs.py checks that one).
    from gluon_inception.cli.pretrained import markdown_table

    rows = list_pretrained()
    lines = markdown_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    for line, row in zip(lines[2:], rows):
        assert line.startswith("| `%s`%s |" % (row["name"], " (default)" if row["default"] else ""))
        assert "| %s / %s |" % (row["top1"], row["top5"]) in line and "`%s`" % row["checksum"] in line


def test_our_own_params_load_by_path_with_their_topology(tmp_path, recwarn):
    trained = googlenet(topology="paper", classes=7)
    trained.save_parameters(str(tmp_path / "run-0003.params"))
    x = mx.nd.array(np.random.RandomState(2).uniform(-1, 1, (1, 3, 224, 224)).astype("float32"))
    net = googlenet(pretrained=str(tmp_path / "run-0003.params"), classes=7)
    assert net.topology == "paper" and not [w for w in recwarn.list if w.category is PretrainedWarning]
    np.testing.assert_allclose(net(x).asnumpy(), trained(x).asnumpy(), rtol=0, atol=1e-5)

    googlenet(topology="gluoncv", classes=7).save_parameters(str(tmp_path / "bare.params"))
    with pytest.warns(PretrainedWarning, match="assuming topology 'gluoncv'"):
        assert googlenet(pretrained=str(tmp_path / "bare.params"), classes=7).topology == "gluoncv"
    (tmp_path / "bare.json").write_text(json.dumps({"model": {"topology": "torchvision"}}))
    assert googlenet(pretrained=str(tmp_path / "bare.params"), classes=7).topology == "torchvision"


def test_a_mirror_folder_made_by_the_cli_serves_nodes_without_internet(
    release, registered, server, tmp_path, capsys, monkeypatch
):
    # The login node: the file is downloaded once (from the loopback host) into the mirror folder.
    server.files[release.url_path] = release.archive
    entry = register_pretrained(registered.replace(urls=(server.url + release.url_path,)), overwrite=True)
    mirror = tmp_path / "shared" / "weights"
    assert cli.main(["pretrained", "mirror", str(mirror), entry.name, "--root", str(tmp_path / "login")]) == 0
    assert "export GLUON_INCEPTION_MIRRORS=%s" % mirror in capsys.readouterr().out
    assert sorted(os.listdir(mirror)) == ["gluon"], "laid out like the source's repository, nothing else"
    with zipfile.ZipFile(mirror / entry.mirror_path) as zf:
        assert zf.namelist() == [entry.file_name] and zf.read(entry.file_name) == release.params
    # Again: the folder's own copy is verified and kept, nothing is downloaded.
    assert cli.main(["pretrained", "mirror", str(mirror), entry.name]) == 0
    assert server.requests[release.url_path] == 1
    # A compute node: only the mirror, an empty cache, the published host answering nothing.
    server.files.clear()
    monkeypatch.setenv(store.ENV_MIRRORS, str(mirror))
    net = googlenet(pretrained=entry.name, root=str(tmp_path / "node"))
    assert server.total_requests() == 1
    np.testing.assert_allclose(net(release.x).asnumpy(), release.logits, rtol=0, atol=1e-4)
