"""Read a PyTorch ``.pth`` state dict with numpy alone: no torch, and no pickled code runs.

``torch.save`` writes one pickle whose tensors point at raw storages, either inside a zip
(PyTorch >= 1.6: ``<name>/data.pkl`` plus ``<name>/data/<key>``) or, in the older "legacy"
format that files published before 2020 use, as a stream of pickles followed by the storages.
A pickle can name any importable callable, and loading it calls that callable, so this module
unpickles with an allow-list: the handful of names a state dict of plain tensors needs.
Anything else is refused with :class:`UnsafePickleError` before it could run.
"""

import collections
import io
import pickle
import struct
import zipfile

import numpy as np

from ..errors import UsageError

__all__ = ["UnsafePickleError", "TorchFileError", "load_state_dict"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# torch storage class -> numpy dtype. BFloat16 has no numpy type and is widened on read.
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class TorchFileError(UsageError):
    """The file is not a readable PyTorch state dict (damaged, truncated or another format)."""


class UnsafePickleError(TorchFileError):
    """The pickle names a callable outside the allow-list; nothing from it was executed."""


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]
        self.itemsize = 2 if self.dtype == "bfloat16" else np.dtype(self.dtype).itemsize


class _TensorRef:
    """What ``torch._utils._rebuild_tensor_v2`` would build, kept as numbers until storages are read."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, int(offset), tuple(size), tuple(stride)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    # _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata])
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *unused):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source, storages=None):
        super().__init__(file, encoding="utf-8")
        self.source = source
        self.storages = storages  # key -> (storage type, numel, location) of those it references

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                "%s: refusing to load %s.%s: a state dict of tensors needs only tensors, storages and "
                "OrderedDict, so this pickle could run code. Load it only if you trust it, with torch, "
                "and save its state_dict() again." % (self.source, module, name)
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise TorchFileError("%s: unexpected persistent id %r in the pickle" % (self.source, pid[:1]))
        storage_type, key, location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise TorchFileError("%s: storage %r has no known storage type" % (self.source, key))
        if self.storages is not None:
            self.storages.setdefault(str(key), (storage_type, int(numel), location))
        return (storage_type, str(key))


#: The most bytes one file may hold in storages. The largest published GoogLeNet weights are 50 MB; the
#: limit stops a crafted header or zip member from asking for more memory than the machine has.
MAX_STORAGE_BYTES = 2 << 30


def _as_array(raw, storage_type, count, source, key):
    needed = max(count, 0) * storage_type.itemsize
    if count < 0 or len(raw) < needed:
        raise TorchFileError(
            "%s: storage %s holds %d bytes, %d needed: the file is truncated or damaged"
            % (source, key, len(raw), needed)
        )
    if storage_type.dtype == "bfloat16":
        halves = np.frombuffer(raw, dtype="<u2", count=count)
        return (halves.astype(np.uint32) << 16).view(np.float32)
    return np.frombuffer(raw, dtype=np.dtype(storage_type.dtype).newbyteorder("<"), count=count)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_tensor(ref, storage_size, source, key):
    """Refuse a tensor whose offset, sizes or strides address anything outside its storage, or address it
    in a way no state dict does (negative strides, one element repeated along an axis), before a
    view of the storage is made: such a view would read outside the buffer or ask for unbounded memory."""

    def refuse(why):
        raise TorchFileError("%s: tensor on storage %s %s: the file is damaged or crafted" % (source, key, why))

    if not (_is_int(ref.offset) and all(map(_is_int, ref.size)) and all(map(_is_int, ref.stride))):
        refuse("has an offset, size or stride that is not an integer")
    if len(ref.size) != len(ref.stride):
        refuse("has %d sizes but %d strides" % (len(ref.size), len(ref.stride)))
    if ref.offset < 0 or any(n < 0 for n in ref.size):
        refuse("has a negative offset or size")
    if any(st < 0 for st in ref.stride):
        refuse("has a negative stride")
    if any(st == 0 and n > 1 for n, st in zip(ref.size, ref.stride)):
        refuse("repeats one element along an axis (stride 0)")
    numel = int(np.prod(ref.size, dtype=object)) if ref.size else 1
    if numel == 0:
        return
    last = ref.offset + sum((n - 1) * st for n, st in zip(ref.size, ref.stride))
    if last >= storage_size:
        refuse("reaches element %d of a storage of %d" % (last, storage_size))
    if numel > storage_size:
        refuse("has %d elements, more than its storage's %d" % (numel, storage_size))


def _materialise(obj, storage_arrays, source):
    if isinstance(obj, _TensorRef):
        (storage_type, key) = obj.storage
        flat = storage_arrays[key]
        _check_tensor(obj, flat.size, source, key)
        if not obj.size:
            return np.array(flat[obj.offset]).astype(flat.dtype.newbyteorder("="))
        if 0 in obj.size:
            return np.zeros(obj.size, dtype=flat.dtype.newbyteorder("="))
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[obj.offset :], shape=obj.size, strides=tuple(s * itemsize for s in obj.stride), writeable=False
        )
        return np.ascontiguousarray(view).astype(flat.dtype.newbyteorder("="), copy=False)
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _materialise(v, storage_arrays, source)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v, storage_arrays, source) for v in obj)
    return obj


def _load_zip(path, source):
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise TorchFileError("%s: a zip, but not one written by torch.save (no single data.pkl)" % source)
        prefix = pickles[0][: -len("data.pkl")]
        if prefix + "byteorder" in names and zf.read(prefix + "byteorder").strip() not in (b"little", b""):
            raise TorchFileError("%s: big-endian tensors are not supported" % source)
        storages = {}
        obj = _RestrictedUnpickler(io.BytesIO(zf.read(pickles[0])), source, storages).load()
        arrays, total = {}, 0
        for key, (storage_type, _, _) in storages.items():
            member = prefix + "data/" + key
            if member not in names:
                raise TorchFileError("%s: storage %s is missing from the archive" % (source, member))
            total += zf.getinfo(member).file_size
            _check_total(total, source)
            raw = zf.read(member)
            arrays[key] = _as_array(raw, storage_type, len(raw) // storage_type.itemsize, source, key)
    return obj, arrays


def _check_total(total, source):
    if total > MAX_STORAGE_BYTES:
        raise TorchFileError(
            "%s: its tensors would need more than %d GiB; a network's weights are far smaller, so the file is "
            "damaged or crafted" % (source, MAX_STORAGE_BYTES >> 30)
        )


def _load_legacy(f, source):
    def plain():
        return _RestrictedUnpickler(f, source).load()

    if plain() != _LEGACY_MAGIC:
        raise TorchFileError("%s: not a PyTorch file (neither a zip nor the legacy pickle format)" % source)
    if plain() != _LEGACY_PROTOCOL:
        raise TorchFileError("%s: unsupported legacy PyTorch protocol version" % source)
    sys_info = plain()
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise TorchFileError("%s: big-endian tensors are not supported" % source)
    storages = {}
    obj = _RestrictedUnpickler(f, source, storages).load()
    keys = plain()
    if not isinstance(keys, (list, tuple)):
        raise TorchFileError("%s: the storage list is a %s, not a list" % (source, type(keys).__name__))
    arrays, total = {}, 0
    for key in keys:
        key = str(key)
        if key not in storages:
            raise TorchFileError("%s: storage %s is listed but never used" % (source, key))
        storage_type, numel, _ = storages[key]
        header = f.read(8)
        if len(header) != 8:
            raise TorchFileError("%s: the file ends before storage %s: it is truncated" % (source, key))
        (count,) = struct.unpack("<q", header)
        if count < 0:
            raise TorchFileError("%s: storage %s claims %d elements: the file is damaged" % (source, key, count))
        total += count * storage_type.itemsize
        _check_total(total, source)
        arrays[key] = _as_array(f.read(count * storage_type.itemsize), storage_type, count, source, key)
    return obj, arrays


def load_state_dict(path):
    """Read a state dict saved with ``torch.save`` into numpy arrays, without torch.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.pth``/``.pt`` file, in the zip format (PyTorch >= 1.6) or the legacy format.

    Returns
    -------
    collections.OrderedDict of str to numpy.ndarray
        The tensors by name, contiguous, in native byte order (bfloat16 is widened to float32).

    Raises
    ------
    UnsafePickleError
        When the pickle names anything but tensors, storages and ``OrderedDict``.
    TorchFileError
        When the file is truncated, damaged or not a PyTorch file, or holds no dict of tensors; when a
        tensor's offset, sizes or strides address anything outside its storage, or use negative or
        repeating (zero) strides, which no saved state dict has; and when its storages would exceed
        :data:`MAX_STORAGE_BYTES`. Every one of these is checked before any memory is read.

    Examples
    --------
    >>> from gluon_inception.weights.torch_pth import load_state_dict
    >>> state = load_state_dict("googlenet-1378be20.pth")  # doctest: +SKIP
    >>> state["conv1.conv.weight"].shape  # doctest: +SKIP
    (64, 3, 7, 7)
    """
    source = str(path)
    try:
        if zipfile.is_zipfile(path):
            obj, arrays = _load_zip(path, source)
        else:
            with open(path, "rb") as f:
                obj, arrays = _load_legacy(f, source)
        state = _materialise(obj, arrays, source)
    except (UnsafePickleError, TorchFileError):
        raise
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, struct.error, KeyError, IndexError, TypeError,
            ValueError) as err:
        raise TorchFileError(
            "%s: damaged or not a PyTorch state dict (%s: %s)" % (source, type(err).__name__, err)
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # a training checkpoint that wraps the state dict
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise TorchFileError("%s: holds a %s, not a state dict of tensors" % (source, type(state).__name__))
    return state
