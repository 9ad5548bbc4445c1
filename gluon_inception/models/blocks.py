"""Reusable building blocks of GoogLeNet: :class:`ConvBN`, :class:`Inception`, :class:`AuxHead`,
:class:`ChannelAffine`."""
from .._compat import mx

nn = mx.gluon.nn

#: BatchNorm epsilon used by GluonCV, torchvision and TF-slim for GoogLeNet.
BN_EPSILON = 1e-3


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


class ConvBN(mx.gluon.HybridBlock):
    """Conv2D (no bias) -> BatchNorm -> ReLU, the unit every GoogLeNet convolution is made of.

    Parameters
    ----------
    in_channels : int
        Channels of the input.
    channels : int
        Channels of the output.
    kernel_size : int or tuple of int
        Size of the convolution window.
    strides : int or tuple of int, default 1
        Stride of the convolution.
    padding : int or tuple of int, default 0
        Zero padding on each side.
    norm_layer : type, default :class:`mxnet.gluon.nn.BatchNorm`
        Normalisation layer, for example :class:`mxnet.gluon.contrib.nn.SyncBatchNorm`.
    norm_kwargs : dict, optional
        Extra arguments for ``norm_layer``; ``epsilon`` defaults to 1e-3.

    Attributes
    ----------
    pad_input_to : int or None
        When set above ``in_channels`` (default None), the convolution reads its input with zero
        channels appended up to this count, and its weight with zero input channels to match: the
        same function, but oneDNN runs AMX kernels only for input channels that are a multiple of 32.
        The parameter keeps its shape; the padding exists only inside the graph.
        :func:`gluon_inception.training.amx.pad_inputs_for_amx` sets it. It is read when the block
        is traced: set it before the first forward pass after ``hybridize``.

    Examples
    --------
    >>> import mxnet as mx
    >>> from gluon_inception import ConvBN
    >>> block = ConvBN(3, 64, kernel_size=7, strides=2, padding=3)
    >>> block
    ConvBN(3 -> 64, kernel=(7, 7), stride=(2, 2), pad=(3, 3))
    >>> block.initialize()
    >>> block(mx.nd.zeros((1, 3, 224, 224))).shape
    (1, 64, 112, 112)
    """

    def __init__(
        self,
        in_channels,
        channels,
        kernel_size,
        strides=1,
        padding=0,
        norm_layer=nn.BatchNorm,
        norm_kwargs=None,
        **kwargs
    ):
        super().__init__(**kwargs)
        self.in_channels, self.channels = in_channels, channels
        self.kernel_size, self.strides, self.padding = (
            _pair(kernel_size),
            _pair(strides),
            _pair(padding),
        )
        norm_kwargs = dict(norm_kwargs or {})
        norm_kwargs.setdefault("epsilon", BN_EPSILON)
        with self.name_scope():
            self.conv = nn.Conv2D(
                channels,
                self.kernel_size,
                strides=self.strides,
                padding=self.padding,
                in_channels=in_channels,
                use_bias=False,
            )
            self.bn = norm_layer(in_channels=channels, **norm_kwargs)
        self.pad_input_to = None

    def hybrid_forward(self, F, x):
        extra = (self.pad_input_to or 0) - self.in_channels
        x = self._padded_conv(F, x, extra) if extra > 0 else self.conv(x)
        return F.Activation(self.bn(x), act_type="relu")

    def _padded_conv(self, F, x, extra):
        """The convolution over ``x`` and its weight, both with ``extra`` zero input channels appended."""
        weight = self.conv.weight.var() if F is mx.sym else self.conv.weight.data(x.context)
        zeros = F.zeros_like(F.slice_axis(x, axis=1, begin=0, end=extra))
        x, zeros = F.amp_multicast(x, zeros, num_outputs=2, cast_narrow=True)  # under AMP: x's bfloat16
        weight = F.concat(weight, F.zeros_like(F.slice_axis(weight, axis=1, begin=0, end=extra)), dim=1)
        return F.Convolution(F.concat(x, zeros, dim=1), weight, kernel=self.kernel_size, stride=self.strides,
                             pad=self.padding, num_filter=self.channels, no_bias=True)  # fmt: skip

    def __repr__(self):
        return "%s(%d -> %d, kernel=%s, stride=%s, pad=%s)" % (
            type(self).__name__,
            self.in_channels,
            self.channels,
            self.kernel_size,
            self.strides,
            self.padding,
        )


