"""Training checkpoints: write them atomically, find the complete ones, load them back.

A checkpoint ``NAME-0003`` (after 3 epochs), ``NAME-0003-step000120`` (mid-epoch) or
``NAME-best`` is a ``.params``, the optimizer's ``.states`` (not for the best), for mid-epoch ones
a ``.ranks``, and last a ``.json`` (metadata and file digests), each written through
:mod:`gluon_inception.fileio`: a checkpoint without its ``.json`` is incomplete and never picked
on resume. The layout and the free-space check are described in docs/training.rst.
"""

import datetime
import errno
import json
import os
import re
import shutil
import tempfile

from . import fileio
from ._compat import mx, np, wait_for_parameters
from ._version import __version__
from .errors import NoSpaceError, UsageError

#: Version of the ``.json`` layout.
CHECKPOINT_FORMAT = 1

_NAME_RE = re.compile(r"^(?P<prefix>.+)-(?P<epoch>\d{4,})\.json$")
_MID_RE = re.compile(r"^(?P<prefix>.+)-(?P<epoch>\d{4,})-step(?P<step>\d{6,})\.json$")
_BEST_RE = re.compile(r"^(?P<prefix>.*)-best\.json$")


class CheckpointError(UsageError):
    """A checkpoint is missing, incomplete, damaged or does not fit what it is loaded into."""


def checkpoint_paths(folder, prefix, epoch, step=None):
    """``{"params": ..., "states": ..., "ranks": ..., "meta": ...}`` file paths of a checkpoint.

    ``epoch`` counts completed epochs; ``step`` (steps done in the next epoch) names a mid-epoch
    checkpoint, and ``epoch="best"`` the best one.
    """
    if epoch == "best":
        name = "%s-best" % prefix
    elif step is None:
        name = "%s-%04d" % (prefix, epoch)
    else:
        name = "%s-%04d-step%06d" % (prefix, epoch, step)
    return _stem_paths(os.path.join(os.fspath(folder), name))


def _stem_paths(stem):
    return {"params": stem + ".params", "states": stem + ".states", "ranks": stem + ".ranks",
            "ema": ema_path(stem + ".params"), "meta": stem + ".json"}


def ema_path(params_path):
    """The weight-EMA file beside a checkpoint's ``.params``: ``NAME-0003.ema.params``."""
    return os.path.splitext(os.fspath(params_path))[0] + ".ema.params"


def list_checkpoints(folder, prefix=None):
    """Complete checkpoints in ``folder`` as sorted ``(prefix, epoch)`` pairs.

    A checkpoint is complete when its ``.json`` and ``.params`` exist (the ``.json`` is written
    last, so an interrupted write is skipped).

    Parameters
    ----------
    folder : str
        Checkpoint folder (``--checkpoints``); a missing folder has no checkpoints.
    prefix : str, optional
        Only this prefix (``--prefix``).
    """
    found = []
    for match in _matches(folder, _NAME_RE):
        name, epoch = match.group("prefix"), int(match.group("epoch"))
        if prefix in (None, name) and os.path.isfile(checkpoint_paths(folder, name, epoch)["params"]):
            found.append((name, epoch))
    return sorted(found)


def list_mid_epoch_checkpoints(folder, prefix):
    """Complete mid-epoch checkpoints of ``prefix`` in ``folder`` as sorted ``(epoch, step)`` pairs.

    Complete means its ``.json``, ``.params`` and ``.ranks`` exist (the ``.json`` is written last).
    """
    found = []
    for match in _matches(folder, _MID_RE):
        epoch, step = int(match.group("epoch")), int(match.group("step"))
        paths = checkpoint_paths(folder, prefix, epoch, step)
        if match.group("prefix") == prefix and os.path.isfile(paths["params"]) and os.path.isfile(paths["ranks"]):
            found.append((epoch, step))
    return sorted(found)


def _matches(folder, pattern):
    """The matches of ``pattern`` among the file names in ``folder``, in name order (none when it is missing)."""
    folder = os.fspath(folder)
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    return [m for m in map(pattern.match, names) if m]


def remove_checkpoint(paths):
    """Delete a checkpoint's files, the ``.json`` first (so it never looks complete half-deleted)."""
    for kind in ("meta", "params", "states", "ranks", "ema"):
        if kind in paths and os.path.exists(paths[kind]):
            os.remove(paths[kind])


