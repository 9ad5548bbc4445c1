"""The GoogLeNet (Inception v1) network: architecture only.

Weights and their metadata live in :mod:`gluon_inception.weights`; the name registry in
:mod:`gluon_inception.zoo`.
"""
import math
import warnings
from collections import OrderedDict

from .._compat import mx, wait_for_parameters
from ..preprocessing import IMAGENET_MEAN, IMAGENET_STD
from .blocks import AuxHead, ChannelAffine, ConvBN, Inception

nn = mx.gluon.nn

# (name, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj), Table 1 of the paper.
INCEPTION_CONFIGS = (
    ("inception3a", 192, 64, 96, 128, 16, 32, 32),
    ("inception3b", 256, 128, 128, 192, 32, 96, 64),
    ("inception4a", 480, 192, 96, 208, 16, 48, 64),
    ("inception4b", 512, 160, 112, 224, 24, 64, 64),
    ("inception4c", 512, 128, 128, 256, 24, 64, 64),
    ("inception4d", 512, 112, 144, 288, 32, 64, 64),
    ("inception4e", 528, 256, 160, 320, 32, 128, 128),
    ("inception5a", 832, 256, 160, 320, 32, 128, 128),
    ("inception5b", 832, 384, 192, 384, 48, 128, 128),
)

#: The topologies :class:`GoogLeNet` can build. ``pool4`` is (kernel, stride, ceil_mode) of the
#: max pool between 4e and 5a; the other three downsampling pools are 3x3/2 with ceil mode in both.
TOPOLOGIES = {
    # The paper and the book chapter: true 5x5 third branch, 3x3/2 pools throughout.
    "paper": {"third_kernel": 5, "pool4": (3, 2, True)},
    # GluonCV's googlenet (and torchvision's, TF-slim's): 3x3 third branch, 2x2/2 pool before 5a.
    "gluoncv": {"third_kernel": 3, "pool4": (2, 2, False)},
    # torchvision's ImageNet googlenet: as "gluoncv" but the pool before 5a rounds up, and the
    # input is re-scaled first (transform_input=True), so it takes ImageNet-normalised input.
    "torchvision": {"third_kernel": 3, "pool4": (2, 2, True), "input_affine": "torchvision"},
}

#: torchvision's ``transform_input``: ImageNet-normalised ``(x - mean) / std`` becomes
#: ``(x - 0.5) / 0.5``, i.e. ``x * (std / 0.5) + (mean - 0.5) / 0.5`` per channel.
INPUT_AFFINES = {
    "torchvision": (
        tuple(s / 0.5 for s in IMAGENET_STD),
        tuple((m - 0.5) / 0.5 for m in IMAGENET_MEAN),
    ),
}

_AUX_AFTER = {"inception4a": "aux1", "inception4d": "aux2"}


class Stages(nn.HybridSequential):
    """A :class:`~mxnet.gluon.nn.HybridSequential` whose children have names.

    ``stages["inception4a"]`` and ``stages[8]`` both work, and parameter names read
    ``features.inception4a.branch2.1.conv.weight`` instead of ``features.8.1.0.weight``.

    Examples
    --------
    >>> from gluon_inception import GoogLeNet
    >>> features = GoogLeNet().features
    >>> features.names()[:6]
    ['conv1', 'pool1', 'conv2', 'conv3', 'pool2', 'inception3a']
    >>> features["inception4a"].out_channels
    512
    """

    def add_named(self, name, block):
        """Append ``block`` under ``name``."""
        if name in self._children:
            raise ValueError("stage %r already exists" % name)
        self.register_child(block, name)

    def names(self):
        """Stage names in execution order."""
        return list(self._children.keys())

    def __getitem__(self, key):
        if isinstance(key, str):
            return self._children[key]
        return super().__getitem__(key)


def _pool_out(size, kernel, stride, ceil_mode):
    if size < kernel:
        return 0
    rounding = math.ceil if ceil_mode else math.floor
    return int(rounding((size - kernel) / stride)) + 1


