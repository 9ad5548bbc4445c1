"""The weight store against a real HTTP server on 127.0.0.1: fetch, verify, mirrors, failures, locks.

These use a small stand-in file; the GoogLeNet files themselves are in test_pretrained.py.
"""

import hashlib
import io
import logging
import os
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from gluon_inception import fileio
from gluon_inception.weights import PretrainedEntry, store
from gluon_inception.weights.store import (
    ChecksumError,
    DownloadError,
    LockTimeoutError,
    PretrainedError,
    TruncatedDownloadError,
    UnsafeArchiveError,
)
from tests.support import child_env, kill_when
from tests.support.loopback import WeightServer, closed_port_url

PAYLOAD = np.random.RandomState(0).bytes(300_000)
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
PATH = "/weights/tiny.params"
pytestmark = pytest.mark.usefixtures("no_store_environment")  # tests/conftest.py


def tiny_entry(**changes):
    fields = dict(
        name="tiny",
        topology="gluoncv",
        format="gluon_inception",
        file_name="tiny-%s.params" % SHA256[:8],
        mirror_path=PATH.lstrip("/"),
        sha256=SHA256,
    )
    fields.update(changes)
    return PretrainedEntry(**fields)


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / "cache")


def test_download_is_verified_then_served_from_the_cache_without_network(server, root):
    server.files[PATH] = PAYLOAD
    entry = tiny_entry(urls=(server.url + PATH,))
    path = store.fetch(entry, root=root)
    assert path == os.path.join(root, entry.file_name)
    assert open(path, "rb").read() == PAYLOAD
    assert os.listdir(root) == [entry.file_name], "no lock or partial file is left behind"
    server.stop()  # no network from here on
    assert store.fetch(entry, root=root) == path
    assert server.requests[PATH] == 1


@pytest.mark.parametrize("first", ["404", "down"])
def test_falls_back_to_the_next_mirror(server, root, first):
    good = WeightServer()
    try:
        good.files[PATH] = PAYLOAD
        broken = server.url if first == "404" else closed_port_url()
        path = store.fetch(tiny_entry(), root=root, mirrors=[broken, good.url])
        assert open(path, "rb").read() == PAYLOAD
        assert good.requests[PATH] == 1
        assert server.requests[PATH] == (1 if first == "404" else 0)
    finally:
        good.stop()


def test_mirrors_come_from_the_environment_in_order(server, root, monkeypatch):
    server.files[PATH] = PAYLOAD
    monkeypatch.setenv(store.ENV_MIRRORS, "%s, %s" % (closed_port_url(), server.url))
    assert store.sources(tiny_entry())[-1] == server.url + PATH
    assert open(store.fetch(tiny_entry(), root=root), "rb").read() == PAYLOAD


def test_checksum_mismatch_is_rejected_and_nothing_is_kept(server, root):
    server.files[PATH] = b"not the weights" * 1000
    with pytest.raises(ChecksumError) as info:
        store.fetch(tiny_entry(urls=(server.url + PATH,)), root=root)
    message = str(info.value)
    got = hashlib.sha256(server.files[PATH]).hexdigest()
    assert tiny_entry().file_name in message and SHA256 in message and got in message
    assert os.listdir(root) == []


def test_truncated_transfer_is_an_error_and_nothing_is_kept(server, root):
    server.files[PATH] = PAYLOAD
    server.truncate.add(PATH)
    with pytest.raises(TruncatedDownloadError, match="ended after 150000 of 300000 bytes"):
        store.fetch(tiny_entry(urls=(server.url + PATH,)), root=root)
    assert os.listdir(root) == []


def test_truncated_transfer_falls_back_to_a_good_mirror(server, root):
    good = WeightServer()
    try:
        server.files[PATH] = good.files[PATH] = PAYLOAD
        server.truncate.add(PATH)
        path = store.fetch(tiny_entry(), root=root, mirrors=[server.url, good.url])
        assert open(path, "rb").read() == PAYLOAD
    finally:
        good.stop()


