"""Check RecordIO files (``.rec`` + ``.idx``) in pure Python before MXNet's C++ iterator sees them.

``mx.io.ImageRecordIter`` handles a bad file badly: a missing file or a wrong index can crash the
process, and a truncated file can stop an epoch early or hang a Horovod job. :func:`check_record_file`
raises :class:`RecordFileError` (naming the file and how to rebuild it) instead.

The format (dmlc RecordIO, as written by ``mx.recordio`` and ``tools/im2rec.py``): each record
is a little-endian ``uint32`` magic number ``0xced7230a``, a ``uint32`` whose upper 3 bits are a
continuation flag and lower 29 bits the payload length, then the payload padded to 4 bytes. A
payload that itself contains the magic number is split into several parts (flag 1 = first,
2 = middle, 3 = last). The ``.idx`` file has one ``key<TAB>byte offset`` line per record.
"""
import hashlib
import os
import struct
import zlib

from ..errors import UsageError

RECORDIO_MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", RECORDIO_MAGIC)
_LENGTH_MASK = (1 << 29) - 1
# mx.recordio's image header: flag (uint32), label (float32), id (uint64), id2 (uint64).
_IR_FORMAT = "<IfQQ"
_IR_SIZE = struct.calcsize(_IR_FORMAT)

REBUILD_HINT = (
    "Rebuild it with `gluon-inception prepare TRAIN_DIR OUTPUT_DIR` (see `gluon-inception prepare --help`), "
    "or `gluon-inception prepare --demo OUTPUT_DIR` for the demo dataset."
)


class RecordFileError(UsageError):
    """A ``.rec`` or ``.idx`` file that is missing, empty, truncated or not a RecordIO file.

    Attributes
    ----------
    path : str
        The offending file.
    """

    def __init__(self, path, problem, hint=REBUILD_HINT):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__("%s: %s. %s" % (self.path, problem, hint))


class RecordFileInfo:
    """What :func:`check_record_file` found: the files, the record count and the offsets.

    Attributes
    ----------
    rec, idx : str
        Absolute paths.
    offsets : list of int
        Byte offset of every record, ascending.
    keys : list of int
        The index key of every record, in the same order.
    size : int
        Size of the ``.rec`` file in bytes.
    """

    def __init__(self, rec, idx, keys, offsets, size):
        self.rec, self.idx, self.keys, self.offsets, self.size = rec, idx, keys, offsets, size

    @property
    def count(self):
        """Number of records."""
        return len(self.offsets)

    def __repr__(self):
        return "RecordFileInfo(%r, count=%d)" % (self.rec, self.count)


def default_index_path(rec):
    """The ``.idx`` that belongs to ``rec`` (same name, ``.idx`` extension)."""
    return os.path.splitext(os.fspath(rec))[0] + ".idx"


