"""What evaluation, prediction and export share: preprocessing, image decoding and cropping.

A :class:`Preprocessing` says how an image becomes network input (resize the shorter side,
crop, subtract the mean, divide by the standard deviation). It comes from the metadata of
pretrained weights or of a checkpoint, so every command applies exactly what the weights
were trained with.
"""
import json
import math
import os
from dataclasses import asdict, dataclass

from ._compat import mx, np
from .googlenet import TOPOLOGIES

#: ImageNet RGB statistics on the 0-255 scale (the values most ImageNet weights expect).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

# OpenCV interpolation codes, as mx.image and ImageRecordIter number them.
INTERPOLATIONS = {"nearest": 0, "bilinear": 1, "bicubic": 2, "area": 3, "lanczos": 4}


class NotAnImageError(ValueError):
    """Raised when a file cannot be decoded as an image.

    Attributes
    ----------
    name : str
        The file (or record) that is not an image.
    reason : str
        What is wrong with it, without the name (``"not an image (...)"``).
    """

    def __init__(self, name, reason):
        self.name, self.reason = str(name), reason
        super().__init__("%s: %s" % (self.name, reason))


@dataclass(frozen=True)
class Preprocessing:
    """How an RGB image becomes the network's input.

    The image's shorter side is resized to ``resize``, the centre ``crop_size`` square is
    cut out, and every channel is normalised as ``(pixel - mean) / std`` with pixels on the
    0-255 scale.

    Parameters
    ----------
    mean, std : tuple of 3 floats
        Per-channel RGB statistics on the 0-255 scale.
    crop_size : int
        Side of the square the network sees.
    resize : int
        Shorter side before cropping; at least ``crop_size``.
    interpolation : str
        One of :data:`INTERPOLATIONS` (``"bilinear"``, as ``ImageRecordIter`` resizes).

    Examples
    --------
    >>> p = Preprocessing(crop_size=224)
    >>> p.resize, p.data_shape
    (256, (3, 224, 224))
    """

    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    crop_size: int = 224
    resize: int = None
    interpolation: str = "bilinear"

    def __post_init__(self):
        mean = tuple(float(v) for v in self.mean)
        std = tuple(float(v) for v in self.std)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError("mean and std need 3 RGB values each, got mean=%r std=%r" % (self.mean, self.std))
        if any(v <= 0 for v in std):
            raise ValueError("std values must be positive, got %r" % (std,))
        crop = int(self.crop_size)
        resize = int(self.resize) if self.resize else int(round(crop / 0.875))
        if crop < 1 or resize < crop:
            raise ValueError("need 1 <= crop_size <= resize, got crop_size=%r resize=%r" % (self.crop_size, resize))
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                "unknown interpolation %r: choose one of %s" % (self.interpolation, ", ".join(INTERPOLATIONS))
            )
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "crop_size", crop)
        object.__setattr__(self, "resize", resize)

    @property
    def data_shape(self):
        """``(3, crop_size, crop_size)``."""
        return (3, self.crop_size, self.crop_size)

    @property
    def interp(self):
        """The OpenCV interpolation code."""
        return INTERPOLATIONS[self.interpolation]

    def to_dict(self):
        """A JSON-ready dict; :meth:`from_dict` reads it back."""
        out = asdict(self)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        return out

    @classmethod
    def from_dict(cls, values):
        """Build from :meth:`to_dict`'s output (unknown keys are ignored)."""
        known = {k: values[k] for k in ("mean", "std", "crop_size", "resize", "interpolation") if k in values}
        return cls(**known)

    @classmethod
    def from_pretrained_cfg(cls, cfg):
        """Build from the metadata of a pretrained entry (dict or object with attributes).

        Understands ``mean``/``std`` on the 0-1 or the 0-255 scale (0-1 when every value is
        at most 1, or when ``input_scale``/``scale`` says so), a crop size given as ``crop``,
        ``crop_size``, ``input_size`` (an int or a ``(3, H, W)`` shape) or ``data_shape``,
        and a resize given as ``resize``/``resize_size`` or as ``crop_pct``.
        """
        get = cfg.get if isinstance(cfg, dict) else (lambda k, d=None: getattr(cfg, k, d))
        mean, std = get("mean"), get("std")
        if mean is None or std is None:
            raise ValueError("the pretrained entry names no mean/std: %r" % (cfg,))
        scale = get("input_scale", get("scale", None))
        if scale is None:
            scale = 1.0 if max(list(mean) + list(std)) <= 1.0 else 255.0
        if isinstance(scale, str):
            scale = 1.0 if scale.strip() in ("0-1", "[0,1]", "1") else 255.0
        factor = 255.0 / float(scale)
        crop = _first_int(get("crop"), get("crop_size"), get("input_size"), get("data_shape"), default=224)
        resize = get("resize", get("resize_size", None))
        if resize is None and get("crop_pct") is not None:
            resize = int(math.floor(crop / float(get("crop_pct"))))
        resize = _first_int(resize, default=None)
        interpolation = get("interpolation", "bilinear") or "bilinear"
        return cls(
            mean=[v * factor for v in mean],
            std=[v * factor for v in std],
            crop_size=crop,
            resize=resize,
            interpolation=interpolation if interpolation in INTERPOLATIONS else "bilinear",
        )

    @classmethod
    def from_checkpoint_meta(cls, meta):
        """Build from a checkpoint's meta (``meta["data"]``: mean/std on 0-255, data_shape)."""
        data = meta.get("data") or {}
        if data.get("mean") is None or data.get("std") is None:
            raise ValueError("the checkpoint's meta has no data mean/std; it cannot say how to preprocess images")
        crop = _first_int(data.get("data_shape"), data.get("crop_size"), default=224)
        resize = _first_int(data.get("resize"), data.get("image_size"), default=None)
        if resize is not None and resize < crop:
            resize = None
        return cls(mean=data["mean"], std=data["std"], crop_size=crop, resize=resize)

    # -- array work -------------------------------------------------------------------------
    def normalize(self, batch):
        """``(batch - mean) / std`` for an NCHW float NDArray or numpy array of 0-255 pixels."""
        mean = np.asarray(self.mean, dtype=np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(self.std, dtype=np.float32).reshape(1, 3, 1, 1)
        if isinstance(batch, mx.nd.NDArray):
            ctx = batch.context
            return mx.nd.broadcast_div(
                mx.nd.broadcast_sub(batch, mx.nd.array(mean, ctx=ctx)), mx.nd.array(std, ctx=ctx)
            )
        return (np.asarray(batch, dtype=np.float32) - mean) / std

    def resize_image(self, image):
        """Resize an HWC uint8 image (numpy) so that its shorter side is ``resize``."""
        return resize_short(image, self.resize, self.interp)

    def center_crop(self, image):
        """Resize then cut the centre ``crop_size`` square: HWC uint8 numpy in and out."""
        return center_crop(self.resize_image(image), self.crop_size)

    def ten_crop(self, image):
        """Resize, then the 10 crops of :func:`ten_crops`: (10, crop, crop, 3) uint8."""
        return ten_crops(self.resize_image(image), self.crop_size)


def _first_int(*values, default):
    for value in values:
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            value = value[-1]
        return int(value)
    return default


# -- images ---------------------------------------------------------------------------------
def decode_image(data, name="<bytes>"):
    """Decode JPEG/PNG/... bytes to an HWC uint8 RGB numpy array.

    Raises
    ------
    NotAnImageError
        When the bytes are not an image OpenCV can read.
    """
    if not data:
        raise NotAnImageError(name, "not an image (the file is empty)")
    try:
        image = mx.image.imdecode(data, flag=1, to_rgb=1)
    except mx.base.MXNetError:
        raise NotAnImageError(name, "not an image (OpenCV cannot decode it)") from None
    image = image.asnumpy()
    if image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise NotAnImageError(name, "not an image (it decodes to an empty image)")
    return image


def read_image(path):
    """Read an image file as an HWC uint8 RGB numpy array (raises :class:`NotAnImageError`)."""
    with open(path, "rb") as f:
        return decode_image(f.read(), name=str(path))


def resize_short(image, size, interp=1):
    """Resize so the shorter side is ``size`` (floor rounding of the longer, as ImageRecordIter)."""
    h, w = image.shape[:2]
    if min(h, w) == size:
        return image
    if h > w:
        new_h, new_w = size * h // w, size
    else:
        new_h, new_w = size, size * w // h
    return mx.image.imresize(mx.nd.array(image, dtype="uint8"), new_w, new_h, interp=interp).asnumpy()


def center_crop(image, size):
    """The centre ``size`` x ``size`` square of an HWC image (offsets rounded down)."""
    h, w = image.shape[:2]
    if h < size or w < size:
        raise ValueError("image of %dx%d is smaller than the %dx%d crop" % (w, h, size, size))
    y0, x0 = (h - size) // 2, (w - size) // 2
    return image[y0 : y0 + size, x0 : x0 + size]


def ten_crops(image, size):
    """Oversampling: the 4 corner crops and the centre crop, then the same 5 mirrored.

    Parameters
    ----------
    image : numpy.ndarray
        HWC image at least ``size`` on both sides.
    size : int
        Side of each square crop.

    Returns
    -------
    numpy.ndarray
        ``(10, size, size, C)`` in the order top-left, top-right, bottom-left, bottom-right,
        centre, then those five flipped left-right.
    """
    h, w = image.shape[:2]
    if h < size or w < size:
        raise ValueError("image of %dx%d is smaller than the %dx%d crop" % (w, h, size, size))
    corners = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size)]
    crops = [image[y : y + size, x : x + size] for y, x in corners]
    crops.append(center_crop(image, size))
    crops += [c[:, ::-1] for c in crops]
    return np.stack(crops)