def test_a_trickling_mirror_is_abandoned_at_its_deadline_and_the_next_source_serves_the_file(
    server, root, monkeypatch
):
    good = WeightServer()
    try:
        server.files[PATH] = good.files[PATH] = PAYLOAD
        server.trickle.add(PATH)  # one byte per second: 300,000 s for the whole file
        monkeypatch.setenv(store.ENV_DEADLINE, "2")
        monkeypatch.setenv(store.ENV_MIN_RATE, "0")
        started = time.monotonic()
        path = store.fetch(tiny_entry(), root=root, mirrors=[server.url, good.url])
        assert open(path, "rb").read() == PAYLOAD
        assert server.requests[PATH] == 1 and good.requests[PATH] == 1
        assert time.monotonic() - started < 60, "bounded by the deadline, not by the trickle"
        assert os.listdir(root) == [tiny_entry().file_name]
    finally:
        good.stop()


def test_a_mirror_that_trickles_its_headers_is_abandoned_at_the_deadline_and_the_next_source_serves_the_file(
    server, root, monkeypatch
):
    # A byte of headers every 0.2 s: the 15 s socket timeout restarts with each one, so only a deadline
    # over the whole transfer (connect, headers, body) ends it; the lock it holds is released with it.
    good = WeightServer()
    try:
        server.files[PATH] = good.files[PATH] = PAYLOAD
        server.trickle_headers.add(PATH)
        server.trickle_interval, server.trickle_limit = 0.2, 60.0
        monkeypatch.setenv(store.ENV_DEADLINE, "2")
        started = time.monotonic()
        path = store.fetch(tiny_entry(), root=root, mirrors=[server.url, good.url])
        took = time.monotonic() - started
        assert open(path, "rb").read() == PAYLOAD
        assert server.requests[PATH] == 1 and good.requests[PATH] == 1
        assert took < 10, "abandoned %.1f s after the start: the deadline is 2 s" % took
        assert os.listdir(root) == [tiny_entry().file_name]
        # Alone, it fails with the reason.
        with pytest.raises(DownloadError, match=r"abandoned after the 2 s deadline"):
            store.fetch(tiny_entry(urls=(server.url + PATH,)), root=str(root) + "-alone")
    finally:
        good.stop()


def test_a_transfer_below_the_minimum_rate_is_abandoned_with_the_reason(server, root, monkeypatch):
    server.files[PATH] = PAYLOAD
    server.trickle.add(PATH)
    server.trickle_interval = 0.05  # 20 bytes/s
    monkeypatch.setenv(store.ENV_MIN_RATE, "1000")
    monkeypatch.setattr(store, "RATE_WINDOW", 0.5)
    with pytest.raises(DownloadError, match="below the minimum of 1000") as info:
        store.fetch(tiny_entry(urls=(server.url + PATH,)), root=root)
    assert "GLUON_INCEPTION_MIN_RATE" in str(info.value)
    assert os.listdir(root) == []


FETCH = """
import sys
from gluon_inception.weights import PretrainedEntry, store
entry = PretrainedEntry(name="tiny", topology="gluoncv", format="gluon_inception", file_name=sys.argv[2],
                        mirror_path=sys.argv[3], sha256=sys.argv[4], urls=(sys.argv[1],))
store.fetch(entry, root=sys.argv[5], progress=False)
"""