class GoogLeNet(mx.gluon.HybridBlock):
    """GoogLeNet (Inception v1) with BatchNorm after every convolution.

    Szegedy et al., "Going Deeper with Convolutions" (2014), with the BatchNorm of Ioffe and
    Szegedy (2015). Global average pooling replaces the paper's fixed 7x7 pool, so inputs of
    any size from :attr:`min_input_size` up work.

    Parameters
    ----------
    classes : int, default 1000
        Number of output classes.
    topology : {"paper", "gluoncv", "torchvision"}, default "paper"
        ``"paper"`` builds the true 5x5 third branch of the paper and of the book chapter;
        ``"gluoncv"`` the 3x3 third branch and pooling of GluonCV's googlenet, so GluonCV's
        ImageNet weights fit it exactly; ``"torchvision"`` the same layers as torchvision's
        googlenet (the pool before 5a rounds up) behind a :class:`ChannelAffine` that does what
        its ``transform_input=True`` does, so torchvision's ImageNet weights give its logits.
    dropout : float, default 0.4
        Dropout rate before the classifier.
    aux_logits : bool, default False
        Add the auxiliary classifiers after 4a and 4d. While training (inside
        ``autograd.record()``) the network then returns ``(logits, aux1, aux2)``; at inference
        it returns the logits alone, and :meth:`export` writes the inference graph.
    norm_layer : type, default :class:`mxnet.gluon.nn.BatchNorm`
        Normalisation layer of every :class:`ConvBN`.
    norm_kwargs : dict, optional
        Extra arguments for ``norm_layer``.

    Attributes
    ----------
    features : Stages
        Stem, Inception stages and global average pooling: maps ``(N, 3, H, W)`` to
        ``(N, 1024, 1, 1)``. Use it alone for transfer learning.
    output : HybridSequential
        Dropout and the dense classifier.
    aux1, aux2 : AuxHead or None
        The auxiliary heads when ``aux_logits`` is set.

    Examples
    --------
    >>> import mxnet as mx
    >>> from gluon_inception import GoogLeNet
    >>> net = GoogLeNet(classes=10)
    >>> net.initialize()
    >>> net(mx.nd.zeros((2, 3, 224, 224))).shape
    (2, 10)
    >>> net.features(mx.nd.zeros((1, 3, 224, 224))).shape
    (1, 1024, 1, 1)
    """

    def __init__(
        self,
        classes=1000,
        topology="paper",
        dropout=0.4,
        aux_logits=False,
        norm_layer=nn.BatchNorm,
        norm_kwargs=None,
        **kwargs
    ):
        super().__init__(**kwargs)
        if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
            raise ValueError("classes must be an int >= 1, got %r" % (classes,))
        if topology not in TOPOLOGIES:
            raise ValueError(
                "unknown topology %r: choose one of %s" % (topology, ", ".join(map(repr, TOPOLOGIES)))
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError("dropout must be in [0, 1), got %r" % (dropout,))
        self.classes, self.topology, self.aux_logits = classes, topology, bool(aux_logits)
        self.dropout_rate = dropout
        spec = TOPOLOGIES[topology]
        conv = dict(norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        # Whether the cached graph returns the aux outputs; see forward().
        self._emit_aux = False
        with self.name_scope():
            self.features = Stages(prefix="features_")
            with self.features.name_scope():
                add = self.features.add_named
                if spec.get("input_affine"):
                    add("input_affine", ChannelAffine(*INPUT_AFFINES[spec["input_affine"]]))
                add("conv1", ConvBN(3, 64, 7, strides=2, padding=3, **conv))
                add("pool1", nn.MaxPool2D(3, 2, ceil_mode=True))
                add("conv2", ConvBN(64, 64, 1, **conv))
                add("conv3", ConvBN(64, 192, 3, padding=1, **conv))
                add("pool2", nn.MaxPool2D(3, 2, ceil_mode=True))
                for name, *counts in INCEPTION_CONFIGS:
                    add(name, Inception(*counts, third_kernel=spec["third_kernel"], prefix=name + "_", **conv))
                    if name == "inception3b":
                        add("pool3", nn.MaxPool2D(3, 2, ceil_mode=True))
                    elif name == "inception4e":
                        k, s, ceil = spec["pool4"]
                        add("pool4", nn.MaxPool2D(k, s, ceil_mode=ceil))
                add("global_pool", nn.GlobalAvgPool2D())
            self.output = nn.HybridSequential(prefix="output_")
            self.output.add(nn.Dropout(dropout), nn.Dense(classes, in_units=1024))
            if self.aux_logits:
                self.aux1 = AuxHead(512, classes, prefix="aux1_", **conv)
                self.aux2 = AuxHead(528, classes, prefix="aux2_", **conv)
            else:
                self.aux1 = self.aux2 = None
        self.min_input_size = self._smallest_input()

    # -- shapes -----------------------------------------------------------------------------
    def stage_sizes(self, size):
        """Spatial size after every stage for a square ``size`` x ``size`` input.

        Returns an ordered dict ``{stage name: side length}``; 0 means the input is too small.
        """
        sizes = OrderedDict()
        for name, block in self.features._children.items():
            if isinstance(block, ConvBN):
                (k, _), (s, _), (p, _) = block.kernel_size, block.strides, block.padding
                size = (size + 2 * p - k) // s + 1 if size > 0 else 0
            elif isinstance(block, nn.MaxPool2D):
                kwargs = block._kwargs
                size = _pool_out(size, kwargs["kernel"][0], kwargs["stride"][0], kwargs["pooling_convention"] == "full")
            sizes[name] = max(size, 0)
        return sizes

    def _fits(self, size, aux):
        sizes = self.stage_sizes(size)
        return all(v >= 1 for v in sizes.values()) and (not aux or 14 <= sizes["inception4a"] <= 16)

    def _smallest_input(self):
        return next(size for size in range(1, 1024) if self._fits(size, self.aux_logits))

    def check_input_size(self, size, aux=None):
        """Raise ValueError when inputs ``size`` pixels high (or wide) do not fit the network.

        Parameters
        ----------
        size : int
        aux : bool, optional
            Whether the auxiliary heads run (they need 14x14 to 16x16 maps after inception4a);
            default: when the network has them.
        """
        aux = self.aux_logits if aux is None else aux
        if not self._fits(size, aux=False):
            raise ValueError(
                "an input side of %d pixels is too small for GoogLeNet (topology %r): height and width must "
                "be at least %d" % (size, self.topology, self.min_input_size)
            )
        if aux and not self._fits(size, aux=True):
            raise ValueError(
                "the auxiliary heads need 14x14 to 16x16 maps after inception4a (inputs of %d to about 250 "
                "pixels, 224 as in the paper); got %d pixels. Train without aux_logits for other sizes."
                % (self.min_input_size, size)
            )

    def _check_input(self, shape):
        if len(shape) != 4:
            raise ValueError("GoogLeNet expects a 4-D batch (N, 3, H, W), got shape %s" % (shape,))
        if shape[1] != 3:
            raise ValueError("GoogLeNet expects 3 input channels (RGB) in axis 1, got shape %s" % (shape,))
        for side in shape[2:]:
            self.check_input_size(side, aux=self._emit_aux)

    # -- forward ----------------------------------------------------------------------------
    def forward(self, x, *args):
        want_aux = self.aux_logits and mx.autograd.is_training()
        if want_aux != self._emit_aux:
            # The aux outputs exist only while training. A cached graph has a fixed number of
            # outputs, so switch graphs when the mode changes (once per train/eval switch).
            self._emit_aux = want_aux
            self._clear_cached_op()
        if isinstance(x, mx.nd.NDArray):
            self._check_input(x.shape)
        if self.aux_logits and not self._emit_aux and self._active and not self._cached_op:
            # Building the inference graph: the unused aux heads are expected, not a mistake.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Parameter .*aux[12]_.* is not used")
                return super().forward(x, *args)
        out = super().forward(x, *args)
        # A cached graph hands back a list; give the same tuple in both modes.
        return tuple(out) if isinstance(out, list) else out

    def hybrid_forward(self, F, x):
        aux = []
        for name, block in self.features._children.items():
            x = block(x)
            if self._emit_aux and name in _AUX_AFTER:
                aux.append(getattr(self, _AUX_AFTER[name])(x))
        logits = self.output(x)
        if self._emit_aux:
            return (logits, aux[0], aux[1])
        return logits

    def export(self, path, epoch=0, remove_amp_cast=True):
        """Write ``path-symbol.json`` and ``path-%04d.params`` of the inference graph.

        Unlike :meth:`mxnet.gluon.HybridBlock.export`, no forward pass is needed first, and the
        auxiliary heads never appear in the exported graph. The files load with
        :meth:`mxnet.gluon.SymbolBlock.imports`.
        """
        if self._emit_aux or not self._cached_graph:
            self._emit_aux = False
            self._clear_cached_op()
            self._get_graph(mx.sym.var("data"))
        sym = self._cached_graph[1]
        # MXNet's own export takes the values from the cached op, which exists only after a
        # hybridized forward pass; read them from the parameters instead.
        wait_for_parameters()
        arg_names, aux_names = set(sym.list_arguments()), set(sym.list_auxiliary_states())
        values = {}
        for param in self.collect_params().values():
            if param.name in arg_names:
                values["arg:" + param.name] = param._reduce()
            elif param.name in aux_names:
                values["aux:" + param.name] = param._reduce()
        sym.save("%s-symbol.json" % path, remove_amp_cast=remove_amp_cast)
        mx.nd.save("%s-%04d.params" % (path, epoch), values)

    def __repr__(self):
        lines = [
            "GoogLeNet(topology=%r, classes=%d, aux_logits=%s, min_input_size=%d)"
            % (self.topology, self.classes, self.aux_logits, self.min_input_size)
        ]
        for name, block in self.features._children.items():
            lines.append("  (%s): %s" % (name, block if isinstance(block, (ConvBN, Inception)) else _short(block)))
        lines.append("  (output): Dropout(%s) -> Dense(1024 -> %d)" % (self.dropout_rate, self.classes))
        if self.aux_logits:
            lines.append("  (aux1 after inception4a): %r" % self.aux1)
            lines.append("  (aux2 after inception4d): %r" % self.aux2)
        return "\n".join(lines)


def _short(block):
    if isinstance(block, nn.MaxPool2D):
        kw = block._kwargs
        return "MaxPool(%dx%d/%d%s)" % (
            kw["kernel"][0],
            kw["kernel"][1],
            kw["stride"][0],
            ", ceil" if kw["pooling_convention"] == "full" else "",
        )
    if isinstance(block, nn.GlobalAvgPool2D):
        return "GlobalAvgPool"
    return repr(block)


def count_parameters(net, include_running_stats=False):
    """Number of scalar parameters of ``net``.

    Parameters
    ----------
    net : mxnet.gluon.Block
    include_running_stats : bool, default False
        Count BatchNorm's running mean and variance too (they are not learned by gradient).

    Returns
    -------
    int

    Examples
    --------
    >>> from gluon_inception import count_parameters, googlenet
    >>> count_parameters(googlenet(topology="gluoncv"))
    6624904
    """
    total = 0
    for param in net.collect_params().values():
        if not include_running_stats and param.grad_req == "null":
            continue
        total += int(math.prod(param.shape))
    return total


def describe_model(net):
    """How to rebuild ``net`` (what checkpoints and converted weights record as ``model``).

    Returns
    -------
    dict
        For a :class:`GoogLeNet`: ``name``, ``topology``, ``classes``, ``aux_logits``, ``dropout``;
        for another network ``name`` None and its ``class``.
    """
    if isinstance(net, GoogLeNet):
        return {
            "name": "googlenet",
            "topology": net.topology,
            "classes": net.classes,
            "aux_logits": net.aux_logits,
            "dropout": net.dropout_rate,
        }
    return {"name": None, "class": "%s.%s" % (type(net).__module__, type(net).__name__)}


def model_summary(net):
    """One line about ``net`` for logs: the architecture and its number of learnable parameters."""
    if isinstance(net, GoogLeNet):
        return "GoogLeNet(topology=%r, classes=%d, aux_logits=%s), %s learnable parameters" % (
            net.topology, net.classes, net.aux_logits, format(count_parameters(net), ","))  # fmt: skip
    return type(net).__name__
