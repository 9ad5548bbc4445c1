"""Top-k class names and probabilities for image files and folders.

Files that are not images (or cannot be read) are reported as failures and the others still
run, so one stray ``README.txt`` in a folder does not stop a batch of predictions.
"""
import os
from dataclasses import dataclass, field

from .._compat import mx, np
from .images import NotAnImageError, list_image_files, read_image


@dataclass
class Prediction:
    """The top-k answer for one image.

    Attributes
    ----------
    path : str
    classes : list of int
        Class indices, most probable first.
    names : list of str
        Their names.
    probabilities : list of float
    """

    path: str
    classes: list = field(default_factory=list)
    names: list = field(default_factory=list)
    probabilities: list = field(default_factory=list)

    def to_dict(self):
        """A JSON-ready dict."""
        return {
            "path": self.path,
            "top": [
                {"class": c, "name": n, "probability": p}
                for c, n, p in zip(self.classes, self.names, self.probabilities)
            ],
        }


@dataclass
class Failure:
    """A file that could not be predicted, and why."""

    path: str
    reason: str

    def to_dict(self):
        """A JSON-ready dict."""
        return {"path": self.path, "error": self.reason}


def class_name(class_names, index):
    """``class_names[index]``, or ``"class <index>"`` when no names are known."""
    if class_names is not None and 0 <= index < len(class_names):
        return str(class_names[index])
    return "class %d" % index


def predict_images(net, paths, preprocessing, class_names=None, topk=5, batch_size=16, ctx=None):
    """Predict the top-k classes of image files and of every file in folders.

    Parameters
    ----------
    net : callable
        NCHW float32 NDArray of normalised images -> logits.
    paths : list of str
        Image files and folders (walked recursively, sorted; hidden files skipped).
    preprocessing : gluon_inception.preprocessing.Preprocessing
        Resize, centre crop and normalisation the weights expect.
    class_names : list of str, optional
        Name of every output unit; without them classes are named ``"class <i>"``.
    topk : int, default 5
        How many classes per image (at most the number of classes).
    batch_size : int, default 16
        Images per forward pass.
    ctx : mxnet.Context, optional

    Returns
    -------
    (list of Prediction, list of Failure)
        In the order the files were found.

    Raises
    ------
    FileNotFoundError
        For a path that does not exist.
    ValueError
        For ``topk < 1``.

    Examples
    --------
    >>> predictions, failures = predict_images(net, ["cat.jpg", "photos/"], pre, names)  # doctest: +SKIP
    >>> predictions[0].names[0], predictions[0].probabilities[0]  # doctest: +SKIP
    ('tabby, tabby cat', 0.62)
    """
    if int(topk) < 1:
        raise ValueError("topk must be at least 1, got %r" % (topk,))
    ctx = ctx or mx.cpu()
    files = list_image_files(paths)
    predictions, failures, pending = [], [], []

    def flush():
        if not pending:
            return
        crops = np.stack([crop for _, crop in pending]).astype(np.float32).transpose(0, 3, 1, 2)
        logits = net(mx.nd.array(preprocessing.normalize(crops), ctx=ctx)).astype("float64")
        probs = mx.nd.softmax(logits).asnumpy()
        k = min(int(topk), probs.shape[1])
        for (path, _), row in zip(pending, probs):
            top = np.argsort(-row, kind="stable")[:k]
            predictions.append(
                Prediction(
                    path=path,
                    classes=[int(c) for c in top],
                    names=[class_name(class_names, int(c)) for c in top],
                    probabilities=[float(row[c]) for c in top],
                )
            )
        pending.clear()

    for path in files:
        try:
            image = read_image(path)
        except NotAnImageError as err:
            failures.append(Failure(path, err.reason))
            continue
        except OSError as err:
            failures.append(Failure(path, "cannot be read (%s)" % (err.strerror or err)))
            continue
        pending.append((path, preprocessing.center_crop(image)))
        if len(pending) >= batch_size:
            flush()
    flush()
    return predictions, failures


def format_predictions(predictions, failures, cwd=None):
    """Human-readable text: each image with its top-k lines, then the files that failed."""
    lines = []
    for p in predictions:
        lines.append(_short_path(p.path, cwd))
        for name, prob in zip(p.names, p.probabilities):
            lines.append("  %6.2f%%  %s" % (100 * prob, name))
    for f in failures:
        lines.append("skipped %s: %s" % (_short_path(f.path, cwd), f.reason))
    return "\n".join(lines)


def _short_path(path, cwd):
    try:
        rel = os.path.relpath(path, cwd or os.getcwd())
    except ValueError:
        return path
    return rel if not rel.startswith("..") else path