@pytest.mark.parametrize("archived", [False, True])
def test_a_download_killed_midway_leaves_no_partial_file_after_the_next_fetch(server, root, archived):
    entry = tiny_entry()
    path = "/weights/tiny.zip" if archived else PATH
    body = PAYLOAD
    if archived:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr(entry.file_name, PAYLOAD)
        body = buffer.getvalue()
    server.files[path] = body
    server.trickle.add(path)
    server.trickle_interval = 0.01
    env = child_env(**{store.ENV_MIN_RATE: "0"})
    writer = subprocess.Popen(
        [sys.executable, "-c", FETCH, server.url + path, entry.file_name, entry.mirror_path, SHA256, root], env=env
    )

    def transferring():  # the archive's and the member's temporary files, or the file's
        partials = [n for n in os.listdir(root) if n.endswith(".partial")] if os.path.isdir(root) else []
        return len(partials) == (2 if archived else 1)

    kill_when(writer, transferring, 60, "the fetching process writing")
    assert [n for n in os.listdir(root) if n.endswith(".partial")], "the kill left a partial file"
    server.trickle.clear()
    assert open(store.fetch(tiny_entry(urls=(server.url + path,)), root=root), "rb").read() == PAYLOAD
    assert os.listdir(root) == [entry.file_name]


def test_purge_also_removes_partials_of_killed_downloads_of_any_file(tmp_path):
    root = tmp_path / "cache"
    root.mkdir()
    dead = fileio.partial_prefix("other.params").replace(".%d@" % os.getpid(), ".999999999@") + "x1.partial"
    live = fileio.partial_prefix("other.params") + "x2.partial"
    for name in (dead, live):
        (root / name).write_bytes(b"x")
    assert [os.path.basename(p) for p in store.purge(["a.params"], root=str(root))] == [dead]
    assert os.listdir(root) == [live], "a file a live process writes stays"


def test_no_mirror_reachable_lists_the_urls_and_where_to_put_the_file(root):
    urls = (closed_port_url() + PATH, closed_port_url() + "/other" + PATH)
    with pytest.raises(DownloadError) as info:
        store.fetch(tiny_entry(urls=urls), root=root)
    message = str(info.value)
    assert all(url in message for url in urls)
    assert "put %s at %s" % (tiny_entry().file_name, os.path.join(root, tiny_entry().file_name)) in message
    assert SHA256 in message
    assert [source for source, _ in info.value.attempts] == list(urls)


def test_a_local_folder_or_file_url_works_as_a_mirror_with_no_network(tmp_path, root):
    folder = tmp_path / "mirror"
    (folder / "weights").mkdir(parents=True)
    (folder / "weights" / "tiny.params").write_bytes(PAYLOAD)
    unreachable = (closed_port_url() + PATH,)
    assert open(store.fetch(tiny_entry(urls=unreachable), root=root, mirrors=[str(folder)]), "rb").read() == PAYLOAD
    other_root = str(tmp_path / "other")
    path = store.fetch(tiny_entry(urls=unreachable), root=other_root, mirrors=["file://" + str(folder)])
    assert open(path, "rb").read() == PAYLOAD


def test_a_damaged_cached_file_is_fetched_again(server, root, caplog):
    server.files[PATH] = PAYLOAD
    entry = tiny_entry(urls=(server.url + PATH,))
    path = store.fetch(entry, root=root)
    with open(path, "r+b") as f:
        f.write(b"\0\0\0\0")
    with caplog.at_level(logging.WARNING, logger="gluon_inception.weights.store"):
        assert store.fetch(entry, root=root) == path
    assert "fetching it again" in caplog.text
    assert open(path, "rb").read() == PAYLOAD and server.requests[PATH] == 2


@pytest.mark.parametrize("evil", ["../evil.params", "sub/../../evil.params", "/tmp/gluon-inception-evil.params"])
def test_zip_members_that_escape_the_folder_are_refused(server, tmp_path, evil):
    root = tmp_path / "deep" / "cache"
    entry = tiny_entry(mirror_path="weights/tiny.zip")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(entry.file_name, PAYLOAD)
        zf.writestr(evil, b"overwrite something")
    server.files["/weights/tiny.zip"] = archive.getvalue()
    with pytest.raises(UnsafeArchiveError, match="outside the target folder"):
        store.fetch(entry, root=str(root), mirrors=[server.url])
    assert os.listdir(root) == []
    assert not (tmp_path / "deep" / "evil.params").exists() and not os.path.exists("/tmp/gluon-inception-evil.params")


