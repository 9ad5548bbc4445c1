"""Shared inference helpers: preprocessing from metadata, crops, image decoding, file listing."""
import numpy as np
import pytest

from gluon_inception.deploy.images import NotAnImageError, decode_image, list_image_files
from gluon_inception.preprocessing import Preprocessing, center_crop, ten_crops


def test_preprocessing_from_a_pretrained_entry_scales_0_1_statistics_to_pixels():
    entry = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "resize": 256, "crop": 224}
    pre = Preprocessing.from_pretrained_cfg(entry)
    assert pre.mean == pytest.approx((123.675, 116.28, 103.53))
    assert pre.std == pytest.approx((58.395, 57.12, 57.375))
    assert (pre.resize, pre.crop_size, pre.data_shape) == (256, 224, (3, 224, 224))
    assert Preprocessing.from_pretrained_cfg({"mean": (120, 110, 100), "std": (60, 60, 60), "crop_pct": 0.875,
                                              "crop_size": 224}).resize == 256


def test_preprocessing_from_checkpoint_meta_and_bad_values():
    meta = {"data": {"mean": [10, 20, 30], "std": [1, 1, 1], "data_shape": [3, 56, 56], "resize": 64}}
    pre = Preprocessing.from_checkpoint_meta(meta)
    assert (pre.crop_size, pre.resize, pre.mean) == (56, 64, (10.0, 20.0, 30.0))
    with pytest.raises(ValueError, match="no data mean/std"):
        Preprocessing.from_checkpoint_meta({"data": {}})
    with pytest.raises(ValueError, match="crop_size <= resize"):
        Preprocessing(crop_size=64, resize=32)
    with pytest.raises(ValueError, match="std values must be positive"):
        Preprocessing(std=(1, 0, 1))
    with pytest.raises(ValueError, match="unknown interpolation"):
        Preprocessing(interpolation="fancy")


def test_ten_crops_are_corners_centre_then_mirrors():
    image = np.arange(5 * 6).reshape(5, 6, 1)
    crops = ten_crops(image, 3)
    assert crops.shape == (10, 3, 3, 1)
    assert crops[0, 0, 0, 0] == image[0, 0, 0] and crops[1, 0, -1, 0] == image[0, 5, 0]
    assert crops[2, -1, 0, 0] == image[4, 0, 0] and crops[3, -1, -1, 0] == image[4, 5, 0]
    np.testing.assert_array_equal(crops[4], center_crop(image, 3))
    np.testing.assert_array_equal(crops[5:], crops[:5, :, ::-1])
    with pytest.raises(ValueError, match="smaller than the 7x7 crop"):
        ten_crops(image, 7)


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