def list_image_files(paths):
    """Expand files and folders (recursively, sorted) into a list of files.

    A folder yields every regular file in it, hidden files aside, whatever the name ends in:
    prediction then reports the files that are not images instead of skipping them silently.

    Raises
    ------
    FileNotFoundError
        For a path that does not exist.
    """
    files = []
    for path in paths:
        path = os.fspath(path)
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files += [os.path.join(root, n) for n in sorted(names) if not n.startswith(".")]
        elif os.path.exists(path):
            files.append(path)
        else:
            raise FileNotFoundError("%s does not exist (give image files or folders of images)" % path)
    return files


def params_context(net):
    """The context of ``net``'s first initialised parameter (the CPU when there is none)."""
    for param in net.collect_params().values():
        try:
            return param.list_ctx()[0]
        except (RuntimeError, mx.gluon.parameter.DeferredInitializationError):
            continue
    return mx.cpu()


def trace_graph(net, input_shape):
    """Hybridize ``net`` if needed and run it once on zeros of ``input_shape``.

    Export, quantization and bfloat16 conversion read the graph that a hybridized block
    caches on its first call; this makes sure there is one.
    """
    import warnings

    if not getattr(net, "_active", False):
        net.hybridize()
    x = mx.nd.zeros(tuple(input_shape), ctx=params_context(net))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Cannot decide type")
        net(x).wait_to_read()
    if not net._cached_graph:
        raise RuntimeError("%s built no graph; only HybridBlocks can be exported or converted" % type(net).__name__)


