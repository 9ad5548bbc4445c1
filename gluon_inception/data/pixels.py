"""Images are sized before they are decoded: a file whose header declares more pixels than the limit is
refused, so a small file that claims to be huge (a decompression bomb) cannot exhaust memory.

The size comes from the header alone (Pillow's lazy open reads a few kilobytes and decodes
nothing). The limit is :data:`DEFAULT_MAX_PIXELS`, or ``$GLUON_INCEPTION_MAX_PIXELS``. Decoding an
image of ``N`` pixels takes about ``3 N`` bytes and OpenCV's temporary copies as much again, so the
default keeps one image under half a gigabyte, far above any photograph in ImageNet.
"""
import io
import os
import warnings

from PIL import Image

from ..errors import UsageError

ENV_MAX_PIXELS = "GLUON_INCEPTION_MAX_PIXELS"
#: 64 megapixels (8000 x 8000): about 200 MB as RGB bytes.
DEFAULT_MAX_PIXELS = 64_000_000


def max_pixels():
    """The pixel limit in force: ``$GLUON_INCEPTION_MAX_PIXELS`` when set, else :data:`DEFAULT_MAX_PIXELS`.

    Raises
    ------
    UsageError
        When the variable is not a positive integer.
    """
    value = os.environ.get(ENV_MAX_PIXELS, "").strip()
    if not value:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit <= 0:
        raise UsageError("$%s=%r is not a positive number of pixels (unset it for the default, %d)"
                         % (ENV_MAX_PIXELS, value, DEFAULT_MAX_PIXELS))  # fmt: skip
    return limit


def declared_size(source):
    """``(width, height)`` from the header of an image file or its bytes; None when Pillow does not
    know the format (OpenCV may still decode it) or the header is unreadable."""
    opened = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's own bomb warning: the limit here is ours
        try:
            with Image.open(opened) as image:
                return tuple(image.size)
        except Image.DecompressionBombError as err:  # beyond twice Pillow's limit: it names the size
            digits = [int(w) for w in str(err).replace("(", " ").split() if w.isdigit()]
            return (digits[0], 1) if digits else (1 << 62, 1)
        except (OSError, ValueError, SyntaxError):  # unknown format, truncated header
            return None


def oversize_reason(source):
    """Why the image in ``source`` (a path or bytes) is refused before decoding, or None when it may be decoded."""
    size = declared_size(source)
    limit = max_pixels()
    if size is None or size[0] * size[1] <= limit:
        return None
    width, height = size
    what = "%d x %d = %d pixels" % (width, height, width * height) if height > 1 else "%d pixels" % width
    return "declares %s, over the limit of %d ($%s raises it)" % (what, limit, ENV_MAX_PIXELS)
