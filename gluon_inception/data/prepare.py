"""Turn folders of images into record files: lists, MXNet's im2rec, statistics, ``dataset.json``.

Records are built by MXNet's own ``tools/im2rec.py`` (shipped inside the MXNet wheel) in a
staging folder and moved into place only when complete; the folder's files are described in
docs/tutorials/prepare_imagenet.rst.
"""
import contextlib
import csv
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from .._compat import mx
from ..errors import UsageError
from ..fileio import atomic_open, atomic_path, file_lock, remove_stale_partials
from .dataset import DATASET_FILE, FORMAT_NAME, FORMAT_VERSION, load_dataset
from .pixels import oversize_reason
from .records import RecordFileError, check_record_file, read_image_record, record_checksums, write_checksums

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
SKIPPED_REPORT = "skipped.tsv"
STAGING_DIR = ".staging"
LOCK_FILE = ".prepare.lock"
CHECKSUMS = ".crc32"


class PrepareError(UsageError):
    """Input folders or options that cannot be turned into a dataset (the message says why)."""


def _is_image(name, extensions):
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in extensions


def _images_under(folder, extensions):
    """Image files below ``folder`` (recursively), as sorted absolute paths."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(os.path.join(dirpath, name) for name in sorted(filenames) if _is_image(name, extensions))
    return found


def _class_folders(root):
    return sorted(
        name for name in os.listdir(root) if not name.startswith(".") and os.path.isdir(os.path.join(root, name))
    )


def scan_class_folders(root, extensions=IMAGE_EXTENSIONS):
    """List a folder-per-class tree.

    Parameters
    ----------
    root : str
        A folder with one sub-folder per class (``train/<wnid>/*.JPEG``).
    extensions : tuple of str
        Lower-case file extensions that count as images.

    Returns
    -------
    classes : list of str
        Sorted class folder names; the label of ``classes[i]`` is ``i``.
    images : dict
        Class name -> sorted list of absolute image paths.

    Raises
    ------
    PrepareError
        When ``root`` is missing, has no class folders, or a class folder has no images.
    """
    root = os.path.abspath(os.fspath(root))
    if not os.path.exists(root):
        raise PrepareError("image folder %s does not exist" % root)
    if not os.path.isdir(root):
        raise PrepareError("%s is not a folder; expected a folder with one sub-folder per class" % root)
    classes = _class_folders(root)
    if not classes:
        loose = [n for n in os.listdir(root) if _is_image(n, extensions)]
        raise PrepareError(
            "%s has no class folders%s; expected one sub-folder per class (train/<class>/*.jpg)"
            % (root, " (it holds %d loose images)" % len(loose) if loose else " (it is empty)")
        )
    if len(classes) < 2:
        raise PrepareError(
            "%s has one class folder (%s): a classifier needs at least two classes; expected one sub-folder per "
            "class (train/<class>/*.jpg)" % (root, classes[0])
        )
    images = {name: _images_under(os.path.join(root, name), extensions) for name in classes}
    empty = [name for name in classes if not images[name]]
    if empty:
        raise PrepareError(
            "%d class folder(s) in %s hold no images (%s): %s. Remove them or add images (accepted "
            "extensions: %s)" % (len(empty), root, ", ".join(empty[:5]) + (" ..." if len(empty) > 5 else ""),
                                 "empty folders are not a class", " ".join(extensions))
        )
    return classes, images


def _read_ground_truth(path, classes):
    """Read a ``ImageId,PredictionString`` CSV (ILSVRC ``LOC_val_solution.csv``) -> {image id: class}."""
    if not os.path.isfile(path):
        raise PrepareError("ground-truth file %s does not exist" % path)
    known = set(classes)
    truth = {}
    with open(path, newline="", encoding="utf-8") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2 or not row[1].split():
                raise PrepareError(
                    "%s line %d: expected `ImageId,PredictionString` (the class first), got %r" % (path, lineno, row)
                )
            image_id, label = row[0].strip(), row[1].split()[0]
            if lineno == 1 and label not in known and image_id.lower() in ("imageid", "image_id", "image", "file"):
                continue  # header
            if label not in known:
                raise PrepareError(
                    "%s line %d: class %r of image %r is not one of the %d training classes"
                    % (path, lineno, label, image_id, len(classes))
                )
            key = os.path.splitext(os.path.basename(image_id))[0]
            if key in truth and truth[key] != label:
                raise PrepareError("%s: image %r has two different labels" % (path, image_id))
            truth[key] = label
    if not truth:
        raise PrepareError("ground-truth file %s has no rows" % path)
    return truth


def scan_validation(root, classes, labels_csv=None, extensions=IMAGE_EXTENSIONS):
    """List the official validation images with their ground truth.

    ``root`` is either a folder per class (``val/<wnid>/*.JPEG``) or a flat folder of images whose
    classes come from ``labels_csv`` (``ImageId,PredictionString``, the class being the first word
    of the prediction string, as in ILSVRC's ``LOC_val_solution.csv``).

    Returns
    -------
    dict
        Class name -> sorted list of absolute image paths (classes without images are left out).

    Raises
    ------
    PrepareError
        For a missing or empty folder, unknown class folders, or images and ground truth that disagree.
    """
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root):
        raise PrepareError("validation folder %s does not exist" % root)
    folders = _class_folders(root)
    if folders and labels_csv is None:
        unknown = [name for name in folders if name not in set(classes)]
        if unknown:
            raise PrepareError(
                "validation folder %s has class folders that the training set lacks: %s"
                % (root, ", ".join(unknown[:5]))
            )
        images = {name: _images_under(os.path.join(root, name), extensions) for name in folders}
        images = {name: paths for name, paths in images.items() if paths}
        if not images:
            raise PrepareError("validation folder %s has class folders but no images in them" % root)
        return images
    files = sorted(n for n in os.listdir(root) if _is_image(n, extensions) and os.path.isfile(os.path.join(root, n)))
    if not files:
        raise PrepareError("validation folder %s holds no images" % root)
    if labels_csv is None:
        raise PrepareError(
            "validation folder %s is flat (no class folders), so its classes must come from a ground-truth "
            "CSV: pass --val-labels LOC_val_solution.csv (ImageId,PredictionString)" % root
        )
    truth = _read_ground_truth(labels_csv, classes)
    by_id = {os.path.splitext(n)[0]: n for n in files}
    unlabelled = sorted(set(by_id) - set(truth))
    missing = sorted(set(truth) - set(by_id))
    if unlabelled or missing:
        parts = []
        if unlabelled:
            parts.append("%d image(s) have no ground truth (e.g. %s)" % (len(unlabelled), unlabelled[0]))
        if missing:
            parts.append("%d ground-truth row(s) name images that are not there (e.g. %s)" % (len(missing), missing[0]))
        raise PrepareError(
            "validation folder %s and %s disagree: %s" % (root, labels_csv, "; ".join(parts))
        )
    images = {}
    for image_id, name in sorted(by_id.items()):
        images.setdefault(truth[image_id], []).append(os.path.join(root, name))
    return images


def make_splits(classes, train_images, test_images=None, val_per_class=50, train_per_class=0,
                test_per_class=0, seed=0):
    """Assign images to splits, stratified by class and reproducible from ``seed``.

    ``val`` takes ``val_per_class`` images of every class out of the training images (the rest is
    ``train``, at most ``train_per_class`` per class when that is > 0); ``test`` is the official
    validation set, at most ``test_per_class`` per class when that is > 0.

    Returns
    -------
    dict
        Split name -> list of ``(label, absolute path)``; the train list is shuffled, the others
        are in class order.
    """
    rng = np.random.RandomState(seed)
    splits = {"train": [], "val": []}
    for label, name in enumerate(classes):
        paths = [train_images[name][i] for i in rng.permutation(len(train_images[name]))]
        if val_per_class and len(paths) <= val_per_class:
            raise PrepareError(
                "class %r has %d training image(s), too few to carve %d validation images out of it and keep "
                "some for training: lower --val-per-class" % (name, len(paths), val_per_class)
            )
        val, train = paths[:val_per_class], paths[val_per_class:]
        if train_per_class:
            train = train[:train_per_class]
        splits["val"].extend((label, p) for p in sorted(val))
        splits["train"].extend((label, p) for p in train)
    splits["train"] = [splits["train"][i] for i in rng.permutation(len(splits["train"]))]
    if not splits["val"]:
        del splits["val"]
    if test_images:
        index = {name: i for i, name in enumerate(classes)}
        test = []
        for name in sorted(test_images, key=index.get):
            paths = test_images[name][:test_per_class] if test_per_class else test_images[name]
            test.extend((index[name], p) for p in paths)
        splits["test"] = test
    return splits


def write_list(path, items, image_root):
    """Write an im2rec ``.lst``: ``index<TAB>label<TAB>path`` with paths relative to ``image_root``.

    ``items`` is a list of ``(index, label, absolute path)``.
    """
    with atomic_open(path, "w", encoding="utf-8") as f:
        for index, label, image in items:
            rel = os.path.relpath(image, image_root)
            if "\t" in rel or "\n" in rel:
                raise PrepareError("image path %r contains a tab or newline, which .lst files cannot hold" % image)
            f.write("%d\t%f\t%s\n" % (index, label, rel))


def find_im2rec():
    """Path of MXNet's own ``im2rec.py`` (shipped in the wheel as ``mxnet/tools/im2rec.py``).

    Raises
    ------
    RuntimeError
        When this MXNet installation does not include it.
    """
    path = os.path.join(os.path.dirname(os.path.abspath(mx.__file__)), "tools", "im2rec.py")
    if not os.path.isfile(path):
        raise RuntimeError(
            "MXNet's im2rec tool is not at %s. The mxnet==1.9.1 wheels from PyPI include it; reinstall MXNet "
            "(pip install --force-reinstall mxnet==1.9.1) or pass im2rec=/path/to/im2rec.py "
            "(--im2rec on the command line)" % path
        )
    return path


# Runs im2rec.py as __main__ after gluon_inception's numpy shim, so it imports MXNet on every Python
# this package supports, and with the fork start method its worker processes rely on.
_IM2REC_RUNNER = (
    "import multiprocessing, runpy, sys\n"
    "multiprocessing.set_start_method('fork', force=True)\n"
    "import gluon_inception._compat\n"
    "tool = sys.argv[1]\n"
    "sys.argv = [tool] + sys.argv[2:]\n"
    "runpy.run_path(tool, run_name='__main__')\n"
)


def default_workers():
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def run_im2rec(lst, image_root, image_size, quality=95, workers=None, im2rec=None, log_path=None, total=0):
    """Build ``<lst>.rec``/``.idx`` next to ``lst`` with MXNet's im2rec.

    The shorter side of every image is resized to ``image_size`` and re-encoded as JPEG with
    ``quality``, in ``workers`` processes (at least 2: im2rec's single-process path crashes on an
    unreadable image instead of skipping it).

    Raises
    ------
    RuntimeError
        When im2rec fails (the message holds the end of its output).
    """
    tool = im2rec or find_im2rec()
    prefix = os.path.splitext(lst)[0]
    cmd = [
        sys.executable, "-u", "-c", _IM2REC_RUNNER, tool, prefix, image_root,
        "--resize", str(int(image_size)), "--quality", str(int(quality)),
        "--num-thread", str(max(2, int(workers or default_workers()))), "--encoding", ".jpg",
    ]
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    env.setdefault("OMP_NUM_THREADS", "1")
    tail = []
    log_file = open(log_path, "w", encoding="utf-8") if log_path else None
    proc = None
    try:
        # Its own process group: on Ctrl-C or an error here, it and its worker processes end with us.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                start_new_session=True)  # fmt: skip
        for line in proc.stdout:
            if log_file:
                log_file.write(line)
            tail = (tail + [line.rstrip()])[-30:]
            if line.startswith("time:") and "count:" in line:
                done = int(line.split("count:")[1].strip() or 0)
                if done and (done % 10000 == 0 or total < 10000):
                    log.info("%s: %d%s images encoded", os.path.basename(prefix), done,
                             "/%d" % total if total else "")
        proc.wait()
    finally:
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if log_file:
            log_file.close()
    if proc.returncode != 0:
        raise RuntimeError(
            "im2rec failed (exit code %d) building %s.rec; its last output:\n%s"
            % (proc.returncode, prefix, "\n".join(tail))
        )
    return prefix + ".rec", prefix + ".idx"


def _why_unreadable(path):
    """A short reason why OpenCV cannot decode ``path``, or None when it can."""
    try:
        size = os.path.getsize(path)
    except OSError as err:
        return "cannot be read (%s)" % err.strerror
    if size == 0:
        return "empty file"
    too_large = oversize_reason(path)
    if too_large:
        return too_large
    try:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
    except cv2.error as err:  # pragma: no cover - imread reports failure with None
        return "OpenCV error: %s" % err
    if image is None:
        return "not a decodable image (corrupt or unsupported format)"
    return None


def _channel_sums(rec, offsets):
    sums = np.zeros(3)
    squares = np.zeros(3)
    pixels = 0
    with open(rec, "rb") as f:
        for offset in offsets:
            _, data = read_image_record(f, offset)
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                raise RecordFileError(rec, "the image in the record at byte %d cannot be decoded" % offset)
            flat = image.reshape(-1, 3)[:, ::-1].astype(np.float64)  # BGR -> RGB
            sums += flat.sum(axis=0)
            squares += np.einsum("ij,ij->j", flat, flat)
            pixels += flat.shape[0]
    return sums, squares, pixels


def record_statistics(rec, idx=None, max_images=50000, seed=0, workers=None):
    """Per-channel RGB mean and standard deviation over all pixels of (a sample of) a record file.

    Parameters
    ----------
    rec, idx : str
        The record file and its index.
    max_images : int
        Decode at most this many records, drawn at random with ``seed`` (0 = all of them).
    workers : int, optional
        Decoding threads (OpenCV releases the GIL); default: the cores available.

    Returns
    -------
    mean, std : list of float
        RGB order, 0-255 scale.
    count : int
        Images decoded.
    """
    info = check_record_file(rec, idx)
    offsets = info.offsets
    if max_images and len(offsets) > max_images:
        picks = np.sort(np.random.RandomState(seed).choice(len(offsets), max_images, replace=False))
        offsets = [offsets[i] for i in picks]
    workers = max(1, min(int(workers or default_workers()), len(offsets)))
    chunks = [offsets[i::workers] for i in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda chunk: _channel_sums(info.rec, chunk), chunks))
    sums, squares, pixels = (sum(parts) for parts in zip(*results))
    mean = sums / pixels
    std = np.sqrt(np.maximum(squares / pixels - mean**2, 0.0))
    return [float(v) for v in mean], [float(v) for v in std], len(offsets)


def _list_digest(items, image_root):
    h = hashlib.sha256()
    for index, label, path in items:
        h.update(("%d\t%f\t%s\n" % (index, label, os.path.relpath(path, image_root))).encode("utf-8"))
    return h.hexdigest()


def _split_is_complete(output, name, recipe):
    """True when ``<name>.json`` exists, matches ``recipe`` and its files check out."""
    try:
        with open(os.path.join(output, name + ".json"), encoding="utf-8") as f:
            done = json.load(f)
    except (OSError, ValueError):
        return False
    if done.get("recipe") != recipe:
        return False
    try:
        info = check_record_file(os.path.join(output, name + ".rec"), expected_count=done["count"])
    except (RecordFileError, KeyError):
        return False
    return info.size == done.get("rec_bytes")


def _record_checksums(rec, offsets, crc_path):
    """Write ``rec``'s per-record CRC-32 list to ``crc_path``; return the file's sha256."""
    digest, crcs = record_checksums(rec, offsets)
    write_checksums(crc_path, crcs)
    return digest


def _build_split(output, name, items, image_root, recipe, image_size, quality, workers, im2rec):
    """Build one split in the staging folder, then move it into place; returns its marker dict."""
    staging = os.path.join(output, STAGING_DIR)
    os.makedirs(staging, exist_ok=True)
    for ext in (".lst", ".rec", ".idx", ".log", CHECKSUMS):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(staging, name + ext))
    # Sized before anything decodes them: a file that declares more pixels than the limit (a
    # decompression bomb) is skipped here, not handed to im2rec's decoding threads.
    reasons = {index: (path, oversize_reason(path)) for index, _label, path in items}
    too_large = {index: (path, reason) for index, (path, reason) in reasons.items() if reason}
    if too_large:
        items = [item for item in items if item[0] not in too_large]
        if not items:
            path, reason = next(iter(too_large.values()))
            raise PrepareError("none of the %d %s images can be read (e.g. %s: %s)"
                               % (len(too_large), name, path, reason))  # fmt: skip
    lst = os.path.join(staging, name + ".lst")
    write_list(lst, items, image_root)
    log.info("%s: encoding %d images with im2rec (shorter side %d, JPEG quality %d)", name, len(items),
             image_size, quality)
    rec, idx = run_im2rec(lst, image_root, image_size, quality, workers, im2rec,
                          log_path=os.path.join(staging, name + ".log"), total=len(items))
    if not os.path.isfile(rec) or os.path.getsize(rec) == 0:
        readable = [p for _, _, p in items if _why_unreadable(p) is None]
        if readable:
            raise RuntimeError("im2rec wrote no records for %s although %d of its images are readable; see %s"
                               % (name, len(readable), os.path.join(staging, name + ".log")))
        raise PrepareError("none of the %d %s images can be read (e.g. %s: %s)"
                           % (len(items), name, items[0][2], _why_unreadable(items[0][2])))
    info = check_record_file(rec, idx)
    written = set(info.keys)
    if written - {index for index, _, _ in items} or len(written) != len(info.keys):
        raise RuntimeError("im2rec wrote an index for %s that does not match its list" % name)
    skipped = [(os.path.relpath(path, image_root), reason) for path, reason in too_large.values()]
    for index, _label, path in items:
        if index in written:
            continue
        reason = _why_unreadable(path)
        if reason is None:
            raise RuntimeError(
                "im2rec left out %s although OpenCV reads it; the build of %s did not finish properly (see %s)"
                % (path, name, os.path.join(staging, name + ".log"))
            )
        skipped.append((os.path.relpath(path, image_root), reason))
    if skipped:
        log.warning("%s: skipped %d unreadable image(s), e.g. %s (%s)", name, len(skipped), *skipped[0])
    kept = [(index, label, path) for index, label, path in items if index in written]
    write_list(lst, kept, image_root)  # the final list matches the records one to one
    marker = {
        "recipe": recipe,
        "count": len(kept),
        "rec_bytes": info.size,
        "rec_sha256": _record_checksums(rec, info.offsets, os.path.join(staging, name + CHECKSUMS)),
        "skipped": [{"path": p, "reason": r} for p, r in skipped],
        "class_counts": np.bincount([int(label) for _, label, _ in kept], minlength=recipe["num_classes"]).tolist(),
    }
    for ext in (".rec", ".idx", ".lst", CHECKSUMS):
        staged = os.path.join(staging, name + ext)
        with open(staged, "rb") as f:
            os.fsync(f.fileno())  # on disk before the marker says complete
        os.replace(staged, os.path.join(output, name + ext))
    with atomic_open(os.path.join(output, name + ".json"), "w", encoding="utf-8") as f:
        json.dump(marker, f, indent=1)
    return marker


def prepare_dataset(train_dir, output, val_dir=None, val_labels=None, val_per_class=50, train_per_class=0,
                    test_per_class=0, image_size=256, quality=95, workers=None, seed=0, stats_images=50000,
                    im2rec=None, overwrite=False, extra_meta=None):
    """Build record files for a folder-per-class image tree (ImageNet or your own data).

    Splits as in the book chapter: ``val`` is carved out of the training images
    (``val_per_class`` per class, stratified, fixed ``seed``) and the official validation set
    (``val_dir``), when given, becomes ``test``. Each split gets an im2rec ``.lst`` and a
    ``.rec``/``.idx`` built by MXNet's own im2rec (shorter side resized to ``image_size``, JPEG
    ``quality``, ``workers`` processes). ``dataset.json`` records the classes, split sizes and the
    training records' per-channel RGB mean/std, and is written last.

    Re-running skips every split that is already complete with the same settings; an interrupted
    run leaves only staging files, which the next run replaces. Images that cannot be decoded are
    skipped and listed in ``skipped.tsv``.

    Parameters
    ----------
    train_dir : str
        Folder with one sub-folder of images per class (ILSVRC2012 ``train/``).
    output : str
        Folder to write (created if needed).
    val_dir : str, optional
        The official validation images: a folder per class, or a flat folder plus ``val_labels``.
    val_labels : str, optional
        Ground-truth CSV for a flat ``val_dir`` (``LOC_val_solution.csv``: ``ImageId,PredictionString``).
    val_per_class : int
        Training images per class held out as the ``val`` split (0 = no val split).
    train_per_class, test_per_class : int
        Caps per class for the train and test splits (0 = no cap), e.g. for a quick subset.
    image_size : int
        Shorter side of the stored images, in pixels.
    quality : int
        JPEG quality of the stored images.
    workers : int, optional
        Encoding processes (default: the cores available).
    seed : int
        Seed of the split assignment and the statistics sample.
    stats_images : int
        Training images decoded for the mean/std (0 = all).
    im2rec : str, optional
        Path of an ``im2rec.py`` to use instead of the one shipped with MXNet.
    overwrite : bool
        Rebuild splits whose settings changed. Without it such a folder is an error, so that a
        typo cannot silently replace hours of work.
    extra_meta : dict, optional
        Extra entries for ``dataset.json``.

    Returns
    -------
    DatasetInfo
        The prepared dataset (as :func:`~gluon_inception.data.load_dataset` reads it).

    Raises
    ------
    PrepareError
        Missing or empty folders, inconsistent ground truth, too few images for the split sizes,
        or an existing dataset with other settings (without ``overwrite``).

    Examples
    --------
    >>> from gluon_inception.data import prepare_dataset
    >>> info = prepare_dataset("ILSVRC/train", "data/imagenet", val_dir="ILSVRC/val",
    ...                        val_labels="LOC_val_solution.csv")  # doctest: +SKIP
    """
    train_dir = os.path.abspath(os.fspath(train_dir))
    output = os.path.abspath(os.fspath(output))
    if int(image_size) < 16:
        raise PrepareError("image_size %d is too small: the stored shorter side must be at least 16 pixels"
                           % image_size)
    if not 1 <= int(quality) <= 100:
        raise PrepareError("JPEG quality must be within 1..100, got %d" % quality)
    classes, train_images = scan_class_folders(train_dir)
    test_images = None
    if val_dir is not None:
        val_dir = os.path.abspath(os.fspath(val_dir))
        test_images = scan_validation(val_dir, classes, val_labels)
    elif val_labels is not None:
        raise PrepareError("val_labels given without val_dir: pass the validation image folder too")
    splits = make_splits(classes, train_images, test_images, val_per_class, train_per_class, test_per_class, seed)
    if not splits["train"]:
        raise PrepareError("no training images left in %s after carving out the validation split" % train_dir)
    image_root = os.path.commonpath([train_dir] + ([val_dir] if val_dir else []))

    os.makedirs(output, exist_ok=True)
    # Several processes (every Horovod rank, say) may prepare one folder: one works, the others wait.
    with file_lock(os.path.join(output, LOCK_FILE), what="the preparation of %s" % output):
        try:
            return _prepare_locked(output, classes, splits, image_root, image_size, quality, workers, seed,
                                   stats_images, im2rec, overwrite, extra_meta,
                                   {"train_dir": train_dir, "val_dir": val_dir,
                                    "val_labels": os.path.abspath(val_labels) if val_labels else None})
        except KeyboardInterrupt:
            # Remove the split being built; finished ones stay, and a rerun resumes after them. Other
            # errors keep it: their messages point at its im2rec log.
            shutil.rmtree(os.path.join(output, STAGING_DIR), ignore_errors=True)
            raise


def _prepare_locked(output, classes, splits, image_root, image_size, quality, workers, seed, stats_images, im2rec,
                    overwrite, extra_meta, source):
    remove_stale_partials(output)  # temporary files of a preparation that was killed
    numbered = {name: [(i, float(label), path) for i, (label, path) in enumerate(items)]
                for name, items in splits.items()}
    recipes = {
        name: {"image_size": int(image_size), "quality": int(quality), "num_classes": len(classes),
               "list_sha256": _list_digest(items, image_root)}
        for name, items in numbered.items()
    }
    todo = [name for name in numbered if not _split_is_complete(output, name, recipes[name])]
    if todo and not overwrite:
        clash = [name for name in todo if os.path.exists(os.path.join(output, name + ".json"))]
        if clash:
            raise PrepareError(
                "%s already holds a prepared %s split built from other images or settings; pass "
                "overwrite=True (--overwrite) to rebuild it, or choose another output folder"
                % (output, " and ".join(clash))
            )
    dataset_json = os.path.join(output, DATASET_FILE)
    if not todo and os.path.isfile(dataset_json):
        try:
            info = load_dataset(output)
            if (info.classes == classes and set(info.split_names) == set(numbered)
                    and all(info.split(n).sha256 for n in numbered)):
                log.info("%s is complete; nothing to do", output)
                return info
        except (OSError, ValueError):
            pass
    if os.path.exists(dataset_json):
        os.remove(dataset_json)  # the folder is about to change: it is incomplete until rewritten
    for name in ("train", "val", "test"):
        if name in todo:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(output, name + ".json"))
            _build_split(output, name, numbered[name], image_root, recipes[name], image_size, quality, workers,
                         im2rec)
        elif name in numbered:
            log.info("%s: already complete, skipped", name)
    markers = {}
    for name in numbered:
        with open(os.path.join(output, name + ".json"), encoding="utf-8") as f:
            markers[name] = json.load(f)
        if "rec_sha256" not in markers[name] or not os.path.isfile(os.path.join(output, name + CHECKSUMS)):
            log.info("%s: recording the checksums of its records (built by an older version)", name)
            info = check_record_file(os.path.join(output, name + ".rec"))
            with atomic_path(os.path.join(output, name + CHECKSUMS)) as tmp:
                markers[name]["rec_sha256"] = _record_checksums(info.rec, info.offsets, tmp)
            with atomic_open(os.path.join(output, name + ".json"), "w", encoding="utf-8") as f:
                json.dump(markers[name], f, indent=1)

    log.info("train: computing the per-channel mean and std")
    mean, std, stats_count = record_statistics(os.path.join(output, "train.rec"), max_images=stats_images,
                                               seed=seed, workers=workers)
    skipped_rows = [(name, s["path"], s["reason"]) for name in numbered for s in markers[name]["skipped"]]
    report = os.path.join(output, SKIPPED_REPORT)
    if skipped_rows:
        with atomic_open(report, "w", encoding="utf-8") as f:
            f.write("split\tpath\treason\n")
            for row in skipped_rows:
                f.write("\t".join(row) + "\n")
    elif os.path.exists(report):
        os.remove(report)
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "classes": classes,
        "num_classes": len(classes),
        "image_size": int(image_size),
        "quality": int(quality),
        "mean": mean,
        "std": std,
        "stats": {"split": "train", "images": stats_count, "over": "all pixels, RGB, 0-255"},
        "splits": {
            name: {"rec": name + ".rec", "idx": name + ".idx", "lst": name + ".lst", "count": markers[name]["count"],
                   "sha256": markers[name]["rec_sha256"], "checksums": name + CHECKSUMS,
                   "class_counts": markers[name]["class_counts"], "skipped": len(markers[name]["skipped"])}
            for name in numbered
        },
        "skipped": len(skipped_rows),
        "skipped_report": SKIPPED_REPORT if skipped_rows else None,
        "image_root": image_root,
        "source": source,
        "seed": seed,
        "builder": "mxnet tools/im2rec.py",
    }
    meta.update(extra_meta or {})
    with atomic_open(dataset_json, "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
    if os.path.isdir(os.path.join(output, STAGING_DIR)):
        shutil.rmtree(os.path.join(output, STAGING_DIR))
    info = load_dataset(output)
    log.info("prepared %r", info)
    return info