def softmax(logits):
    """Row-wise softmax of a 2-D numpy array, computed stably in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def write_json(path, payload):
    """Write ``payload`` as indented JSON atomically (via :mod:`gluon_inception.fileio`)."""
    from .fileio import atomic_open

    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=False)
        f.write("\n")


# -- where the weights come from -------------------------------------------------------------
class ModelSourceError(ValueError):
    """The weights asked for cannot be loaded: missing checkpoint, conflicting options..."""


@dataclass
class LoadedModel:
    """A network ready for inference, with what it needs to be used correctly.

    Attributes
    ----------
    net : mxnet.gluon.HybridBlock
    preprocessing : Preprocessing
        From the weights' metadata.
    class_names : list of str or None
        Name of every output unit.
    source : dict
        Where the weights came from (``{"checkpoint": path, "epoch": ...}`` or
        ``{"pretrained": name}``), for reports.
    class_ids : list of str or None
        Dataset class identifiers (ImageNet WordNet ids, or the folder names a checkpoint was
        trained on): what a prepared dataset's ``classes`` are compared with.
    """

    net: object
    preprocessing: Preprocessing
    class_names: list
    source: dict
    class_ids: list = None


def _architecture_conflicts(actual, requested):
    """``[(option, actual, requested)]`` for every requested option that differs."""
    conflicts = []
    for key, wanted in requested.items():
        if wanted is None:
            continue
        have = actual.get(key)
        if have is not None and have != wanted:
            conflicts.append((key, have, wanted))
    return conflicts


def _conflict_message(what, conflicts):
    described = ", ".join("%s: %s has %r, you asked for %r" % (key, what, have, wanted)
                          for key, have, wanted in conflicts)
    options = " / ".join("--%s" % key.replace("_", "-") for key, _, _ in conflicts)
    return "%s does not match the requested architecture (%s). Leave out %s to use its own, or give " \
           "matching values." % (what, described, options)


def load_checkpoint_model(path, topology=None, classes=None, ctx=None):
    """Load a training checkpoint for inference.

    Parameters
    ----------
    path : str
        A checkpoint's ``.params`` file or a checkpoint folder (its latest complete checkpoint).
    topology : str, optional
        The topology you expect; an error names it when the checkpoint differs.
    classes : int, optional
        The number of classes you expect; checked likewise.
    ctx : mxnet.Context, optional

    Returns
    -------
    LoadedModel

    Raises
    ------
    ModelSourceError
        When the checkpoint does not exist or disagrees with ``topology``/``classes``.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelSourceError(
            "checkpoint %s does not exist: give a checkpoint's .params file or the --checkpoints folder "
            "of a training run" % path
        )
    try:
        from .checkpoint import load_model_from_checkpoint
    except ImportError as err:  # pragma: no cover - only without the training module
        raise ModelSourceError("this installation cannot read training checkpoints (%s)" % err) from err
    net, meta = load_model_from_checkpoint(path, ctx=ctx)
    model = dict(meta.get("model") or {})
    conflicts = _architecture_conflicts(model, {"topology": topology, "classes": classes})
    if conflicts:
        raise ModelSourceError(_conflict_message("checkpoint %s" % path, conflicts))
    data = meta.get("data") or {}
    names = data.get("classes")
    if names is not None and len(names) != model.get("classes", len(names)):
        names = None
    params = (meta.get("paths") or {}).get("params") or path
    source = {"checkpoint": os.path.abspath(params), "epoch": meta.get("epoch"), "model": model}
    return LoadedModel(net, Preprocessing.from_checkpoint_meta(meta), names, source, class_ids=names)