def prune_mid_epoch_checkpoints(folder, prefix, keep=None):
    """Delete the mid-epoch checkpoints of ``prefix`` except ``keep`` (an ``(epoch, step)`` pair or None).

    Returns
    -------
    list of tuple
        The ``(epoch, step)`` pairs removed.
    """
    removed = [pos for pos in list_mid_epoch_checkpoints(folder, prefix) if pos != keep]
    for epoch, step in removed:
        remove_checkpoint(checkpoint_paths(folder, prefix, epoch, step))
    return removed


def best_checkpoint(folder, prefix=None):
    """Path of the best checkpoint's ``.params`` (``PREFIX-best``) in ``folder``, or None.

    Raises
    ------
    CheckpointError
        When ``prefix`` is None and the folder holds best checkpoints of several prefixes.

    Examples
    --------
    >>> best_checkpoint("runs/googlenet")  # doctest: +SKIP
    'runs/googlenet/googlenet-best.params'
    """
    prefixes = [m.group("prefix") for m in _matches(folder, _BEST_RE) if prefix in (None, m.group("prefix"))]
    if len(prefixes) > 1:
        raise CheckpointError(
            "%s holds best checkpoints of several runs (prefixes %s): name one with prefix=..."
            % (folder, ", ".join(prefixes))
        )
    if not prefixes:
        return None
    params = checkpoint_paths(folder, prefixes[0], "best")["params"]
    return params if os.path.isfile(params) else None


def latest_checkpoint(folder, prefix=None):
    """Path of the newest complete checkpoint's ``.params`` in ``folder``, or None.

    Raises
    ------
    CheckpointError
        When ``prefix`` is None and the folder holds checkpoints of several prefixes.

    Examples
    --------
    >>> latest_checkpoint("runs/googlenet")  # doctest: +SKIP
    'runs/googlenet/googlenet-0050.params'
    """
    found = list_checkpoints(folder, prefix)
    prefixes = sorted({p for p, _ in found})
    if prefix is None and len(prefixes) > 1:
        raise CheckpointError(
            "%s holds checkpoints of several runs (prefixes %s): name one with prefix=..."
            % (folder, ", ".join(prefixes))
        )
    if not found:
        return None
    name, epoch = max(found, key=lambda pe: pe[1])
    return checkpoint_paths(folder, name, epoch)["params"]


def find_checkpoint(folder, prefix, epoch):
    """Paths of the checkpoint written after ``epoch``; a clear error when it is missing.

    Raises
    ------
    CheckpointError
        Listing the epochs that are available (or saying that there are none).
    """
    paths = checkpoint_paths(folder, prefix, epoch)
    if os.path.isfile(paths["meta"]) and os.path.isfile(paths["params"]):
        return paths
    epochs = [e for _, e in list_checkpoints(folder, prefix)]
    if epochs:
        available = "available epochs: %s" % ", ".join(map(str, epochs))
    else:
        available = "there are no complete %s-NNNN checkpoints there" % prefix
    partial = ""
    if os.path.isfile(paths["params"]):  # so its .json is missing
        partial = " (%s exists but its .json does not: that write was interrupted)" % paths["params"]
    raise CheckpointError(
        "no complete checkpoint for epoch %d in %s%s; %s" % (epoch, os.path.abspath(folder), partial, available)
    )


def _resolve(path, prefix=None):
    """Map a .params/.json/.states path or a folder to the checkpoint's paths."""
    path = os.fspath(path)
    if os.path.isdir(path):
        params = latest_checkpoint(path, prefix)
        if params is None:
            raise CheckpointError("no complete checkpoint (NAME-NNNN.json + .params) in %s" % os.path.abspath(path))
        path = params
    stem, ext = os.path.splitext(path)
    if ext not in (".params", ".json", ".states"):
        raise CheckpointError(
            "%s is not a checkpoint: give a NAME-NNNN.params or .json file, or a checkpoint folder" % path
        )
    paths = _stem_paths(stem)
    if not os.path.isfile(paths["meta"]):
        raise CheckpointError(
            "%s has no %s: the checkpoint is incomplete (interrupted while being written) or not one of ours"
            % (path, os.path.basename(paths["meta"]))
        )
    if not os.path.isfile(paths["params"]):
        raise CheckpointError("checkpoint %s lacks its parameters file %s" % (paths["meta"], paths["params"]))
    return paths


