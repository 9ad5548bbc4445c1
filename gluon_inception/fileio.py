"""Atomic file writes: the one way this package writes a file that must never be half there."""
import contextlib
import hashlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The temporary file lives in the same folder (same file system), is flushed to disk, and
    replaces ``path`` with :func:`os.replace`, so readers see either the old complete file or
    the new complete file, never a partial one. On an exception the temporary file is removed.

    Examples
    --------
    >>> import mxnet as mx
    >>> with atomic_path("weights.params") as tmp:  # doctest: +SKIP
    ...     mx.nd.save(tmp, {"w": mx.nd.ones(3)})
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".partial", dir=folder)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path, mode="w", **kwargs):
    """Like :func:`open` for writing, but the file appears at ``path`` only once complete.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    mode : str, default "w"
        A writing mode of :func:`open` (``"w"``, ``"wb"``, ``"x"``...).
    **kwargs
        Passed to :func:`open` (``encoding``...).

    Raises
    ------
    ValueError
        For a mode that does not write.

    Examples
    --------
    >>> import json, os, tempfile
    >>> from gluon_inception.fileio import atomic_open
    >>> path = os.path.join(tempfile.mkdtemp(), "meta.json")
    >>> with atomic_open(path, "w", encoding="utf-8") as f:
    ...     json.dump({"epoch": 3}, f)
    >>> open(path).read()
    '{"epoch": 3}'
    """
    if not any(flag in mode for flag in "wx"):
        raise ValueError("atomic_open is for writing; mode %r does not write" % mode)
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def file_digest(path, algorithm="sha256", chunk_size=1 << 20):
    """Hex digest of a file, read in chunks.

    Parameters
    ----------
    path : str or os.PathLike
    algorithm : str, default "sha256"
        Any name :func:`hashlib.new` knows (``"sha1"``, ``"md5"``...).
    chunk_size : int
        Bytes read at a time.

    Returns
    -------
    str

    Examples
    --------
    >>> import os, tempfile
    >>> from gluon_inception.fileio import file_digest
    >>> path = os.path.join(tempfile.mkdtemp(), "empty")
    >>> open(path, "wb").close()
    >>> file_digest(path)[:16]
    'e3b0c44298fc1c14'
    """
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            h.update(block)
    return h.hexdigest()


def write_json(path, payload):
    """Write ``payload`` as indented JSON, atomically (see :func:`atomic_open`)."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=False)
        f.write("\n")
