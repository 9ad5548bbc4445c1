"""Atomic file writes: the one way this package writes a file that must never be half there."""
import contextlib
import hashlib
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
    """Like :func:`open` for writing, but the file appears at ``path`` only once complete."""
    if not any(flag in mode for flag in "wx"):
        raise ValueError("atomic_open is for writing; mode %r does not write" % mode)
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def file_digest(path, algorithm="sha256", chunk_size=1 << 20):
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            h.update(block)
    return h.hexdigest()