class Inception(mx.gluon.HybridBlock):
    """The Inception module: four parallel branches concatenated on the channel axis.

    ``1x1 | 1x1 -> 3x3 | 1x1 -> KxK | 3x3 max pool -> 1x1 projection``

    Parameters
    ----------
    in_channels : int
        Channels of the input.
    ch1x1 : int
        Output channels of the 1x1 branch.
    ch3x3red, ch3x3 : int
        Reduction and output channels of the 3x3 branch.
    ch5x5red, ch5x5 : int
        Reduction and output channels of the third branch (5x5 in the paper).
    pool_proj : int
        Output channels of the 1x1 projection after the max pool.
    third_kernel : {5, 3}, default 5
        Kernel of the third branch: 5 as in the paper, 3 as in GluonCV, torchvision and TF-slim.
    norm_layer, norm_kwargs
        Passed to every :class:`ConvBN`.

    Attributes
    ----------
    out_channels : int
        ``ch1x1 + ch3x3 + ch5x5 + pool_proj``.

    Examples
    --------
    >>> import mxnet as mx
    >>> from gluon_inception import Inception
    >>> block = Inception(192, 64, 96, 128, 16, 32, 32)
    >>> block.out_channels
    256
    >>> block.initialize()
    >>> block(mx.nd.zeros((1, 192, 28, 28))).shape
    (1, 256, 28, 28)
    """

    def __init__(
        self,
        in_channels,
        ch1x1,
        ch3x3red,
        ch3x3,
        ch5x5red,
        ch5x5,
        pool_proj,
        third_kernel=5,
        norm_layer=nn.BatchNorm,
        norm_kwargs=None,
        **kwargs
    ):
        super().__init__(**kwargs)
        if third_kernel not in (3, 5):
            raise ValueError("third_kernel must be 5 (paper) or 3 (GluonCV), got %r" % (third_kernel,))
        counts = dict(
            in_channels=in_channels,
            ch1x1=ch1x1,
            ch3x3red=ch3x3red,
            ch3x3=ch3x3,
            ch5x5red=ch5x5red,
            ch5x5=ch5x5,
            pool_proj=pool_proj,
        )
        for name, value in counts.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError("Inception %s must be a positive int, got %r" % (name, value))
        self.in_channels = in_channels
        self.config = (ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj)
        self.third_kernel = third_kernel
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        conv = dict(norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        with self.name_scope():
            self.branch1 = ConvBN(in_channels, ch1x1, 1, **conv)
            self.branch2 = nn.HybridSequential(prefix="branch2_")
            self.branch2.add(
                ConvBN(in_channels, ch3x3red, 1, **conv),
                ConvBN(ch3x3red, ch3x3, 3, padding=1, **conv),
            )
            self.branch3 = nn.HybridSequential(prefix="branch3_")
            self.branch3.add(
                ConvBN(in_channels, ch5x5red, 1, **conv),
                ConvBN(ch5x5red, ch5x5, third_kernel, padding=third_kernel // 2, **conv),
            )
            self.branch4 = nn.HybridSequential(prefix="branch4_")
            self.branch4.add(
                nn.MaxPool2D(pool_size=3, strides=1, padding=1),
                ConvBN(in_channels, pool_proj, 1, **conv),
            )

    def hybrid_forward(self, F, x):
        return F.concat(self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x), dim=1)

    def __repr__(self):
        c1, c3r, c3, c5r, c5, pp = self.config
        k = self.third_kernel
        return "Inception(%d -> %d: 1x1 %d | 1x1 %d -> 3x3 %d | 1x1 %d -> %dx%d %d | pool -> 1x1 %d)" % (
            self.in_channels,
            self.out_channels,
            c1,
            c3r,
            c3,
            c5r,
            k,
            k,
            c5,
            pp,
        )


class AuxHead(mx.gluon.HybridBlock):
    """The paper's auxiliary classifier, attached after Inception 4a and 4d while training.

    ``5x5/3 avg pool -> 1x1 ConvBN 128 -> dense 1024 -> ReLU -> dropout 0.7 -> dense classes``

    It expects the 14x14 maps of a 224x224 input (4x4 after pooling, so the first dense
    layer takes 128 * 4 * 4 = 2048 inputs).

    Parameters
    ----------
    in_channels : int
        Channels of the Inception output it reads (512 after 4a, 528 after 4d).
    classes : int
        Number of classes.
    dropout : float, default 0.7
        Dropout rate before the last dense layer.
    norm_layer, norm_kwargs
        Passed to the :class:`ConvBN`.

    Examples
    --------
    >>> import mxnet as mx
    >>> from gluon_inception import AuxHead
    >>> head = AuxHead(512, classes=10)
    >>> head.initialize()
    >>> head(mx.nd.zeros((2, 512, 14, 14))).shape
    (2, 10)
    """

    def __init__(self, in_channels, classes, dropout=0.7, norm_layer=nn.BatchNorm, norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.classes, self.dropout_rate = in_channels, classes, dropout
        with self.name_scope():
            self.pool = nn.AvgPool2D(pool_size=5, strides=3)
            self.conv = ConvBN(in_channels, 128, 1, norm_layer=norm_layer, norm_kwargs=norm_kwargs)
            self.fc1 = nn.Dense(1024, in_units=2048, activation="relu")
            self.dropout = nn.Dropout(dropout)
            self.fc2 = nn.Dense(classes, in_units=1024)

    def hybrid_forward(self, F, x):
        x = self.conv(self.pool(x))
        return self.fc2(self.dropout(self.fc1(F.flatten(x))))

    def __repr__(self):
        return "AuxHead(%d -> %d classes, dropout=%s)" % (self.in_channels, self.classes, self.dropout_rate)


class ChannelAffine(mx.gluon.HybridBlock):
    """A fixed per-channel ``y[:, c] = x[:, c] * scale[c] + shift[c]``, without parameters.

    Topology ``"torchvision"`` starts with one: torchvision's ImageNet GoogLeNet
    (``transform_input=True``) re-scales its ImageNet-normalised input to ``(x - 0.5) / 0.5``
    before the first convolution. In MXNet it stays a separate step: folding it into that
    convolution's weights and bias would pad with the wrong value. The ONNX export folds it
    exactly (a subtraction in front and scaled weights, see
    :func:`~gluon_inception.deploy.export.export_onnx`).
    :func:`~gluon_inception.deploy.export.bake_preprocessing` puts one in front of a network for
    the ``(x - mean) / std`` of its :class:`~gluon_inception.preprocessing.Preprocessing`.

    Parameters
    ----------
    scale, shift : sequence of float
        One value per channel.

    Examples
    --------
    >>> import mxnet as mx
    >>> from gluon_inception import ChannelAffine
    >>> block = ChannelAffine(scale=(2.0, 1.0), shift=(0.0, -1.0))
    >>> block(mx.nd.ones((1, 2, 1, 1))).reshape(-1).asnumpy().tolist()
    [2.0, 0.0]
    """

    def __init__(self, scale, shift, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.shift = tuple(float(v) for v in scale), tuple(float(v) for v in shift)
        if len(self.scale) != len(self.shift) or not self.scale:
            raise ValueError("scale and shift need one value per channel, got %r and %r" % (scale, shift))

    def hybrid_forward(self, F, x):
        channels = [
            F.slice_axis(x, axis=1, begin=c, end=c + 1) * scale + shift
            for c, (scale, shift) in enumerate(zip(self.scale, self.shift))
        ]
        return F.concat(*channels, dim=1)

    def __repr__(self):
        return "ChannelAffine(scale=%s, shift=%s)" % (
            tuple(round(v, 4) for v in self.scale),
            tuple(round(v, 4) for v in self.shift),
        )
