"""Image files for prediction and evaluation: decoding, reading, listing."""
import os

from .._compat import mx
from ..data.pixels import oversize_reason
from ..errors import MissingInputError, UsageError


class NotAnImageError(UsageError):
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


def decode_image(data, name="<bytes>"):
    """Decode JPEG/PNG/... bytes to an HWC uint8 RGB numpy array.

    Raises
    ------
    NotAnImageError
        When the bytes are not an image OpenCV can read, or when their header declares more pixels
        than :func:`gluon_inception.data.pixels.max_pixels` (checked before anything is decoded).
    """
    if not data:
        raise NotAnImageError(name, "not an image (the file is empty)")
    too_large = oversize_reason(data)
    if too_large:
        raise NotAnImageError(name, too_large)
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
            raise MissingInputError("%s does not exist (give image files or folders of images)" % path)
    return files

