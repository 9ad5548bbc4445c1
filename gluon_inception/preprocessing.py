"""How an image becomes network input: :class:`Preprocessing` and the crops it uses.

A :class:`Preprocessing` says how an image becomes network input (resize the shorter side,
crop, subtract the mean, divide by the standard deviation). Pretrained entries carry one,
checkpoints store one, and evaluation, prediction and export read it, so every command
applies exactly what the weights were trained with.
"""
from dataclasses import asdict, dataclass

from ._compat import mx, np

#: ImageNet RGB statistics as published, for pixels on the 0-1 scale; :class:`Preprocessing`
#: (0-255 pixels) and the torchvision topology's input affine derive from these.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# OpenCV interpolation codes, as mx.image and ImageRecordIter number them.
INTERPOLATIONS = {"nearest": 0, "bilinear": 1, "bicubic": 2, "area": 3, "lanczos": 4}


@dataclass(frozen=True)
class Preprocessing:
    """How an RGB image becomes the network's input.

    The image's shorter side is resized to ``resize``, the centre ``crop_size`` square is
    cut out, and every channel is normalised as ``(pixel - mean) / std`` with pixels on the
    0-255 scale.

    Parameters
    ----------
    mean, std : tuple of 3 floats
        Per-channel RGB statistics on the 0-255 scale; default: ImageNet's.
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

    mean: tuple = tuple(255 * v for v in IMAGENET_MEAN)
    std: tuple = tuple(255 * v for v in IMAGENET_STD)
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

    @property
    def affine(self):
        """``(scale, shift)`` per channel with ``(x - mean) / std == x * scale + shift``."""
        return tuple(1.0 / s for s in self.std), tuple(-m / s for m, s in zip(self.mean, self.std))

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

    def denormalize(self, batch):
        """The inverse of :meth:`normalize` for a numpy NCHW batch: ``batch * std + mean``, 0-255 pixels."""
        mean = np.asarray(self.mean, dtype=np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(self.std, dtype=np.float32).reshape(1, 3, 1, 1)
        return np.asarray(batch, dtype=np.float32) * std + mean

    def resize_image(self, image):
        """Resize an HWC uint8 image (numpy) so that its shorter side is ``resize``."""
        return resize_short(image, self.resize, self.interp)

    def center_crop(self, image):
        """Resize then cut the centre ``crop_size`` square: HWC uint8 numpy in and out."""
        return center_crop(self.resize_image(image), self.crop_size)

    def ten_crop(self, image):
        """Resize, then the 10 crops of :func:`ten_crops`: (10, crop, crop, 3) uint8."""
        return ten_crops(self.resize_image(image), self.crop_size)


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

