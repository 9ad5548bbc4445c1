"""Two hosts on one machine: rank 2 of ``horovodrun -np 3 -H localhost:2,127.0.0.2:1`` starts over
SSH on 127.0.0.2 (an sshd this test starts, with keys it makes), as on a real second host.

Both "hosts" see the same dataset path and checkpoint folder, as with a shared filesystem; only
rank 0 writes. The job trains 2 epochs with --fp16-allreduce, then resumes for a third. All traffic
stays on the loopback interface (--network-interfaces lo).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from gluon_inception._compat import mx
from tests.support import ROOT, child_env, require

pytestmark = [pytest.mark.horovod, pytest.mark.slow]

EXAMPLE = os.path.join(ROOT, "examples", "train_imagenet.py")
SECOND_HOST = "127.0.0.2"
FLAGS = [
    "--topology", "gluoncv", "--image-size", "32", "--batch-size", "4", "--augment", "chapter",
    "--optimizer", "adam", "--lr", "0.001", "--lr-scaling", "none", "--log-interval", "2", "--no-progress",
    "--fp16-allreduce",
]  # fmt: skip


def _free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def second_host(tmp_path_factory):
    """An sshd on 127.0.0.2 accepting a key made here; yields (port, identity file, sshd log)."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    require(os.path.isfile(sshd), "sshd (apt-get install -y openssh-server)")
    require(os.geteuid() == 0, "root, to log in over SSH as the same user sshd runs as")
    base = tmp_path_factory.mktemp("second-host")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / name)], check=True)
    shutil.copy(base / "client_key.pub", base / "authorized_keys")
    port = _free_port(SECOND_HOST)
    (base / "sshd_config").write_text(
        "ListenAddress %s\nPort %d\nHostKey %s\nAuthorizedKeysFile %s\nPidFile %s\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\nLogLevel VERBOSE\n"
        % (SECOND_HOST, port, base / "host_key", base / "authorized_keys", base / "sshd.pid")
    )
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation folder
    log = base / "sshd.log"
    proc = subprocess.Popen([sshd, "-D", "-f", str(base / "sshd_config"), "-E", str(log)])
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection((SECOND_HOST, port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, log.read_text() if log.exists() else ""
                time.sleep(0.1)
        yield port, base / "client_key", log
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        # horovodrun's ssh recorded this throwaway host key; take it out again.
        subprocess.run(["ssh-keygen", "-R", "[%s]:%d" % (SECOND_HOST, port)], capture_output=True)


def _launch(port, key, data, checkpoints, dump, *extra):
    horovodrun = shutil.which("horovodrun") or os.path.join(os.path.dirname(sys.executable), "horovodrun")
    require(os.path.isfile(horovodrun), "horovodrun (Horovod built with MXNet and Gloo)")
    env = child_env(OMP_NUM_THREADS="1",
                    HOROVOD_GLOO_TIMEOUT_SECONDS="30", GLUON_INCEPTION_DEBUG_DUMP=str(dump))
    cmd = ["timeout", "-k", "10", "300", horovodrun, "-np", "3", "-H", "localhost:2,%s:1" % SECOND_HOST,
           "-p", str(port), "-i", str(key), "--network-interfaces", "lo", "--start-timeout", "60",
           sys.executable, EXAMPLE, "--data", data, "--checkpoints", str(checkpoints), *FLAGS, *extra]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=330)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_two_hosts_train_checkpoint_and_resume_with_only_rank_0_writing(second_host, train_tiny_dataset, tmp_path):
    port, key, sshd_log = second_host
    ckpt = tmp_path / "ckpt"
    _launch(port, key, train_tiny_dataset, ckpt, tmp_path / "dump", "--epochs", "2")
    assert "Accepted publickey" in sshd_log.read_text()  # rank 2 really started over SSH

    proc = _launch(port, key, train_tiny_dataset, ckpt, tmp_path / "dump", "--epochs", "3", "--resume")
    assert "resumed from" in proc.stdout

    # One writer: one file set per epoch, one metrics line per epoch, nothing half-written left.
    names = sorted(os.listdir(ckpt))
    for epoch in (1, 2, 3):
        assert any(n.startswith("googlenet-%04d." % epoch) and n.endswith(".params") for n in names), names
    assert not [n for n in names if "tmp" in n or n.startswith(".")], names
    with open(ckpt / "googlenet-metrics.jsonl") as f:
        epochs = [json.loads(line)["epoch"] for line in f if "event" not in json.loads(line)]
    assert epochs == [1, 2, 3]

    # The rank on the second host ends with the same weights as the two on the first.
    final = [{k: v.asnumpy() for k, v in mx.nd.load(str(tmp_path / "dump" / ("rank%d-final.params" % r))).items()}
             for r in range(3)]
    for rank in (1, 2):
        for name, value in final[0].items():
            np.testing.assert_array_equal(final[rank][name], value, err_msg=name)
