"""uint8 batches finished on the device: the same input and augmentation statistics as the float iterator."""
import numpy as np
import pytest

from gluon_inception._compat import mx
from gluon_inception.data import DeviceAugment, build_train_iter

MEAN, STD = (120.0, 115.0, 100.0), (60.0, 58.0, 57.0)
SHAPE = (3, 16, 16)
# The centre crop, no jitter: the chapter preset without its rotation, shear and random crop.
FIXED_CROP = {"preset": "chapter", "rand_crop": False, "max_rotate_angle": 0, "max_shear_ratio": 0}


def _write(path, images):
    idx = str(path)[:-4] + ".idx"
    writer = mx.recordio.MXIndexedRecordIO(idx, str(path), "w")
    for i, image in enumerate(images):
        writer.write_idx(i, mx.recordio.pack_img(mx.recordio.IRHeader(0, float(i % 4), i, 0), image, quality=95))
    writer.close()
    return str(path)


@pytest.fixture(scope="module")
def textured(tmp_path_factory):
    """96 colourful, left-right asymmetric images (BGR) with varied brightness and saturation."""
    rng = np.random.RandomState(0)
    images = []
    for _ in range(96):
        base = rng.uniform(30, 225, size=3)
        image = base + rng.normal(0, 25, size=(24, 28, 1)) + rng.normal(0, 10, size=(24, 28, 3))
        image[:, :9] = 255 - base  # a block on the left: a flip moves it
        images.append(np.clip(image, 0, 255).astype(np.uint8))
    return _write(tmp_path_factory.mktemp("textured") / "textured.rec", images)


def _samples(rec, on_device, count=256, **overrides):
    mx.random.seed(11)
    it = build_train_iter(rec, 32, SHAPE, mean=MEAN, std=STD, seed=3, num_threads=1, on_device=on_device,
                          **overrides)
    out = []
    while sum(len(a) for a in out) < count:
        for batch in it:
            x = batch.data[0]
            if on_device:
                assert x.dtype == np.uint8 and it.provide_data[0].dtype == np.uint8
                x = it.device_augment(x)
            assert x.dtype == np.float32 and x.shape == (32,) + SHAPE
            out.append(x.asnumpy())
        it.reset()
    return np.concatenate(out)[:count]


def _statistics(batch):
    """Per-channel mean/std of the normalised values and the spread of brightness, contrast, saturation."""
    pixels = batch * np.reshape(STD, (1, 3, 1, 1)) + np.reshape(MEAN, (1, 3, 1, 1))
    grey = (pixels * np.reshape((0.299, 0.587, 0.114), (1, 3, 1, 1))).sum(axis=1, keepdims=True)
    image_mean = pixels.mean(axis=(1, 2, 3))
    return {
        "channel_mean": batch.mean(axis=(0, 2, 3)),
        "channel_std": batch.std(axis=(0, 2, 3)),
        "brightness_spread": image_mean.std(),
        "contrast": pixels.std(axis=(1, 2, 3)).mean(),
        "saturation": np.abs(pixels - grey).mean(),
    }


def test_without_jitter_the_device_path_gives_the_iterators_float_batches_exactly(textured):
    # Fixed crops: the float path draws two more random numbers per image, so random crops part ways.
    plain = {"rand_mirror": False, **FIXED_CROP}
    on_cpu = _samples(textured, False, count=64, **plain)
    on_device = _samples(textured, True, count=64, **plain)
    np.testing.assert_allclose(on_device, on_cpu, rtol=0, atol=1e-5)


def test_device_jitter_has_the_iterators_augmentation_statistics(textured):
    # 1024 crops of 16x16: enough for per-image spreads to settle within a few percent.
    reference = _statistics(_samples(textured, False, count=1024))
    device = _statistics(_samples(textured, True, count=1024))
    unjittered = _statistics(_samples(textured, True, brightness=0, contrast=0, saturation=0, pca_noise=0))
    np.testing.assert_allclose(device["channel_mean"], reference["channel_mean"], atol=0.1)
    np.testing.assert_allclose(device["channel_std"], reference["channel_std"], rtol=0.06)
    for key in ("brightness_spread", "contrast", "saturation"):
        assert device[key] == pytest.approx(reference[key], rel=0.1), key
    # the jitter is really on: brightness varies much more from image to image than without it
    assert device["brightness_spread"] > 1.3 * unjittered["brightness_spread"]
    assert reference["brightness_spread"] > 1.3 * unjittered["brightness_spread"]


def test_flips_stay_in_the_iterator_at_half_the_images(textured):
    plain = FIXED_CROP
    flipped = _samples(textured, True, count=96, **plain)
    unflipped = _samples(textured, True, count=96, rand_mirror=False, **plain)
    differs = np.abs(flipped - unflipped).max(axis=(1, 2, 3)) > 1e-3
    mirrored = np.abs(flipped - unflipped[:, :, :, ::-1]).max(axis=(1, 2, 3)) < 1e-3
    assert np.array_equal(differs, mirrored), "an image either passes unchanged or exactly mirrored"
    assert 0.3 < differs.mean() < 0.7


def test_every_batch_draws_new_crops_and_jitter(tmp_path):
    # MXNet's seed_aug re-seeds per position in the batch, which repeats one batch's draws all epoch.
    rec = _write(tmp_path / "flat.rec", [np.full((16, 16, 3), (50, 100, 200), np.uint8)] * 64)
    it = build_train_iter(rec, 8, SHAPE, mean=(0, 0, 0), std=(1, 1, 1), num_threads=1, contrast=0, saturation=0,
                          pca_noise=0)
    factors = [batch.data[0].asnumpy()[:, 1, 8, 8] / 100.0 for batch in it]
    assert len(factors) == 8
    assert all(0.59 <= f.min() and f.max() <= 1.41 for f in factors)
    assert len({tuple(np.round(f, 3)) for f in factors}) == 8, "two batches got the same brightness draws"


def test_device_augment_hybridized_is_the_imperative_block_and_follows_the_seed():
    x = mx.nd.array(np.random.RandomState(1).randint(0, 256, (4, 3, 8, 8)), dtype="uint8")
    imperative = DeviceAugment(MEAN, STD, 0.4, 0.4, 0.4, 0.1)
    hybrid = DeviceAugment(MEAN, STD, 0.4, 0.4, 0.4, 0.1)
    hybrid.hybridize(static_alloc=True, static_shape=True)
    mx.random.seed(5)
    a = imperative(x).asnumpy()
    mx.random.seed(5)
    b = hybrid(x).asnumpy()
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert np.abs(a - hybrid(x).asnumpy()).max() > 1e-3, "the next call draws new factors"
    lo = (0 - np.reshape(MEAN, (1, 3, 1, 1))) / np.reshape(STD, (1, 3, 1, 1))
    hi = (255 - np.reshape(MEAN, (1, 3, 1, 1))) / np.reshape(STD, (1, 3, 1, 1))
    assert (a >= lo - 1e-5).all() and (a <= hi + 1e-5).all(), "jittered pixels stay within 0..255"


def test_device_augment_refuses_bad_settings():
    with pytest.raises(ValueError, match="std > 0"):
        DeviceAugment((1, 2, 3), (1, 0, 1))
    with pytest.raises(ValueError, match="within"):
        DeviceAugment(MEAN, STD, brightness=1.5)
