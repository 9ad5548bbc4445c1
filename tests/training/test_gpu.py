"""GPU training pieces that run on a CPU: device per local rank, --fp16-allreduce, the data
threads per rank, and the AMP loss scaler saved with a checkpoint and restored on resume."""
import argparse
import json
import types

import numpy as np
import pytest

from gluon_inception import dist as dist_module
from gluon_inception._compat import mx
from gluon_inception.data import pipeline
from gluon_inception.training import ConfigError, add_arguments, config_from_args
from gluon_inception.training.precision import loss_scaler_state, restore_loss_scaler, trainer_kwargs
from tests.support import require


def _args(*argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return config_from_args(parser.parse_args(list(argv)))


def _rank(local_rank, local_size):
    d = dist_module.Dist()
    d.rank, d.size, d.local_rank, d.local_size = local_rank, local_size, local_rank, local_size
    return d


@pytest.mark.parametrize("gpus, local_rank, expected", [(0, 2, mx.cpu()), (3, 0, mx.gpu(0)), (3, 2, mx.gpu(2))])
def test_each_rank_takes_the_gpu_of_its_local_rank(monkeypatch, gpus, local_rank, expected):
    monkeypatch.setattr(mx.context, "num_gpus", lambda: gpus)
    assert _rank(local_rank, 3).context() == expected


def test_more_ranks_than_gpus_on_a_host_is_refused_with_what_to_do(monkeypatch):
    monkeypatch.setattr(mx.context, "num_gpus", lambda: 2)
    with pytest.raises(RuntimeError, match=r"rank 2 wants GPU 2 but this host has only 2 GPU\(s\).*-H host:2"):
        _rank(2, 3).context()


def test_fp16_allreduce_flag_selects_horovods_fp16_compression():
    assert _args().fp16_allreduce is False
    assert _args("--fp16-allreduce").fp16_allreduce is True
    fake_hvd = types.SimpleNamespace(Compression=types.SimpleNamespace(fp16="FP16", none="NONE"))
    assert trainer_kwargs(fake_hvd, True) == {"compression": "FP16"}
    assert trainer_kwargs(fake_hvd, False) == {}
    assert trainer_kwargs(None, True) == {}


def test_horovods_fp16_compressor_halves_gradients_and_restores_their_dtype():
    try:
        import horovod.mxnet as hvd
    except ImportError:
        hvd = None
    require(hvd is not None, "horovod with MXNet support (bash scripts/setup.sh)")
    grad = mx.nd.array([[0.5, -1.25], [3.0, 1e-3]], dtype="float32")
    compressor = trainer_kwargs(hvd, True)["compression"]
    sent, ctx = compressor.compress(grad)
    assert sent.dtype == np.float16
    back = compressor.decompress(sent, ctx)
    assert back.dtype == np.float32
    assert abs(back - grad).max().asscalar() < 1e-3


@pytest.mark.parametrize("cores, local_size, threads", [(8, 1, 8), (8, 3, 2), (2, 3, 1), (48, 8, 6)])
def test_data_threads_per_rank_divide_the_cores_among_the_ranks_of_a_host(monkeypatch, cores, local_size, threads):
    monkeypatch.setattr(pipeline.os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert pipeline.threads_per_rank(_rank(0, local_size)) == threads


def test_data_threads_must_be_positive():
    assert _args("--data-threads", "3").data_threads == 3
    with pytest.raises(ConfigError, match="--data-threads must be a positive integer, got 0"):
        _args("--data-threads", "0")


class FakeScaler:
    """The three fields of MXNet's AMP LossScaler, as amp.init_trainer attaches it."""

    def __init__(self):
        self._loss_scale = self._next_loss_scale = 2.0**16
        self._unskipped = 0


def _trainer():
    return types.SimpleNamespace(_amp_loss_scaler=FakeScaler())


def test_loss_scaler_survives_a_checkpoint_round_trip():
    before = _trainer()
    before._amp_loss_scaler.__dict__.update(_loss_scale=1024.0, _next_loss_scale=512.0, _unskipped=37)
    saved = json.loads(json.dumps({"amp_loss_scale": loss_scaler_state(before)}))["amp_loss_scale"]
    after = _trainer()
    restore_loss_scaler(after, saved)
    assert vars(after._amp_loss_scaler) == {"_loss_scale": 1024.0, "_next_loss_scale": 512.0, "_unskipped": 37}


def test_loss_scaler_state_matches_mxnets_own_scaler():
    from mxnet.contrib.amp.loss_scaler import LossScaler

    trainer = types.SimpleNamespace(_amp_loss_scaler=LossScaler())
    assert loss_scaler_state(trainer) == {"loss_scale": 65536.0, "next_loss_scale": 65536.0, "unskipped": 0}
    restore_loss_scaler(trainer, {"loss_scale": 8.0, "next_loss_scale": 4.0, "unskipped": 5})
    assert trainer._amp_loss_scaler.loss_scale == 8.0


def test_a_bare_saved_scale_restores_the_scale_alone():
    trainer = _trainer()
    restore_loss_scaler(trainer, 256.0)
    assert vars(trainer._amp_loss_scaler) == {"_loss_scale": 256.0, "_next_loss_scale": 256.0, "_unskipped": 0}


def test_loss_scaler_restore_refuses_nonsense():
    assert loss_scaler_state(types.SimpleNamespace()) is None
    with pytest.raises(ValueError, match="no AMP loss scaler"):
        restore_loss_scaler(types.SimpleNamespace(), 256.0)
    with pytest.raises(ValueError, match="loss_scale must be > 0"):
        restore_loss_scaler(_trainer(), {"loss_scale": 0.0})