def read_checkpoint_meta(path, prefix=None):
    """The ``.json`` metadata of a checkpoint (``.params``/``.json`` path or folder = latest).

    The returned dict also holds ``"paths"``: the checkpoint's three file paths.
    """
    paths = _resolve(path, prefix)
    try:
        with open(paths["meta"], encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as err:
        raise CheckpointError("cannot read checkpoint metadata %s: %s" % (paths["meta"], err)) from err
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            "%s is not a gluon-inception checkpoint of format %d" % (paths["meta"], CHECKPOINT_FORMAT)
        )
    meta["paths"] = paths
    return meta


def verify_checkpoint_files(meta, kinds=("params",)):
    """Check that the files of a checkpoint are the ones its ``.json`` describes (sha256).

    Raises
    ------
    CheckpointError
        When a file was replaced or damaged after the checkpoint was written.
    """
    for kind in kinds:
        expected = meta.get("files", {}).get(kind, {}).get("sha256")
        path = meta["paths"][kind]
        if expected is None or not os.path.isfile(path):
            continue
        if fileio.file_digest(path) != expected:
            raise CheckpointError(
                "%s does not match the digest in %s: the file changed or is damaged; use another epoch"
                % (path, meta["paths"]["meta"])
            )


def expected_checkpoint_bytes(folder, prefix, net, trainer=None):
    """Bytes the next checkpoint of ``prefix`` will take: the newest one's size, else an estimate.

    The estimate counts every initialised parameter once for the ``.params`` and twice for the
    ``.states`` (Adam keeps two moments per weight; SGD with momentum one), plus 1 MB for headers
    and the ``.json``.
    """
    found = list_checkpoints(folder, prefix)
    if found:
        paths = checkpoint_paths(folder, prefix, found[-1][1])
        kinds = ("params", "states") if trainer is not None else ("params",)
        sizes = [os.path.getsize(paths[k]) for k in kinds if os.path.isfile(paths[k])]
        if len(sizes) == len(kinds):
            return sum(sizes) + (1 << 20)
    weights = 0
    for param in net.collect_params().values():
        if param.shape and all(d > 0 for d in param.shape):
            weights += np.dtype(param.dtype).itemsize * int(np.prod(param.shape))
    return weights * (3 if trainer is not None else 1) + (1 << 20)


def _no_space(folder, prefix, epoch, needed):
    free = shutil.disk_usage(folder).free
    return NoSpaceError(
        "not enough space in %s for checkpoint %s-%04d: it needs about %.1f MB and %.1f MB are free. Free some "
        "space, keep fewer checkpoints (--keep-last N) or write them to another folder (--checkpoints DIR), then "
        "continue with --resume" % (os.path.abspath(folder), prefix, epoch, needed / 1e6, free / 1e6)
    )


def _is_disk_full(err):
    if isinstance(err, OSError):
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    text = str(err)
    return "FileStream.Write incomplete" in text or "No space left" in text


def save_checkpoint(folder, prefix, epoch, net, trainer=None, meta=None, step=None, ranks=None, best=False):
    """Write the checkpoint of ``epoch`` atomically; the ``.json`` last.

    Call it on one rank only (rank 0): the other ranks hold the same parameters.

    Parameters
    ----------
    folder, prefix : str
        ``--checkpoints`` and ``--prefix``.
    epoch : int
        Number of completed epochs (the chapter's numbering: ``NAME-0001`` after the first).
    net : mxnet.gluon.Block
    trainer : mxnet.gluon.Trainer, optional
        Its optimizer state goes to ``.states``.
    meta : dict, optional
        Extra metadata (``lr``, ``metrics``, ``config``, ``model``, ``data``...).
    step : int, optional
        Steps done in the next epoch: a mid-epoch checkpoint ``NAME-0001-step000123``.
    ranks : bytes, optional
        Written to ``.ranks`` (a mid-epoch checkpoint's per-rank state).
    best : bool
        Write ``NAME-best`` instead (replacing the previous best).

    Returns
    -------
    dict
        The written paths.

    Raises
    ------
    NoSpaceError
        Before writing anything when the folder has less free space than the checkpoint needs
        (:func:`expected_checkpoint_bytes`), and when a write still runs out of space; the message
        names the folder, the space needed and free, and what to do.
    """
    paths = checkpoint_paths(folder, prefix, "best" if best else epoch, step)
    os.makedirs(os.fspath(folder), exist_ok=True)
    needed = expected_checkpoint_bytes(folder, prefix, net, trainer)
    if shutil.disk_usage(folder).free < needed:
        raise _no_space(folder, prefix, epoch, needed)
    try:
        return _write_checkpoint(paths, prefix, epoch, net, trainer, meta, ranks)
    except (OSError, mx.base.MXNetError) as err:
        if not _is_disk_full(err):
            raise
        raise _no_space(folder, prefix, epoch, needed) from None


