"""Generated data for the tests: image trees, synthetic record files, coloured-square classes."""
import csv
import os

import cv2
import numpy as np
from PIL import Image

from gluon_inception._compat import mx

CLASS_COLOURS = {"n0001": (200, 40, 40), "n0002": (40, 180, 60), "n0003": (50, 60, 210)}  # RGB


def _textured(rng, colour, height, width):
    """An image of roughly ``colour`` with a random texture, as BGR uint8."""
    base = np.array(colour, np.float32)[None, None, :]
    noise = rng.normal(0, 18, size=(height, width, 1)) + rng.normal(0, 6, size=(height, width, 3))
    rgb = np.clip(base + noise, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def make_image_tree(root, seed=0):
    """A small ILSVRC-like tree: train/<wnid>/ (JPEGs, a PNG, a grayscale JPEG, a stray text file) and a
    flat val/ folder with a LOC_val_solution.csv, holding one corrupt file.

    Returns a dict with the paths and the expected counts.
    """
    rng = np.random.RandomState(seed)
    train = os.path.join(root, "train")
    per_class = {}
    for c, (wnid, colour) in enumerate(CLASS_COLOURS.items()):
        folder = os.path.join(train, wnid)
        os.makedirs(folder)
        count = 6
        for i in range(count):
            h, w = rng.randint(36, 70), rng.randint(36, 70)
            cv2.imwrite(os.path.join(folder, "%s_%d.JPEG" % (wnid, i)), _textured(rng, colour, h, w))
        if c == 1:
            cv2.imwrite(os.path.join(folder, "%s_png.png" % wnid), _textured(rng, colour, 50, 41))
            count += 1
            with open(os.path.join(folder, "notes.txt"), "w") as f:
                f.write("not an image\n")
        if c == 2:
            grey = cv2.cvtColor(_textured(rng, colour, 45, 60), cv2.COLOR_BGR2GRAY)
            cv2.imwrite(os.path.join(folder, "%s_grey.JPEG" % wnid), grey)
            count += 1
        per_class[wnid] = count
    val = os.path.join(root, "val")
    os.makedirs(val)
    rows = []
    k = 0
    for wnid, colour in CLASS_COLOURS.items():
        for _ in range(2):
            k += 1
            name = "ILSVRC2012_val_%08d" % k
            cv2.imwrite(os.path.join(val, name + ".JPEG"), _textured(rng, colour, 40, 52))
            rows.append((name, "%s 10 10 30 30 %s 1 1 5 5" % (wnid, wnid)))
    corrupt = "ILSVRC2012_val_%08d" % 99
    with open(os.path.join(val, corrupt + ".JPEG"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 this is not really a JPEG" + bytes(rng.randint(0, 256, 300, dtype=np.uint8)))
    rows.append((corrupt, "n0001 1 1 5 5"))
    labels = os.path.join(root, "LOC_val_solution.csv")
    with open(labels, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ImageId", "PredictionString"])
        writer.writerows(rows)
    return {"train": train, "val": val, "labels": labels, "per_class": per_class, "val_images": len(rows),
            "corrupt": os.path.join("val", corrupt + ".JPEG")}


def write_numbered_records(path, count, size=16):
    """A .rec/.idx whose record ``i`` has label ``i`` and an image of grey level ``i`` (mod 256)."""
    idx = os.path.splitext(path)[0] + ".idx"
    writer = mx.recordio.MXIndexedRecordIO(idx, path, "w")
    for i in range(count):
        image = np.full((size, size + 4, 3), (i * 7) % 256, np.uint8)
        header = mx.recordio.IRHeader(0, float(i), i, 0)
        writer.write_idx(i, mx.recordio.pack_img(header, image, quality=95))
    writer.close()
    return path, idx


class FakeDist:
    """The rank attributes of gluon_inception.dist.Dist, for sharding several ranks in one process."""

    def __init__(self, rank, size, local_size=None):
        self.rank, self.size = rank, size
        self.local_rank = rank
        self.local_size = local_size or size


TINY_CLASSES = ("red", "green", "blue", "yellow")


def write_coloured_squares(folder, per_class, seed, size=36):
    """Coloured-square images: the class is the square's colour, so a few steps learn it."""
    colours = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220), "yellow": (220, 210, 40)}
    rng = np.random.RandomState(seed)
    for name in TINY_CLASSES:
        os.makedirs(os.path.join(folder, name), exist_ok=True)
        for i in range(per_class):
            image = rng.randint(0, 60, size=(size, size, 3)).astype(np.float64)
            side = rng.randint(14, 24)
            top, left = rng.randint(0, size - side, size=2)
            image[top : top + side, left : left + side] = np.array(colours[name]) + rng.normal(0, 15, 3)
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
                os.path.join(folder, name, "%s_%03d.jpg" % (name, i)), quality=92
            )


def png_bomb(width=30000, height=30000):
    """PNG bytes (about 1 KB) whose header declares ``width`` x ``height`` RGB pixels: a decoder that
    trusts it allocates the whole image (30000 x 30000: 2.7 GB) before finding the data short."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    rows = zlib.compress(b"\0" * (1 << 20))  # the first rows, all zero
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def jpeg_bomb(width=30000, height=30000):
    """A small real JPEG whose frame header (SOF0) is rewritten to declare ``width`` x ``height``."""
    ok, data = cv2.imencode(".jpg", np.full((16, 16, 3), 127, np.uint8))
    data = bytearray(data.tobytes())
    at = data.index(b"\xff\xc0")  # length (2), precision (1), height (2), width (2)
    data[at + 5 : at + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)
