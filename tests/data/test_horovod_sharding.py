"""Sharding with three real Horovod ranks (Gloo on CPU)."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.support import child_env, require
from tests.support.data_utils import write_numbered_records

COUNT = 22


@pytest.mark.horovod
@pytest.mark.slow
def test_three_horovod_ranks_see_each_val_record_once_and_run_equal_batches(tmp_path):
    require(shutil.which("horovodrun"), "horovodrun on PATH (Horovod built with MXNet and Gloo)")
    rec, _ = write_numbered_records(str(tmp_path / "numbered.rec"), COUNT)
    out = tmp_path / "result.json"
    here = os.path.dirname(os.path.abspath(__file__))
    env = child_env(OMP_NUM_THREADS="1")
    proc = subprocess.run(
        ["horovodrun", "-np", "3", "-H", "localhost:3", sys.executable, os.path.join(here, "horovod_data_shards.py"),
         rec, str(out)],
        capture_output=True, text=True, env=env, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["size"] == 3
    for epoch in ("epoch0", "epoch1"):
        histogram, counts = result[epoch]["histogram"], result[epoch]["counts"]
        assert histogram[:COUNT] == [1.0] * COUNT and sum(histogram) == COUNT, "each record exactly once"
        val_sum, val_sq, train_sum, train_sq, samples = counts
        assert val_sq * 3 == val_sum ** 2 and val_sum == 9, "3 val batches on every rank"
        assert train_sq * 3 == train_sum ** 2 and train_sum == 6, "2 train batches on every rank"
        assert samples == COUNT