def _pretrained_cfg_value(cfg, key, default=None):
    if isinstance(cfg, dict):
        return cfg.get(key, default)
    return getattr(cfg, key, default)


def load_pretrained_model(name=None, topology=None, classes=None, ctx=None):
    """Load pretrained ImageNet weights for inference.

    Parameters
    ----------
    name : str, optional
        A pretrained entry (see :func:`gluon_inception.list_pretrained`); default: the most
        accurate one.
    topology, classes : optional
        What you expect; an error names any option the entry disagrees with.
    ctx : mxnet.Context, optional

    Returns
    -------
    LoadedModel
    """
    from . import model_zoo

    try:
        net = model_zoo.googlenet(pretrained=name or True, ctx=ctx)
    except TypeError as err:  # pragma: no cover - only without the pretrained registry
        raise ModelSourceError("this installation has no pretrained weights registry (%s)" % err) from err
    cfg = getattr(net, "pretrained_cfg", None) or {}
    actual = {"topology": getattr(net, "topology", None), "classes": getattr(net, "classes", None)}
    conflicts = _architecture_conflicts(actual, {"topology": topology, "classes": classes})
    entry = _pretrained_cfg_value(cfg, "name", name or "default")
    if conflicts:
        raise ModelSourceError(_conflict_message("pretrained entry %r" % entry, conflicts))
    names, ids = getattr(net, "class_names", None), getattr(net, "class_ids", None)
    return LoadedModel(net, Preprocessing.from_pretrained_cfg(cfg), names, {"pretrained": entry}, class_ids=ids)


def add_model_arguments(parser):
    """``--checkpoint PATH | --pretrained [NAME]`` and the architecture checks, for CLI commands."""
    group = parser.add_argument_group("weights (one of)")
    source = group.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", metavar="PATH",
                        help="a training checkpoint (.params file, or the checkpoint folder for its latest)")
    source.add_argument("--pretrained", metavar="NAME", nargs="?", const="",
                        help="pretrained ImageNet weights: an entry name or a weight file (without NAME: the most "
                             "accurate entry; then put it after any positional arguments)")
    group.add_argument("--topology", choices=sorted(TOPOLOGIES),
                       help="expected topology; an error says so when the weights differ")
    group.add_argument("--classes", type=int, metavar="N",
                       help="expected number of classes; an error says so when the weights differ")


def load_model_from_args(args, ctx=None):
    """Load what :func:`add_model_arguments` asked for; returns a :class:`LoadedModel`."""
    if args.checkpoint is not None:
        return load_checkpoint_model(args.checkpoint, topology=args.topology, classes=args.classes, ctx=ctx)
    return load_pretrained_model(args.pretrained or None, topology=args.topology, classes=args.classes, ctx=ctx)
