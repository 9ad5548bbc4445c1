"""The weight store: where pretrained files are kept, where they come from, how they are checked.

The one module that knows the cache root (:func:`cache_root`) and the order sources are tried in
(:func:`sources`); :doc:`/model_zoo` describes both, the mirrors, and the integrity guarantees.
"""

import contextlib
import errno
import http.client
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile

from .._version import __version__
from ..errors import USAGE, GluonInceptionError, NoSpaceError
from ..fileio import LockTimeoutError, atomic_path, file_digest, file_lock, partial_prefix, remove_stale_partials

__all__ = [
    "ENV_ROOT",
    "ENV_MIRRORS",
    "ENV_LOCK_TIMEOUT",
    "ENV_DEADLINE",
    "ENV_MIN_RATE",
    "PretrainedError",
    "ChecksumError",
    "DownloadError",
    "TruncatedDownloadError",
    "CorruptWeightsError",
    "UnsafeArchiveError",
    "LockTimeoutError",
    "cache_root",
    "mirror_list",
    "sources",
    "mirror",
    "verify",
    "fetch",
    "file_lock",
    "purge",
]

logger = logging.getLogger(__name__)

#: Environment variable naming the cache folder (beaten only by an explicit ``root``).
ENV_ROOT = "GLUON_INCEPTION_MODELS"
#: Environment variable listing mirrors (base URLs or folders), separated by commas or spaces.
ENV_MIRRORS = "GLUON_INCEPTION_MIRRORS"
#: Environment variable: seconds to wait for another process's download before giving up.
ENV_LOCK_TIMEOUT = "GLUON_INCEPTION_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 600.0
#: Seconds to open a connection or to wait for the next bytes before a source counts as failed:
#: short, so that a dead host costs seconds before the next source is tried.
SOCKET_TIMEOUT = 15.0
#: Environment variable: seconds one source may take for the whole file before the next is tried.
ENV_DEADLINE = "GLUON_INCEPTION_DOWNLOAD_DEADLINE"
DEFAULT_DEADLINE = 1800.0
#: Environment variable: bytes per second a transfer must keep up (averaged over RATE_WINDOW seconds).
ENV_MIN_RATE = "GLUON_INCEPTION_MIN_RATE"
DEFAULT_MIN_RATE = 4096.0
RATE_WINDOW = 30.0


class PretrainedError(GluonInceptionError, RuntimeError):
    """Base class of the store's errors: pretrained weights could not be provided."""


class ChecksumError(PretrainedError):
    """A file's checksum differs from its entry's; the file was not kept."""


class DownloadError(PretrainedError):
    """No source delivered the file. ``attempts`` lists ``(source, reason)`` pairs."""

    def __init__(self, message, attempts=()):
        super().__init__(message)
        self.attempts = list(attempts)


class TruncatedDownloadError(DownloadError):
    """A transfer ended before the announced length."""


class CorruptWeightsError(PretrainedError):
    """A weight file cannot be read: damaged, truncated, or not the format it should be."""

    exit_code = USAGE  # downloads are verified first, so an unreadable file is one a user gave


class UnsafeArchiveError(PretrainedError):
    """An archive holds a member that would be written outside the target folder."""


class _AttemptFailed(Exception):
    """One source failed; ``kind`` is "missing", "network", "truncated", "checksum" or "archive"."""

    def __init__(self, kind, reason):
        super().__init__(reason)
        self.kind, self.reason = kind, reason


# -- where --------------------------------------------------------------------------------------
def cache_root(root=None):
    """The folder pretrained weights are kept in, as an absolute path.

    Parameters
    ----------
    root : str or os.PathLike, optional
        Wins over every environment variable when given.

    Returns
    -------
    str
        ``root``, else ``$GLUON_INCEPTION_MODELS``, else ``$MXNET_HOME/models``, else
        ``~/.mxnet/models``; user-expanded and absolute. The folder may not exist yet.

    Examples
    --------
    >>> from gluon_inception.weights.store import cache_root
    >>> cache_root("/tmp/weights")
    '/tmp/weights'
    """
    if root is None or str(root) == "":
        if os.environ.get(ENV_ROOT):
            root = os.environ[ENV_ROOT]
        elif os.environ.get("MXNET_HOME"):
            root = os.path.join(os.environ["MXNET_HOME"], "models")
        else:
            root = os.path.join("~", ".mxnet", "models")
    return os.path.abspath(os.path.expanduser(os.fspath(root)))