def _write_checkpoint(paths, prefix, epoch, net, trainer, meta, ranks=None):
    # A .json left over from an earlier run for this epoch would vouch for the new files while
    # they are being written; remove it first so the checkpoint reads as incomplete meanwhile.
    if os.path.exists(paths["meta"]):
        os.remove(paths["meta"])
    wait_for_parameters()
    with fileio.atomic_path(paths["params"]) as tmp:
        net.save_parameters(tmp)
    files = {"params": {"name": os.path.basename(paths["params"]), "sha256": fileio.file_digest(paths["params"])}}
    if trainer is not None:
        with fileio.atomic_path(paths["states"]) as tmp:
            trainer.save_states(tmp)
        files["states"] = {"name": os.path.basename(paths["states"]), "sha256": fileio.file_digest(paths["states"])}
    elif os.path.exists(paths["states"]):
        os.remove(paths["states"])
    if ranks is not None:
        with fileio.atomic_open(paths["ranks"], "wb") as f:
            f.write(ranks)
        files["ranks"] = {"name": os.path.basename(paths["ranks"]), "sha256": fileio.file_digest(paths["ranks"])}

    record = dict(meta or {})
    record.update(
        format=CHECKPOINT_FORMAT,
        epoch=int(epoch),
        prefix=prefix,
        files=files,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        versions={"gluon_inception": __version__, "mxnet": mx.__version__},
    )
    with fileio.atomic_open(paths["meta"], "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1, sort_keys=True, default=_json_default)
        f.write("\n")
    return paths


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError("not JSON serialisable: %r" % (value,))


def prune_checkpoints(folder, prefix, keep_last):
    """Delete all but the newest ``keep_last`` complete checkpoints of ``prefix`` (0 keeps all).

    Returns
    -------
    list of int
        The epochs removed.
    """
    if keep_last <= 0:
        return []
    epochs = [e for _, e in list_checkpoints(folder, prefix)]
    removed = epochs[:-keep_last]
    for epoch in removed:
        remove_checkpoint(checkpoint_paths(folder, prefix, epoch))
    return removed


def restore_trainer_states(trainer, states):
    """Load optimizer state (bytes of a ``.states`` file) into ``trainer`` on any device.

    ``Trainer.load_states`` keeps the optimizer's update counts keyed by the device id of the
    process that saved them; on a rank with another GPU the counts would be missing, Adam's bias
    correction would restart at step 1 and the ranks would drift apart. Here the saved counts
    are given to this process's device, so every rank continues from the same step.

    Parameters
    ----------
    trainer : mxnet.gluon.Trainer
        Built over the same parameters (in the same order) as the saving trainer.
    states : bytes
        Content of a ``.states`` file (read by one rank and broadcast to all).
    """
    with tempfile.TemporaryDirectory(prefix="gluon-inception-states-") as tmp:
        path = os.path.join(tmp, "trainer.states")
        with open(path, "wb") as f:
            f.write(states)
        trainer.load_states(path)
    optimizer = trainer._optimizer
    counts = {}
    for per_device in optimizer._all_index_update_counts.values():
        for index, count in per_device.items():
            counts[index] = max(counts.get(index, 0), count)
    devices = sorted({p.list_ctx()[0].device_id for p in trainer._params}) or [0]
    optimizer._all_index_update_counts = {device: dict(counts) for device in devices}
    optimizer._index_update_count = optimizer._all_index_update_counts[devices[0]]
    optimizer.num_update = max([optimizer.num_update] + list(counts.values()))
    return trainer
