"""Files that must never be half there: atomic writes, their leftovers, and the one cross-process lock.

A temporary file is named ``.NAME.PID@HOST.XXXXXX.partial`` so that, after a writer was killed
(SIGKILL, an unhandled SIGTERM, a power cut), :func:`remove_stale_partials` can tell a leftover
from a file some live process is still writing.
"""
import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import tempfile
import time

import portalocker

from .errors import GluonInceptionError, UsageError

log = logging.getLogger(__name__)

#: Seconds after which a temporary file whose owner cannot be checked (another host, an old name)
#: counts as abandoned.
STALE_AGE = 24 * 3600.0
_PARTIAL_RE = re.compile(r"^\..+\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9_-]+)\.[A-Za-z0-9_.]+\.partial$")


class LockTimeoutError(GluonInceptionError, TimeoutError):
    """Another process held a lock for longer than the timeout; the message names it."""


def _host():
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname()) or "unknown"


def partial_prefix(path):
    """Start of the name of a temporary file for ``path``: ``.NAME.PID@HOST.`` (see :func:`atomic_path`)."""
    return ".%s.%d@%s." % (os.path.basename(os.fspath(path)), os.getpid(), _host())


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(folder, max_age=None):
    """Delete the ``.partial`` files in ``folder`` that no live process is writing.

    A file named by this module on this host is stale when its process is gone. One from another
    host, or with an older name, is stale when untouched for ``max_age`` seconds.

    Parameters
    ----------
    folder : str or os.PathLike
        A checkpoint folder or the weight cache; a missing folder has nothing to remove.
    max_age : float, optional
        Default :data:`STALE_AGE` (one day).

    Returns
    -------
    list of str
        The paths removed.

    Examples
    --------
    >>> import os, tempfile
    >>> from gluon_inception.fileio import partial_prefix, remove_stale_partials
    >>> folder = tempfile.mkdtemp()
    >>> dead = partial_prefix("w.params").replace(".%d@" % os.getpid(), ".999999999@") + "x1.partial"
    >>> open(os.path.join(folder, dead), "w").close()
    >>> [os.path.basename(p) == dead for p in remove_stale_partials(folder)]
    [True]
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return []
    max_age = STALE_AGE if max_age is None else max_age
    host, now, removed = _host(), time.time(), []
    for name in os.listdir(folder):
        if not (name.startswith(".") and name.endswith(".partial")):
            continue
        path = os.path.join(folder, name)
        match = _PARTIAL_RE.match(name)
        try:
            if match and match.group("host") == host:
                stale = not _pid_alive(int(match.group("pid")))
            else:
                stale = now - os.path.getmtime(path) > max_age
            if stale:
                os.remove(path)
                removed.append(path)
        except FileNotFoundError:
            continue  # its writer finished or another cleaner was quicker
    if removed:
        log.info("removed %d temporary file(s) left by killed writers in %s", len(removed), folder)
    return removed


def current_umask():
    """The process's file-mode creation mask, read without changing it (Linux ``/proc``; elsewhere
    set and restored at once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The temporary file lives in the same folder (same file system), is flushed to disk, and
    replaces ``path`` with :func:`os.replace`, so readers see either the old complete file or
    the new complete file, never a partial one. On an exception the temporary file is removed;
    after a kill, :func:`remove_stale_partials` removes it. The finished file gets the permissions a
    plain :func:`open` would give it (``0o666`` less the umask), so files on a shared file system
    stay readable by the people the folder is shared with.

    Examples
    --------
    >>> import mxnet as mx
    >>> with atomic_path("weights.params") as tmp:  # doctest: +SKIP
    ...     mx.nd.save(tmp, {"w": mx.nd.ones(3)})
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=partial_prefix(path), suffix=".partial", dir=folder)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
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


def _lock_holder(path):
    try:
        with open(path) as f:
            return f.read().strip() or "an unknown process"
    except OSError:
        return "an unknown process"