def mirror_list(mirrors=None):
    """Mirrors to try first: ``mirrors`` if given, else those in ``$GLUON_INCEPTION_MIRRORS``."""
    if mirrors is None:
        mirrors = os.environ.get(ENV_MIRRORS, "").replace(",", " ").split()
    elif isinstance(mirrors, (str, os.PathLike)):
        mirrors = [mirrors]
    return [os.fspath(m) for m in mirrors if os.fspath(m)]


def _is_url(location):
    return urllib.parse.urlparse(location).scheme in ("http", "https")


def _local_path(location):
    if location.startswith("file://"):
        return urllib.request.url2pathname(urllib.parse.urlparse(location).path)
    return os.path.expanduser(location)


def _under(base, relative):
    if _is_url(base):
        return base.rstrip("/") + "/" + relative.lstrip("/")
    return os.path.join(_local_path(base), *relative.split("/"))


def sources(entry, mirrors=None):
    """Every location ``entry``'s file is looked for, in the order they are tried.

    Parameters
    ----------
    entry : PretrainedEntry
        Uses ``file_name``, ``mirror_path``, ``repo_env`` and ``urls``.
    mirrors : list of str, optional
        Replaces ``$GLUON_INCEPTION_MIRRORS``.

    Returns
    -------
    list of str
        URLs and local paths. For a local mirror folder, the file under ``mirror_path`` and
        the bare file name in the folder are both candidates.
    """
    found = []
    repo = os.environ.get(entry.repo_env) if entry.repo_env else None
    for base in mirror_list(mirrors) + ([repo] if repo else []):
        found.append(_under(base, entry.mirror_path))
        if not _is_url(base):
            found.append(os.path.join(_local_path(base), os.path.basename(entry.mirror_path)))
            found.append(os.path.join(_local_path(base), entry.file_name))
    if not repo:
        found.extend(entry.urls)
    return list(dict.fromkeys(found))


