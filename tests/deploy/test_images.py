"""Image input for predict: decoding names the file that is not an image, listing finds images in folders."""
import cv2
import numpy as np
import pytest

from gluon_inception._compat import mx
from gluon_inception.data import pixels
from gluon_inception.deploy.images import NotAnImageError, decode_image, list_image_files
from gluon_inception.errors import UsageError
from tests.support.data_utils import jpeg_bomb, png_bomb


def test_not_an_image_and_missing_paths_are_named(tmp_path):
    with pytest.raises(NotAnImageError, match="notes.txt: not an image"):
        decode_image(b"plain text", name="notes.txt")
    with pytest.raises(NotAnImageError, match="empty"):
        decode_image(b"", name="empty.jpg")
    (tmp_path / "b.jpg").write_bytes(b"x")
    (tmp_path / ".hidden").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.png").write_bytes(b"x")
    found = list_image_files([str(tmp_path)])
    assert [p[len(str(tmp_path)) + 1:] for p in found] == ["b.jpg", "sub/a.png"]
    with pytest.raises(FileNotFoundError, match="missing.jpg does not exist"):
        list_image_files([str(tmp_path / "missing.jpg")])


@pytest.mark.parametrize("bomb", [png_bomb, jpeg_bomb], ids=["png", "jpeg"])
def test_an_image_declaring_more_pixels_than_the_limit_is_refused_before_decoding(bomb, monkeypatch):
    monkeypatch.setattr(mx.image, "imdecode", lambda *a, **k: pytest.fail("decoded a bomb"))
    limit = "over the limit of %d ($GLUON_INCEPTION_MAX_PIXELS raises it)" % pixels.DEFAULT_MAX_PIXELS
    data = bomb(30000, 30000)
    assert len(data) < 1_100_000  # small on disk, 2.7 GB as pixels
    with pytest.raises(NotAnImageError) as err:
        decode_image(data, name="bomb")
    assert str(err.value) == "bomb: declares 900000000 pixels, " + limit  # past Pillow's own guard: no sides
    with pytest.raises(NotAnImageError) as err:
        decode_image(bomb(10000, 9000), name="big")
    assert str(err.value) == "big: declares 10000 x 9000 = 90000000 pixels, " + limit


def test_the_pixel_limit_is_configurable_and_checked(monkeypatch):
    ok, small = cv2.imencode(".png", np.zeros((20, 30, 3), np.uint8))
    assert decode_image(small.tobytes()).shape == (20, 30, 3)
    monkeypatch.setenv(pixels.ENV_MAX_PIXELS, "599")
    with pytest.raises(NotAnImageError, match="declares 30 x 20 = 600 pixels, over the limit of 599"):
        decode_image(small.tobytes())
    monkeypatch.setenv(pixels.ENV_MAX_PIXELS, "lots")
    with pytest.raises(UsageError, match=r"\$GLUON_INCEPTION_MAX_PIXELS='lots' is not a positive number"):
        decode_image(small.tobytes())