def read_index(idx):
    """Read an ``.idx`` file into ``(keys, offsets)`` sorted by offset.

    Raises
    ------
    RecordFileError
        When the file is missing, empty or has a line that is not ``key<TAB>offset``.
    """
    idx = os.fspath(idx)
    if not os.path.isfile(idx):
        raise RecordFileError(idx, "index file does not exist (ImageRecordIter needs it to shard by record)")
    pairs = []
    with open(idx, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            try:
                key, offset = line.split()
                pairs.append((int(offset), int(key)))
            except ValueError:
                raise RecordFileError(
                    idx, "line %d is %r, not `key<TAB>offset`: this is not a RecordIO index" % (lineno, raw[:60])
                ) from None
    if not pairs:
        raise RecordFileError(idx, "index file is empty")
    offsets, keys = (list(column) for column in zip(*sorted(pairs)))
    for a, b in zip(offsets, offsets[1:]):
        if a == b:
            raise RecordFileError(idx, "two index entries point at byte %d" % a)
    if offsets[0] < 0:
        raise RecordFileError(idx, "negative offset %d" % offsets[0])
    return keys, offsets


def _read_record_at(f, offset, size, rec):
    """Walk one (possibly multi-part) record from ``offset``; return (end offset, first payload bytes)."""
    pos = offset
    head = b""
    first = True
    while True:
        if pos + 8 > size:
            raise RecordFileError(rec, "truncated: a record starting at byte %d runs past the end of the file" % offset)
        f.seek(pos)
        header = f.read(8)
        magic, lrec = struct.unpack("<II", header)
        if magic != RECORDIO_MAGIC:
            raise RecordFileError(
                rec,
                "no RecordIO record at byte %d (found 0x%08x instead of the magic number 0x%08x): the file is "
                "corrupt or does not belong to its .idx" % (pos, magic, RECORDIO_MAGIC),
            )
        cflag, length = lrec >> 29, lrec & _LENGTH_MASK
        if first:
            if cflag not in (0, 1):
                raise RecordFileError(rec, "byte %d is the middle of a record, not the start of one" % pos)
            head = f.read(min(length, _IR_SIZE + 64))
        end = pos + 8 + ((length + 3) & ~3)
        if end > size:
            raise RecordFileError(
                rec, "truncated: the record at byte %d needs %d bytes but the file has %d" % (offset, end, size)
            )
        if cflag in (0, 3):
            return end, head
        first = False
        pos = end


def check_record_file(rec, idx=None, spot_checks=256, expected_count=None):
    """Validate a ``.rec``/``.idx`` pair and return its :class:`RecordFileInfo`.

    Reads the whole index, then walks the first record, the last record (which must end exactly
    at the end of the file) and ``spot_checks`` evenly spaced records in between. The cost is a
    few hundred small reads whatever the file size.

    Parameters
    ----------
    rec : str or os.PathLike
        The record file.
    idx : str or os.PathLike, optional
        Its index; default: ``rec`` with the extension ``.idx``.
    spot_checks : int
        How many records between the first and the last to walk.
    expected_count : int, optional
        Raise when the index does not list exactly this many records.

    Returns
    -------
    RecordFileInfo

    Raises
    ------
    RecordFileError
        Missing, empty, truncated, not RecordIO, or index and record file that do not match.

    Examples
    --------
    >>> info = check_record_file("data/train.rec")  # doctest: +SKIP
    >>> info.count  # doctest: +SKIP
    1231167
    """
    rec = os.path.abspath(os.fspath(rec))
    idx = os.path.abspath(os.fspath(idx) if idx is not None else default_index_path(rec))
    if not os.path.exists(rec):
        raise RecordFileError(rec, "record file does not exist")
    if not os.path.isfile(rec):
        raise RecordFileError(rec, "is not a regular file")
    size = os.path.getsize(rec)
    if size == 0:
        raise RecordFileError(rec, "record file is empty (0 bytes)")
    with open(rec, "rb") as f:
        start = f.read(4)
    if start != _MAGIC_BYTES:
        raise RecordFileError(
            rec,
            "not a RecordIO file: it starts with %r, not the RecordIO magic number 0x%08x"
            % (start, RECORDIO_MAGIC),
        )
    keys, offsets = read_index(idx)
    if offsets[-1] >= size:
        raise RecordFileError(
            rec,
            "truncated or mismatched: its index %s points at byte %d but the file has only %d bytes"
            % (idx, offsets[-1], size),
        )
    if offsets[0] != 0:
        raise RecordFileError(rec, "its index %s does not start at byte 0 (first offset %d)" % (idx, offsets[0]))
    if expected_count is not None and len(offsets) != expected_count:
        raise RecordFileError(
            rec, "its index %s lists %d records but %d were expected" % (idx, len(offsets), expected_count)
        )
    n = len(offsets)
    picks = {0, n - 1}
    if n > 2 and spot_checks > 0:
        step = max(1, (n - 2) // spot_checks)
        picks.update(range(1, n - 1, step))
    with open(rec, "rb") as f:
        for i in sorted(picks):
            end, head = _read_record_at(f, offsets[i], size, rec)
            limit = offsets[i + 1] if i + 1 < n else size
            if end != limit:
                what = "the next indexed record starts" if i + 1 < n else "the file ends"
                raise RecordFileError(
                    rec,
                    "record %d (byte %d) ends at byte %d but %s at byte %d: the .rec and its index %s do not "
                    "match (truncated or appended to)" % (i, offsets[i], end, what, limit, idx),
                )
            if len(head) < _IR_SIZE:
                raise RecordFileError(rec, "record at byte %d is too short to hold an image header" % offsets[i])
    return RecordFileInfo(rec, idx, keys, offsets, size)


def record_checksums(rec, offsets, chunk_size=1 << 22):
    """Read ``rec`` once: the sha256 of the whole file and a CRC-32 of every record's bytes.

    Parameters
    ----------
    rec : str or os.PathLike
        The record file.
    offsets : list of int
        Byte offset of every record, ascending, the first 0 (:attr:`RecordFileInfo.offsets`).
        Record ``i`` spans ``offsets[i]`` up to the next offset (or the end of the file).

    Returns
    -------
    tuple (str, list of int)
        The hex digest and one CRC-32 per record, in offset order.
    """
    digest, crcs = hashlib.sha256(), []
    size = os.path.getsize(rec)
    ends = list(offsets[1:]) + [size]
    with open(rec, "rb") as f:
        if offsets and offsets[0]:
            digest.update(f.read(offsets[0]))
        for start, end in zip(offsets, ends):
            crc, left = 0, end - start
            while left > 0:
                block = f.read(min(left, chunk_size))
                if not block:
                    break  # shorter than the index says: the CRC differs
                digest.update(block)
                crc = zlib.crc32(block, crc)
                left -= len(block)
            crcs.append(crc)
    return digest.hexdigest(), crcs


def write_checksums(path, crcs):
    """Write CRC-32 values as little-endian ``uint32``, one per record (a ``.crc32`` file)."""
    with open(path, "wb") as f:
        f.write(struct.pack("<%dI" % len(crcs), *crcs))


def read_checksums(path):
    """The CRC-32 values written by :func:`write_checksums`.

    Raises
    ------
    RecordFileError
        When the file is missing or its size is not a whole number of entries.
    """
    if not os.path.isfile(path):
        raise RecordFileError(path, "checksum list does not exist")
    with open(path, "rb") as f:
        data = f.read()
    if len(data) % 4:
        raise RecordFileError(path, "checksum list is damaged (%d bytes is not a whole number of entries)" % len(data))
    return list(struct.unpack("<%dI" % (len(data) // 4), data))


def read_image_record(f, offset):
    """Read the image record at ``offset`` of an open ``.rec``: returns ``(label, image_bytes)``.

    ``label`` is a float, or a list of floats for records packed with several labels.
    """
    payload = bytearray()
    pos = offset
    while True:
        f.seek(pos)
        magic, lrec = struct.unpack("<II", f.read(8))
        if magic != RECORDIO_MAGIC:
            raise RecordFileError(getattr(f, "name", "?"), "no record at byte %d" % pos)
        cflag, length = lrec >> 29, lrec & _LENGTH_MASK
        if payload:
            payload += _MAGIC_BYTES  # dmlc splits payloads at embedded magic numbers and drops them
        payload += f.read(length)
        pos += 8 + ((length + 3) & ~3)
        if cflag in (0, 3):
            break
    flag, label, _, _ = struct.unpack(_IR_FORMAT, payload[:_IR_SIZE])
    body = bytes(payload[_IR_SIZE:])
    if flag > 0:
        labels = list(struct.unpack("<%df" % flag, body[: 4 * flag]))
        return labels, body[4 * flag :]
    return label, body
