"""The per-pixel end of the training pipeline, run as MXNet ops on the training device.

With ``build_train_iter(..., on_device=True)`` the iterator stops after decode, crop and mirror
and hands over uint8 batches; :class:`DeviceAugment` does the rest (over 40 % of the iterator's
CPU time per image, docs/benchmarks.rst) as part of the training step.

The colour jitter is the one ``ImageRecordIter`` applies (MXNet's ``brightness``, ``contrast``,
``saturation`` and ``pca_noise``), with one difference that does not change its statistics:
the iterator applies the three jitters in a random order and rounds to uint8 after each one;
here they are applied at once and the values stay fractional. Without the uint8 clipping the
three are linear maps that commute (contrast keeps the image's mean grey level, saturation keeps
every pixel's grey level), so the order only matters for clipped pixels, and the result is
clipped to 0-255 once, as the iterator's last step does.
"""
from .._compat import mx

#: ImageNet RGB eigenvalues (0-255 scale) and eigenvectors of the pixel covariance, as MXNet's
#: ``pca_noise`` and ``mx.image.LightingAug`` use them (AlexNet's PCA lighting).
PCA_EIGVAL = (55.46, 4.794, 1.148)
PCA_EIGVEC = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))

#: ITU-R 601 luma weights (RGB), OpenCV's BGR2GRAY and MXNet's jitter definition of grey.
GREY = (0.299, 0.587, 0.114)


class DeviceAugment(mx.gluon.HybridBlock):
    """uint8 RGB NCHW batch -> float32 network input: colour jitter, PCA lighting, mean/std.

    Each sample draws its own jitter factors from the device's random generator
    (``mx.random.seed`` makes them reproducible). With all jitters at 0 it only casts and
    normalises, ``(x - mean) / std``, which is what evaluation applies.

    Parameters
    ----------
    mean, std : tuple of 3 floats
        RGB normalisation on the 0-255 scale.
    brightness, contrast, saturation : float
        Factors drawn uniformly from ``[1 - v, 1 + v]`` per sample, as ``ImageRecordIter``.
    pca_noise : float
        Standard deviation of the PCA lighting weights.

    Examples
    --------
    >>> import mxnet as mx
    >>> aug = DeviceAugment(mean=(128, 128, 128), std=(64, 64, 64))
    >>> aug(mx.nd.full((1, 3, 2, 2), 192, dtype="uint8")).asnumpy().ravel()[:3]
    array([1., 1., 1.], dtype=float32)
    """

    def __init__(self, mean, std, brightness=0.0, contrast=0.0, saturation=0.0, pca_noise=0.0):
        super().__init__()
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self.brightness, self.contrast = float(brightness), float(contrast)
        self.saturation, self.pca_noise = float(saturation), float(pca_noise)
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std must be three RGB values with std > 0, got %r %r" % (mean, std))
        if min(self.brightness, self.contrast, self.saturation, self.pca_noise) < 0 or max(
                self.brightness, self.contrast, self.saturation) > 1:  # fmt: skip
            raise ValueError("jitter amounts must be within [0, 1] (pca_noise >= 0)")

    @property
    def jitters(self):
        """True when any colour jitter or lighting noise is on (training); False: cast and normalise only."""
        return any((self.brightness, self.contrast, self.saturation, self.pca_noise))

    @staticmethod
    def _per_channel(F, one, values):
        """A (1, 3, 1, 1) array of ``values`` built from the (1, 1, 1, 1) array ``one`` (no parameters)."""
        return F.concat(*(one * float(v) for v in values), dim=1)

    def hybrid_forward(self, F, x):
        x = F.cast(x, "float32")
        one = F.ones_like(F.slice(x, begin=(0, 0, 0, 0), end=(1, 1, 1, 1)))
        if self.brightness or self.contrast or self.saturation:
            per_sample = F.slice(x, begin=(None, 0, 0, 0), end=(None, 1, 1, 1))  # (N, 1, 1, 1)

            def factor(amount):
                return F.random.uniform_like(per_sample, low=1.0 - amount, high=1.0 + amount)

            a, c, s = factor(self.brightness), factor(self.contrast), factor(self.saturation)
            # grey = 1x1 convolution with the luma weights, its image mean = luma-weighted channel means
            # (one oneDNN convolution and one global pooling: far cheaper on a CPU than reductions)
            weights = F.reshape(self._per_channel(F, one, GREY), shape=(1, 3, 1, 1))
            grey = F.Convolution(x, weights, kernel=(1, 1), num_filter=1, no_bias=True)
            mean_grey = F.Pooling(grey, kernel=(1, 1), global_pool=True, pool_type="avg")
            # brightness(contrast(saturation(x))) in one step: a*(c*(s*x + (1-s)*grey) + (1-c)*mean_grey)
            x = F.broadcast_add(F.broadcast_mul(x, a * c * s), F.broadcast_mul(grey, a * c * (1 - s)))
            x = F.broadcast_add(x, a * (1 - c) * mean_grey)
            x = F.clip(x, 0.0, 255.0)
        if self.pca_noise:
            weights = F.random.normal_like(F.slice(x, begin=(None, None, 0, 0), end=(None, None, 1, 1)),
                                           scale=self.pca_noise)  # (N, 3, 1, 1)
            parts = F.split(weights, num_outputs=3, axis=1)
            offset = F.concat(*(sum(parts[j] * (PCA_EIGVEC[c][j] * PCA_EIGVAL[j]) for j in range(3))
                                for c in range(3)), dim=1)  # fmt: skip
            x = F.clip(F.broadcast_add(x, offset), 0.0, 255.0)
        scale = self._per_channel(F, one, [1.0 / s for s in self.std])
        shift = self._per_channel(F, one, [-m / s for m, s in zip(self.mean, self.std)])
        return F.broadcast_add(F.broadcast_mul(x, scale), shift)

    def __repr__(self):
        return "DeviceAugment(mean=%s, std=%s, brightness=%g, contrast=%g, saturation=%g, pca_noise=%g)" % (
            self.mean, self.std, self.brightness, self.contrast, self.saturation, self.pca_noise)
