"""Hostile ``.pth`` files: tensors that address memory outside their storage, or ask for unbounded memory,
are refused with one error before anything is read; a seeded fuzz of offsets, sizes and strides."""
import io
import itertools
import pickle
import struct
import sys
import types
import zipfile

import numpy as np
import pytest

from gluon_inception.weights import torch_pth
from gluon_inception.weights.torch_pth import TorchFileError, load_state_dict

_MAGIC, _PROTOCOL = 0x1950A86A20F9469CFC6C, 1001


@pytest.fixture
def fake_torch(monkeypatch):
    """Modules named ``torch`` and ``torch._utils`` holding picklable stand-ins, so that files in
    torch.save's formats can be written here, where torch is not installed."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called: only pickled by reference")

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    torch.FloatStorage, torch._utils, utils._rebuild_tensor_v2 = FloatStorage, utils, _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


class _Tensor:
    def __init__(self, torch, offset, size, stride, key="0", numel=8):
        self.args = (("storage", torch.FloatStorage, key, "cpu", numel), offset, tuple(size), tuple(stride))

    def __reduce__(self):
        storage, offset, size, stride = self.args
        return (sys.modules["torch._utils"]._rebuild_tensor_v2, (_Storage(storage), offset, size, stride, False, {}))


class _Storage:
    def __init__(self, pid):
        self.pid = pid


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, _Storage) else None


def _pickle(obj):
    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def write_zip(path, state, storage=None):
    storage = np.arange(8, dtype="<f4") if storage is None else storage
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", _pickle(state))
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/data/0", storage.tobytes())
    return path


def write_legacy(path, state, storage=None, count=None):
    storage = np.arange(8, dtype="<f4") if storage is None else storage
    count = storage.size if count is None else count
    body = pickle.dumps(_MAGIC, protocol=2) + pickle.dumps(_PROTOCOL, protocol=2)
    body += pickle.dumps({"little_endian": True}, protocol=2) + _pickle(state) + pickle.dumps(["0"], protocol=2)
    body += struct.pack("<q", count) + storage.tobytes()
    path.write_bytes(body)
    return path


@pytest.mark.parametrize("write", [write_zip, write_legacy], ids=["zip", "legacy"])
def test_a_well_formed_strided_tensor_still_loads(fake_torch, tmp_path, write):
    path = write(tmp_path / "ok.pth", {"w": _Tensor(fake_torch, 1, (2, 3), (1, 2))})
    np.testing.assert_array_equal(load_state_dict(path)["w"], [[1, 3, 5], [2, 4, 6]])


@pytest.mark.parametrize(
    "offset, size, stride, why",
    [
        (7, (4,), (-1,), "negative stride"),  # read before the buffer: once a segmentation fault
        (0, (10**10,), (0,), r"stride 0"),  # 1e10 copies of one element: once a MemoryError traceback
        (0, (2, 2**40), (1, 0), r"stride 0"),
        (-1, (2,), (1,), "negative offset or size"),
        (0, (-2,), (1,), "negative offset or size"),
        (9, (), (), "reaches element 9 of a storage of 8"),  # a scalar past the end
        (4, (5,), (1,), "reaches element 8 of a storage of 8"),
        (0, (3, 3), (1, 1), "has 9 elements, more than its storage's 8"),  # overlapping rows
        (0, (2,), (1.5,), "not an integer"),
        (0, (2, 2), (1,), "2 sizes but 1 strides"),
    ],
)
@pytest.mark.parametrize("write", [write_zip, write_legacy], ids=["zip", "legacy"])
def test_tensors_outside_their_storage_are_refused_before_any_read(fake_torch, tmp_path, write, offset, size, stride,
                                                                   why):  # fmt: skip
    path = write(tmp_path / "crafted.pth", {"w": _Tensor(fake_torch, offset, size, stride)})
    with pytest.raises(TorchFileError, match=why) as err:
        load_state_dict(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_a_negative_or_huge_legacy_storage_count_is_refused(fake_torch, tmp_path):
    state = {"w": _Tensor(fake_torch, 0, (2,), (1,))}
    with pytest.raises(TorchFileError, match="claims -5 elements"):
        load_state_dict(write_legacy(tmp_path / "neg.pth", state, count=-5))
    with pytest.raises(TorchFileError, match="would need more than 2 GiB"):
        load_state_dict(write_legacy(tmp_path / "huge.pth", state, count=1 << 40))


def test_storages_over_the_size_limit_are_refused_before_they_are_read(fake_torch, tmp_path, monkeypatch):
    path = write_zip(tmp_path / "big.pth", {"w": _Tensor(fake_torch, 0, (2,), (1,))})
    monkeypatch.setattr(torch_pth, "MAX_STORAGE_BYTES", 16)  # the storage holds 32 bytes
    read = zipfile.ZipFile.read

    def read_no_storage(zf, name, *args):
        assert "/data/" not in str(name), "read a storage over the limit"
        return read(zf, name, *args)

    monkeypatch.setattr(zipfile.ZipFile, "read", read_no_storage)
    with pytest.raises(TorchFileError, match="would need more than"):
        load_state_dict(path)


def _reference(storage, offset, size, stride):
    """The tensor by explicit indexing, or None where some index falls outside the storage."""
    out = np.empty(size, dtype=storage.dtype)
    if out.size == 0:
        return out
    for index in itertools.product(*(range(n) for n in size)):
        at = offset + sum(i * s for i, s in zip(index, stride))
        if not 0 <= at < storage.size:
            return None
        out[index] = storage[at]
    return out


def test_fuzzed_offsets_sizes_and_strides_load_exactly_or_are_refused(fake_torch, tmp_path):
    """600 seeded random tensors over a 24-element storage, mostly near its edges: each loads equal to
    explicit indexing, or is refused with TorchFileError; nothing else (no crash, no other error)."""
    rng = np.random.RandomState(2026)
    storage = np.arange(24, dtype="<f4") * 0.5
    values = [-(2**40), -3, -1, 0, 1, 2, 3, 5, 7, 23, 24, 25, 2**40]
    loaded = refused = 0
    for trial in range(600):
        ndim = int(rng.randint(0, 4))
        size = tuple(int(rng.choice([0, 1, 2, 3, 4, 6] + values[:2] + values[-1:])) for _ in range(ndim))
        stride = tuple(int(rng.choice(values)) for _ in range(ndim))
        offset = int(rng.choice(values))
        path = write_zip(tmp_path / ("f%d.pth" % trial), {"w": _Tensor(fake_torch, offset, size, stride)}, storage)
        try:
            got = load_state_dict(path)["w"]
        except TorchFileError:
            refused += 1
            continue
        loaded += 1
        want = _reference(storage, offset, size, stride)
        assert want is not None, (offset, size, stride)
        np.testing.assert_array_equal(got, want, err_msg=str((offset, size, stride)))
    assert loaded > 50 and refused > 50, (loaded, refused)  # both outcomes were exercised
