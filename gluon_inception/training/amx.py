"""bfloat16 training on AMX (opt-in, ``GLUON_INCEPTION_AMX=1``): everything the engine does for it, here.

:func:`prepare_network` is the one entry, used by the engine and ``bench/profile_train_step.py``
alike, and only when :func:`gluon_inception.cpu.amx_in_use` says yes. It refuses an image size at
which oneDNN 2.4's AMX kernels corrupt memory (:func:`refuse_broken_image_size`) and pads convolution
inputs to 32-channel multiples (:func:`pad_inputs_for_amx`), so that oneDNN runs them on AMX tiles.
"""
from .._compat import mx
from ..cpu import amx_channels
from ..deploy.amx import amx_breakage
from ..models.blocks import ConvBN
from .config import ConfigError


def convbn_blocks(net):
    """``[(path, ConvBN)]`` of every :class:`~gluon_inception.models.blocks.ConvBN` in ``net``, in
    registration order; ``path`` is the dotted structural name (``stages.inception4e.branch2.0``)."""
    found = []

    def walk(block, prefix):
        for name, child in block._children.items():
            path = prefix + name
            if isinstance(child, ConvBN):
                found.append((path, child))
            walk(child, path + ".")

    walk(net, "")
    return found


def pad_inputs_for_amx(net, multiple=32, minimum=32):
    """Set :attr:`ConvBN.pad_input_to` on every ConvBN that reads ``minimum`` or more channels, not a
    multiple of ``multiple``; returns their paths.

    oneDNN 2.4's AMX convolutions take input channel counts that are a multiple of 32 (or below 32);
    GoogLeNet's 112-, 144-, 528- and 48-channel inputs otherwise run on AVX-512 (a forward pass of
    the 144-channel 3x3 convolution measured 5x slower). The padding is zero channels inside the
    graph; parameters and checkpoints keep their shapes. Call it before ``hybridize``.
    """
    paths = []
    for path, block in convbn_blocks(net):
        target = amx_channels(block.in_channels, multiple, minimum)
        if target != block.in_channels:
            block.pad_input_to = target
            paths.append(path)
    return paths


def refuse_broken_image_size(net, image_size, what):
    """Raise :class:`~gluon_inception.training.ConfigError` when ``net`` at ``image_size`` px has a 1x1
    convolution whose output oneDNN 2.4's AMX kernel corrupts memory at (:func:`.deploy.amx.amx_breakage`);
    ``what`` starts the message (``"--precision bfloat16"``)."""
    reason = amx_breakage(net(mx.sym.var("data")), (1, 3, image_size, image_size), "--image-size")
    if reason:
        raise ConfigError("%s at --image-size %d: %s" % (what, image_size, reason))


def prepare_network(net, image_size, pad=True, what="bfloat16"):
    """Make ``net`` ready for bfloat16 training on AMX; returns the paths of the padded convolutions.

    The image size is checked first (:func:`refuse_broken_image_size`); with ``pad`` (a network that
    will train, not a teacher), the inputs are then padded (:func:`pad_inputs_for_amx`). Call it
    before ``hybridize``, and only when :func:`gluon_inception.cpu.amx_in_use`.
    """
    refuse_broken_image_size(net, image_size, what)
    return pad_inputs_for_amx(net) if pad else []