def mirror(entry, folder, mirrors=None, root=None):
    """Put ``entry``'s verified file into ``folder``, laid out as a mirror (``folder/mirror_path``).

    The file is taken from ``folder`` itself when it already holds a good copy, else from the
    cache, else from the usual sources. A folder made this way serves compute nodes without
    internet through ``GLUON_INCEPTION_MIRRORS=folder`` (a shared file system, or over HTTP). For
    GluonCV's entry the file is re-packed as the zip GluonCV publishes, so the folder also works
    as GluonCV's own ``MXNET_GLUON_REPO`` when served over HTTP.

    Parameters
    ----------
    entry : PretrainedEntry
    folder : str
        The mirror; created when missing.
    mirrors : list of str, optional
        Other sources, tried after ``folder`` and the cache; default ``$GLUON_INCEPTION_MIRRORS``.
    root : str, optional
        The cache folder to take a copy from; see :func:`cache_root`.

    Returns
    -------
    str
        The file in the mirror.
    """
    folder = os.path.abspath(os.path.expanduser(os.fspath(folder)))
    target = _under(folder, entry.mirror_path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    known = [folder, cache_root(root)] + mirror_list(mirrors)
    if not (target.lower().endswith(".zip") and not entry.file_name.lower().endswith(".zip")):
        return fetch(entry, root=os.path.dirname(target), mirrors=known, progress=None)
    work = tempfile.mkdtemp(prefix=".mirror-", dir=folder)
    try:
        verified = fetch(entry, root=work, mirrors=known)
        with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.write(verified, entry.file_name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


# -- checks -------------------------------------------------------------------------------------
def verify(path, entry):
    """Compare ``path`` with ``entry``'s checksum.

    Returns
    -------
    tuple (bool, str, str, str)
        ``(matches, algorithm, expected, got)``; ``got`` is the full hex digest.
    """
    algorithm, expected, is_prefix = entry.checksum
    got = file_digest(path, algorithm)
    matches = got.startswith(expected) if is_prefix else got == expected
    return matches, algorithm, expected, got


def _check_member_names(names, source):
    for name in names:
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
            raise UnsafeArchiveError(
                "refusing archive %s: member %r would be written outside the target folder. The "
                "archive is damaged or malicious; nothing was extracted." % (source, name)
            )


def _extract_member(zip_path, member, dest, source):
    try:
        with zipfile.ZipFile(zip_path) as zf:
            names = zf.namelist()
            _check_member_names(names, source)
            if member not in names:
                raise _AttemptFailed(
                    "archive", "the archive has no %s (it holds %s)" % (member, ", ".join(names[:5]) or "nothing")
                )
            with zf.open(member) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
    except zipfile.BadZipFile as err:
        raise _AttemptFailed("archive", "not a valid zip archive (%s): damaged or truncated" % err) from None


# -- transfer -----------------------------------------------------------------------------------
def _progress_bar(total, desc, progress):
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=None if progress is None else not progress)


def _env_float(name, default):
    value = os.environ.get(name)
    try:
        return float(value) if value else default
    except ValueError:
        raise PretrainedError("$%s=%r is not a number" % (name, value)) from None


class _Pace:
    """Abandons a transfer past its deadline or slower than the minimum rate over a window."""

    def __init__(self):
        self.deadline = _env_float(ENV_DEADLINE, DEFAULT_DEADLINE)
        self.min_rate = _env_float(ENV_MIN_RATE, DEFAULT_MIN_RATE)
        self.start = self.window_start = time.monotonic()
        self.window_bytes = self.received = 0

    def socket_timeout(self):
        return max(0.1, min(SOCKET_TIMEOUT, self.deadline))

    def expired(self):
        return _AttemptFailed(
            "network", "abandoned after the %.0f s deadline with %d bytes received ($%s sets it)"
            % (self.deadline, self.received, ENV_DEADLINE)
        )

    def check(self, received, nbytes):
        self.received = received
        now = time.monotonic()
        if now - self.start > self.deadline:
            raise self.expired()
        self.window_bytes += nbytes
        if now - self.window_start >= min(RATE_WINDOW, self.deadline):
            rate = self.window_bytes / (now - self.window_start)
            if rate < self.min_rate:
                raise _AttemptFailed(
                    "network", "abandoned: %.0f bytes/s is below the minimum of %.0f ($%s sets it)"
                    % (rate, self.min_rate, ENV_MIN_RATE)
                )
            self.window_start, self.window_bytes = now, 0


class _Deadline:
    """Shuts a transfer's socket down when its deadline passes, in whatever phase it is: connecting,
    waiting for the headers or reading the body. A socket timeout alone restarts with every byte, so
    a server that trickles its headers would hold the transfer (and the store's lock) for ever."""

    def __init__(self, seconds):
        self.expired = False
        self._sock = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def _expire(self):
        with self._lock:
            self.expired = True
            self._shut()

    def _shut(self):
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def watch(self, sock):
        with self._lock:
            self._sock = sock
            if self.expired:
                self._shut()

    def opener(self):
        """A urllib opener whose HTTP and HTTPS connections hand their socket to :meth:`watch`."""
        deadline = self

        class Connection(http.client.HTTPConnection):
            def connect(self):
                super().connect()
                deadline.watch(self.sock)

        class SecureConnection(http.client.HTTPSConnection):
            def connect(self):
                super().connect()
                deadline.watch(self.sock)

        class Handler(urllib.request.HTTPHandler):
            def http_open(self, req):
                return self.do_open(Connection, req)

        class SecureHandler(urllib.request.HTTPSHandler):
            def https_open(self, req):
                return self.do_open(SecureConnection, req, context=self._context)

        return urllib.request.build_opener(Handler, SecureHandler)

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()


def _download(url, dest, progress=None):
    request = urllib.request.Request(url, headers={"User-Agent": "gluon-inception/" + __version__})
    pace = _Pace()
    deadline = _Deadline(pace.deadline)
    try:
        with deadline:
            _receive(deadline.opener(), request, pace, url, dest, progress)
    except _AttemptFailed:
        if not deadline.expired:
            raise
    if deadline.expired:
        raise pace.expired() from None  # the socket was shut down under the transfer: say why


def _receive(opener, request, pace, url, dest, progress):
    try:
        with opener.open(request, timeout=pace.socket_timeout()) as response, open(dest, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            with _progress_bar(total, os.path.basename(urllib.parse.urlparse(url).path), progress) as bar:
                while True:
                    try:
                        chunk = response.read1(1 << 20)  # what one receive brings: a trickle cannot hide
                    except http.client.IncompleteRead as err:
                        received += len(err.partial)
                        chunk = b""
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                    pace.check(received, len(chunk))
            if total is not None and received != total:
                raise _AttemptFailed(
                    "truncated", "the transfer ended after %d of %d bytes (connection dropped)" % (received, total)
                )
    except urllib.error.HTTPError as err:
        kind = "missing" if err.code == 404 else "network"
        raise _AttemptFailed(kind, "HTTP %d %s" % (err.code, err.reason)) from None
    except urllib.error.URLError as err:
        raise _AttemptFailed("network", "unreachable (%s)" % (err.reason,)) from None
    except (socket.timeout, TimeoutError) as err:
        raise _AttemptFailed("network", "timed out (%s)" % err) from None
    except (ConnectionError, http.client.HTTPException) as err:
        raise _AttemptFailed("truncated", "the connection broke (%s: %s)" % (type(err).__name__, err)) from None


def _transfer(source, dest, progress=None):
    if _is_url(source):
        logger.info("downloading %s", source)
        _download(source, dest, progress)
        return
    path = _local_path(source)
    if not os.path.isfile(path):
        raise _AttemptFailed("missing", "no such file")
    shutil.copyfile(path, dest)


def _fetch_one(source, entry, target, progress=None):
    """Fetch ``entry`` from one source into ``target``: verified, atomic, nothing left on failure."""
    root = os.path.dirname(target)
    archived = source.lower().endswith(".zip") and not entry.file_name.lower().endswith(".zip")
    with atomic_path(target) as tmp:
        if archived:
            fd, tmp_zip = tempfile.mkstemp(prefix=partial_prefix(entry.file_name), suffix=".zip.partial", dir=root)
            os.close(fd)
            try:
                _transfer(source, tmp_zip, progress)
                _extract_member(tmp_zip, entry.file_name, tmp, source)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(tmp_zip)
        else:
            _transfer(source, tmp, progress)
        matches, _, _, got = verify(tmp, entry)
        if not matches:
            why = "checksum mismatch for %s: expected %s, got %s" % (entry.file_name, _checksum_text(entry), got)
            raise _AttemptFailed("checksum", why)


def _checksum_text(entry):
    """``"sha256 1378be20 (prefix)"``: the checksum a file of ``entry`` must have."""
    algorithm, expected, is_prefix = entry.checksum
    return "%s %s%s" % (algorithm, expected, " (prefix)" if is_prefix else "")


def _failure(entry, target, attempts):
    tried = "\n".join(
        ["  %s (cache): no verified copy" % target] + ["  %s: %s" % (source, f.reason) for source, f in attempts]
    )
    hint = (
        "\nTo install it by hand, put %s at %s (or pass its path as pretrained=...), or add a mirror to "
        "$%s. It must have %s." % (entry.file_name, target, ENV_MIRRORS, _checksum_text(entry))
    )
    kinds = {failure.kind for _, failure in attempts}
    if "checksum" in kinds:
        algorithm, expected, _ = entry.checksum
        return ChecksumError(
            "no source gave a file that matches %s %s for pretrained entry %r; bad files were deleted and "
            "nothing was kept in %s. Sources tried:\n%s%s"
            % (algorithm, expected, entry.name, os.path.dirname(target), tried, hint)
        )
    if "truncated" in kinds and kinds <= {"truncated", "missing"}:
        cls, what = TruncatedDownloadError, "every transfer was cut short"
    elif kinds <= {"network", "missing"}:
        cls, what = DownloadError, "no mirror was reachable or had the file"
    else:
        cls, what = DownloadError, "no source delivered a usable file"
    return cls(
        "could not fetch pretrained entry %r (%s): %s. Sources tried:\n%s%s"
        % (entry.name, entry.file_name, what, tried, hint),
        [(source, failure.reason) for source, failure in attempts],
    )


# -- public entry points ------------------------------------------------------------------------
def fetch(entry, root=None, mirrors=None, lock_timeout=None, progress=None):
    """Path of ``entry``'s verified file in the cache, fetched first if needed.

    Parameters
    ----------
    entry : PretrainedEntry
        What to fetch (file name, sources, checksum).
    root : str, optional
        Cache folder; see :func:`cache_root`.
    mirrors : list of str, optional
        Base URLs or folders tried first; default ``$GLUON_INCEPTION_MIRRORS``.
    lock_timeout : float, optional
        Seconds to wait for another process fetching the same file.
    progress : bool, optional
        Show a progress bar; default: only on a terminal.

    Returns
    -------
    str
        The cached file, whose checksum matches the entry's.

    Raises
    ------
    ChecksumError
        When every file obtained had the wrong checksum (they are deleted).
    DownloadError
        When no source could deliver the file; :class:`TruncatedDownloadError` when transfers were
        cut short. The message lists every source tried and where to put the file by hand.
    UnsafeArchiveError
        When an archive holds a member that would land outside the cache folder.
    LockTimeoutError
        When another process holds the lock longer than ``lock_timeout``.

    Examples
    --------
    >>> from gluon_inception.weights import get_pretrained
    >>> from gluon_inception.weights.store import fetch
    >>> fetch(get_pretrained("googlenet_gluoncv_in1k"))  # doctest: +SKIP
    '/home/me/.mxnet/models/googlenet-c7c89366.params'
    """
    if entry.checksum is None:
        raise PretrainedError(
            "pretrained entry %r has no checksum: refusing to fetch unverifiable weights" % entry.name
        )
    root = cache_root(root)
    target = os.path.join(root, entry.file_name)
    if os.path.isfile(target) and verify(target, entry)[0]:
        return target
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as err:
        raise PretrainedError(
            "cannot create the cache folder %s (%s): pass root=... or set $%s to a writable folder"
            % (root, err.strerror or err, ENV_ROOT)
        ) from None
    if lock_timeout is None:
        lock_timeout = _env_float(ENV_LOCK_TIMEOUT, DEFAULT_LOCK_TIMEOUT)
    hint = "It may still be downloading: wait longer with %s=SECONDS." % ENV_LOCK_TIMEOUT
    with file_lock(target + ".lock", timeout=lock_timeout, what="the download of " + entry.file_name, hint=hint):
        remove_stale_partials(root)
        if os.path.isfile(target):
            matches, algorithm, expected, got = verify(target, entry)
            if matches:
                return target  # another process fetched it while we waited
            logger.warning("cached %s has %s %s, expected %s: fetching it again", target, algorithm, got, expected)
            os.remove(target)
        attempts = []
        for source in sources(entry, mirrors):
            try:
                _fetch_one(source, entry, target, progress)
            except _AttemptFailed as failure:
                logger.info("%s: %s", source, failure.reason)
                attempts.append((source, failure))
                continue
            except OSError as err:
                if err.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise NoSpaceError("cannot write %s: %s; free some space or set $%s to a folder with room"
                                       % (target, err.strerror, ENV_ROOT)) from None  # fmt: skip
                if err.errno in (errno.EACCES, errno.EROFS):
                    raise PretrainedError("cannot write %s: %s" % (target, err.strerror)) from None
                attempts.append((source, _AttemptFailed("network", "%s: %s" % (type(err).__name__, err))))
                continue
            return target
        raise _failure(entry, target, attempts)


def purge(file_names, root=None):
    """Delete the given weight files from the cache, with their lock and partial files.

    Temporary files that killed downloads left behind (of any file) go too.

    Parameters
    ----------
    file_names : iterable of str
        File names in the cache folder; other files there (GluonCV keeps its whole model zoo in
        the same folder) are left alone.
    root : str, optional
        Cache folder; see :func:`cache_root`.

    Returns
    -------
    list of str
        The paths removed.
    """
    root = cache_root(root)
    if not os.path.isdir(root):
        return []
    removed = remove_stale_partials(root)
    present = os.listdir(root)
    for name in file_names:
        doomed = [name, name + ".lock"]
        doomed += [p for p in present if p.startswith("." + name + ".") and p.endswith(".partial")]
        for item in doomed:
            path = os.path.join(root, item)
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
                removed.append(path)
    return removed
