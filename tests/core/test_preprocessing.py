"""Preprocessing: the ImageNet statistics, its dict form and checks, and the crops."""
import numpy as np
import pytest

from gluon_inception.preprocessing import Preprocessing, center_crop, ten_crops


def test_imagenet_statistics_are_defined_once_and_derived_everywhere():
    from gluon_inception.models.googlenet import INPUT_AFFINES
    from gluon_inception.preprocessing import IMAGENET_MEAN, IMAGENET_STD
    from gluon_inception.weights import get_pretrained

    pre = Preprocessing()
    assert pre.mean == pytest.approx((123.675, 116.28, 103.53)) and pre.std == pytest.approx((58.395, 57.12, 57.375))
    assert pre.mean == tuple(255 * v for v in IMAGENET_MEAN) and pre.std == tuple(255 * v for v in IMAGENET_STD)
    assert get_pretrained("googlenet_gluoncv_in1k").preprocessing == pre
    assert INPUT_AFFINES["torchvision"][0] == tuple(s / 0.5 for s in IMAGENET_STD)


def test_preprocessing_round_trips_through_its_dict_and_its_affine_is_its_normalisation():
    pre = Preprocessing(mean=[10, 20, 30], std=[1, 2, 4], crop_size=56, resize=64, interpolation="bicubic")
    assert Preprocessing.from_dict(pre.to_dict()) == pre
    assert (pre.resize, pre.data_shape, pre.interp) == (64, (3, 56, 56), 2)
    x = np.random.RandomState(0).uniform(0, 255, (2, 3, 4, 4)).astype(np.float32)
    scale, shift = (np.array(v, np.float32).reshape(1, 3, 1, 1) for v in pre.affine)
    np.testing.assert_allclose(x * scale + shift, pre.normalize(x), rtol=1e-5, atol=1e-4)


def test_bad_preprocessing_values_are_refused():
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