def test_a_zip_archive_is_unpacked_and_its_member_verified(server, root):
    entry = tiny_entry(mirror_path="weights/tiny.zip")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(entry.file_name, PAYLOAD)
    server.files["/weights/tiny.zip"] = archive.getvalue()
    path = store.fetch(entry, root=root, mirrors=[server.url])
    assert open(path, "rb").read() == PAYLOAD and os.listdir(root) == [entry.file_name]


def test_explicit_root_beats_every_environment_variable(server, tmp_path, monkeypatch):
    ours, mxnet_home, explicit = tmp_path / "ours", tmp_path / "mxnet_home", tmp_path / "explicit"
    monkeypatch.setenv(store.ENV_ROOT, str(ours))
    monkeypatch.setenv("MXNET_HOME", str(mxnet_home))
    assert store.cache_root(str(explicit)) == str(explicit)
    server.files[PATH] = PAYLOAD
    store.fetch(tiny_entry(), root=str(explicit), mirrors=[server.url])
    assert os.listdir(explicit) == [tiny_entry().file_name]
    assert not ours.exists() and not mxnet_home.exists()


def test_cache_root_order_without_an_explicit_root(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert store.cache_root() == str(tmp_path / "home" / ".mxnet" / "models")
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mxnet_home"))
    assert store.cache_root() == str(tmp_path / "mxnet_home" / "models")
    monkeypatch.setenv(store.ENV_ROOT, str(tmp_path / "ours"))
    assert store.cache_root() == str(tmp_path / "ours")


HOLD_LOCK = """
import sys, time
from gluon_inception.weights.store import file_lock
with file_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_live_lock_times_out_naming_its_holder_and_a_killed_holder_does_not_block(server, root):
    server.files[PATH] = PAYLOAD
    entry = tiny_entry(urls=(server.url + PATH,))
    os.makedirs(root)
    lock = os.path.join(root, entry.file_name + ".lock")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, lock], stdout=subprocess.PIPE, text=True,
                              env=child_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockTimeoutError, match="held by pid %d on " % holder.pid):
            store.fetch(entry, root=root, lock_timeout=0.5)
    finally:
        holder.kill()  # SIGKILL: no cleanup runs, the lock file stays behind
        holder.wait()
        holder.stdout.close()
    assert os.path.exists(lock), "the killed holder left its lock file"
    assert open(store.fetch(entry, root=root, lock_timeout=30), "rb").read() == PAYLOAD
    assert not os.path.exists(lock)


def test_purge_removes_weights_locks_and_partials_but_nothing_else(tmp_path):
    root = tmp_path / "cache"
    root.mkdir()
    names = ["a.params", "a.params.lock", ".a.params.x1.partial", "b.pth", "resnet50_v1-cc729d95.params"]
    for name in names:
        (root / name).write_bytes(b"x")
    removed = store.purge(["a.params", "b.pth", "missing.params"], root=str(root))
    assert sorted(os.path.basename(p) for p in removed) == sorted(names[:4])
    assert os.listdir(root) == ["resnet50_v1-cc729d95.params"]


def test_an_entry_without_checksum_is_never_fetched(root):
    entry = PretrainedEntry(name="x", topology="gluoncv", format="gluon_inception", file_name="x.params")
    with pytest.raises(PretrainedError, match="no checksum"):
        store.fetch(entry, root=root)


@pytest.mark.parametrize(
    "field, value", [("sha1", "c7c89366"), ("sha256", "zz" * 32), ("sha256_prefix", "123"), ("topology", "v3")]
)
def test_entries_validate_their_fields(field, value):
    with pytest.raises(ValueError, match=field if field != "topology" else "unknown topology"):
        tiny_entry(**{field: value})