class FolderInUseError(UsageError):
    """Another run holds the folder (:func:`file_lock` with ``exclusive=True``); the message names it."""


def _held_elsewhere(path, handle):
    """Why a lock file we could lock still counts as held: it names a process on another host (whose
    ``flock`` this host may not see on a shared file system). None when it names nobody, or this host."""
    handle.seek(0)
    holder = handle.read().strip()
    match = re.match(r"^pid \d+ on (\S+) since ", holder)
    if not match or match.group(1) == socket.gethostname():
        return None  # empty, or left by a process of this host that has died: the kernel freed its lock
    age = time.time() - os.fstat(handle.fileno()).st_mtime
    return "%s (written %.0f min ago; this host cannot tell whether it still runs: if it has ended, delete %s)" % (
        holder, age / 60, path)


@contextlib.contextmanager
def file_lock(path, timeout=None, what=None, hint="", poll_interval=0.1, exclusive=False):
    """Hold an exclusive cross-process lock on ``path`` (created, and removed on release).

    The lock is ``flock`` through portalocker, so the kernel releases it when its holder dies:
    a lock file left by a killed process is taken over at once. While held, the file names the
    holder (pid, host, time); a waiter logs it, and the timeout message names it.

    Parameters
    ----------
    path : str
        The lock file.
    timeout : float, optional
        Seconds to wait; None waits as long as the holder lives.
    what : str, optional
        What the holder is doing, for the messages (default: the lock file).
    hint : str
        Appended to the timeout message (how to wait longer).
    exclusive : bool
        Do not wait: when another process holds the lock, or the file names a process on another
        host, raise :class:`FolderInUseError` at once (one run per folder).

    Raises
    ------
    LockTimeoutError
        When another holder keeps it longer than ``timeout``; the message names the holder.
    FolderInUseError
        With ``exclusive``, when the lock is held.

    Examples
    --------
    >>> import os, tempfile
    >>> from gluon_inception.fileio import file_lock
    >>> lock = os.path.join(tempfile.mkdtemp(), "job.lock")
    >>> with file_lock(lock, timeout=5):
    ...     open(lock).read().startswith("pid %d on " % os.getpid())
    True
    """
    path = os.fspath(path)
    deadline = None if timeout is None else time.monotonic() + timeout
    flags = portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING
    waited = False
    while True:
        handle = open(path, "a+")
        try:
            portalocker.lock(handle, flags)
        except portalocker.exceptions.LockException:
            handle.close()
            if exclusive:
                raise FolderInUseError("%s is in use: %s holds %s" % (what or path, _lock_holder(path), path)) from None
            if not waited:
                log.info("waiting for %s: %s holds %s", what or "a lock", _lock_holder(path), path)
                waited = True
            if deadline is not None and time.monotonic() >= deadline:
                raise LockTimeoutError(
                    "waited %.0f s for %s, held by %s (%s). If that process is gone (on another host sharing "
                    "this folder, say), delete the lock file and retry.%s"
                    % (timeout, what or path, _lock_holder(path), path, (" " + hint) if hint else "")
                ) from None
            time.sleep(poll_interval)
            continue
        # The previous holder removes the file before it unlocks; if it did so after we opened it,
        # we hold a lock on a deleted file and must start over on the new one.
        try:
            replaced = not os.path.samestat(os.stat(path), os.fstat(handle.fileno()))
        except FileNotFoundError:
            replaced = True
        if replaced:
            portalocker.unlock(handle)
            handle.close()
            continue
        elsewhere = _held_elsewhere(path, handle) if exclusive else None
        if elsewhere:
            portalocker.unlock(handle)
            handle.close()
            raise FolderInUseError("%s is in use: %s" % (what or path, elsewhere))
        break
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(
            "pid %d on %s since %s\n" % (os.getpid(), socket.gethostname(), time.strftime("%Y-%m-%d %H:%M:%S"))
        )
        handle.flush()
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        portalocker.unlock(handle)
        handle.close()
