"""bfloat16 training on AMX (opt-in, ``GLUON_INCEPTION_AMX=1``): everything the engine does for it, here.

:func:`prepare_network` is the one entry, used by the engine and ``bench/profile_train_step.py``
alike, and only when :func:`gluon_inception.cpu.amx_in_use` says yes. It refuses an image size at
which oneDNN 2.4's AMX kernels corrupt memory (:func:`refuse_broken_image_size`), pads convolution
inputs to 32-channel multiples (:func:`pad_inputs_for_amx`) and keeps in float32 the BatchNorms that
oneDNN would run on its reference kernel, found by a probe in a child process.

Why: with AMX, the oneDNN inside MXNet 1.9.1 (v2.4) runs a convolution whose channel counts suit the
AMX tiles in a channels-last layout (``acdb``) and one whose counts do not on AVX-512 kernels in a
blocked layout (``aBcd16b``). A BatchNorm between the two kinds gets its input in one layout and its
gradient in the other. MXNet 1.9.1's BatchNorm backward reorders one of them only when it is in plain
(NCHW) layout, so oneDNN takes its reference kernel, which is single-threaded C++: in GoogLeNet four
layers of the 57, and 11 % of a bfloat16 training step (docs/benchmarks.rst has the profile). Casting
such a layer's convolution output to float32 hands its BatchNorm a plain-layout input; the backward
then reorders it to the gradient's layout and runs a vectorised kernel. The four layers compute their
normalisation in float32, which is at least as exact.

Which layers is found, not listed: a child process (oneDNN reads ``DNNL_VERBOSE`` once, when it
loads) runs one training step of the same network at the same batch and image size with oneDNN's log
on, and the shapes of the BatchNorm backward passes that ran ``bnorm_ref`` name the layers. Without
AMX (or in float32) no layer mixes layouts, and nothing is probed.

    >>> from gluon_inception.training.amx import reference_norm_shapes
    >>> line = ("dnnl_verbose,exec,cpu,batch_normalization,bnorm_ref:any,backward,data_bf16::blocked:"
    ...         "aBcd16b:f0 diff_bf16::blocked:acdb:f0,,flags:S,mb32ic160ih14iw14,84.6")
    >>> reference_norm_shapes(line)
    {(160, 14, 14)}
"""
import ctypes
import json
import os
import re
import subprocess
import sys

from .._compat import mx
from ..cpu import amx_channels
from ..deploy.amx import amx_breakage
from ..errors import GluonInceptionError
from ..models.blocks import ConvBN
from ..zoo.registry import get_model
from .config import ConfigError
from .precision import init_amp

#: ``mbNicCihHiwW`` (oneDNN's problem descriptor of a 2-D batch normalisation).
_SHAPE = re.compile(r"^mb\d+ic(\d+)ih(\d+)iw(\d+)$")
_MARKER = "=== gluon-inception AMX layout probe ==="


class LayoutProbeError(GluonInceptionError, RuntimeError):
    """The child process that looks for reference-kernel BatchNorms failed."""


def reference_norm_shapes(log_text):
    """``{(channels, height, width)}`` of the BatchNorm backward passes that ran oneDNN's reference kernel.

    Parameters
    ----------
    log_text : str
        oneDNN's verbose log (``DNNL_VERBOSE=1``; MXNet 1.9.1's oneDNN 2.4 prefixes ``dnnl_verbose``).
    """
    shapes = set()
    for line in log_text.splitlines():
        parts = line.strip().split(",")
        if len(parts) < 9 or parts[0] not in ("dnnl_verbose", "onednn_verbose") or parts[1] != "exec":
            continue
        primitive, implementation, propagation = parts[3], parts[4], parts[5]
        if primitive != "batch_normalization" or not implementation.startswith("bnorm_ref"):
            continue
        if not propagation.startswith("backward"):
            continue
        match = _SHAPE.match(parts[-2])
        if match:
            shapes.add(tuple(int(v) for v in match.groups()))
    return shapes


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


def convbn_output_shapes(net, image_size, ctx=None):
    """``{path: (channels, height, width)}`` of every ConvBN's output for a ``image_size`` input.

    Runs one imperative forward pass of a single random image with forward hooks (the network must
    be initialised and not hybridized yet, else the hooks do not fire).
    """
    ctx = ctx or mx.cpu()
    shapes, handles = {}, []
    for path, block in convbn_blocks(net):
        handles.append(block.register_forward_hook(
            lambda blk, _inputs, output, path=path: shapes.__setitem__(path, tuple(output.shape[1:]))))  # fmt: skip
    try:
        net(mx.nd.random.uniform(shape=(1, 3, image_size, image_size), ctx=ctx))
    finally:
        for handle in handles:
            handle.detach()
    return shapes


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


def prepare_network(net, image_size, find_norms=None, what="bfloat16"):
    """Make ``net`` ready for bfloat16 training on AMX; ``(padded, norms)`` paths of what was changed.

    First the image size is checked (:func:`refuse_broken_image_size`). With ``find_norms`` (for a
    network that will train, not a teacher), the inputs are then padded (:func:`pad_inputs_for_amx`),
    because the padding changes which BatchNorms mix layouts; ``find_norms()`` names those BatchNorms
    (usually :func:`find_reference_norms`, which pads the network it probes alike) and
    :func:`keep_norms_float32` applies the answer. Call it before ``hybridize``, and only when
    :func:`gluon_inception.cpu.amx_in_use`.
    """
    refuse_broken_image_size(net, image_size, what)
    if find_norms is None:
        return [], []
    padded = pad_inputs_for_amx(net)
    norms = find_norms()
    keep_norms_float32(net, norms)
    return padded, norms


def keep_norms_float32(net, paths):
    """Set :attr:`ConvBN.norm_in_float32` on the ConvBN blocks named by ``paths``; returns how many.

    Call it before the network's first forward pass after ``hybridize`` (the flag is read when the
    graph is traced). An unknown path raises ``KeyError``.
    """
    blocks = dict(convbn_blocks(net))
    missing = sorted(set(paths) - set(blocks))
    if missing:
        raise KeyError("no ConvBN block at %s in %s" % (", ".join(missing), type(net).__name__))
    for path in paths:
        blocks[path].norm_in_float32 = True
    return len(set(paths))


def find_reference_norms(model, model_kwargs, batch_size, image_size, pad_inputs=True, timeout=900):
    """Paths of the ConvBN blocks whose bfloat16 BatchNorm backward runs oneDNN's reference kernel.

    A child process builds ``get_model(model, **model_kwargs)`` with bfloat16 AMP (and, with
    ``pad_inputs``, :func:`pad_inputs_for_amx` applied, as the engine trains it), runs one training
    step of ``batch_size`` random ``image_size`` images with ``DNNL_VERBOSE=1`` and matches the
    shapes of the reference-kernel BatchNorms to the ConvBN outputs. One shape can match more than
    one layer (two reductions to 32 channels at 14x14, say); all of them are returned.

    Raises
    ------
    LayoutProbeError
        The child failed or timed out; the message ends with its last error lines.
    """
    spec = {"model": model, "kwargs": model_kwargs, "batch_size": batch_size, "image_size": image_size,
            "pad_inputs": pad_inputs}  # fmt: skip
    env = dict(os.environ, DNNL_VERBOSE="1", MKLDNN_VERBOSE="1")
    cmd = [sys.executable, "-m", "gluon_inception.training.amx", json.dumps(spec)]
    what = "the bfloat16 layout probe (one training step in a child process)"
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LayoutProbeError(
            "%s took more than %d s; train with --precision float32 or a smaller --batch-size" % (what, timeout)
        ) from None
    head, _, tail = proc.stdout.rpartition(_MARKER)
    if proc.returncode != 0 or not head:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()][-5:]
        raise LayoutProbeError(
            "%s failed with exit status %d: %s" % (what, proc.returncode, " | ".join(lines) or "no error output")
        )
    shapes = {path: tuple(shape) for path, shape in json.loads(tail)["shapes"].items()}
    wanted = reference_norm_shapes(head)
    return sorted(path for path, shape in shapes.items() if shape in wanted)


def _probe(spec):
    """The child's side of :func:`find_reference_norms`: print oneDNN's log of one step, then the shapes."""
    init_amp("bfloat16")
    mx.random.seed(0)
    net = get_model(spec["model"], **spec["kwargs"])
    if spec.get("pad_inputs"):
        pad_inputs_for_amx(net)
    shapes = convbn_output_shapes(net, spec["image_size"])
    net.hybridize(static_alloc=True, static_shape=True)
    batch, size = spec["batch_size"], spec["image_size"]
    x = mx.nd.random.uniform(shape=(batch, 3, size, size))
    y = mx.nd.zeros((batch,))
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    with mx.autograd.record():
        out = net(x)
        outputs = out if isinstance(out, (tuple, list)) else (out,)
        loss = mx.nd.add_n(*[loss_fn(o, y).mean() for o in outputs])
    loss.backward()
    mx.nd.waitall()
    ctypes.CDLL(None).fflush(None)  # oneDNN writes through C stdio: out before the marker
    sys.stdout.flush()
    os.write(1, ("\n%s\n%s\n" % (_MARKER, json.dumps({"shapes": shapes}))).encode())


if __name__ == "__main__":
    _probe(json.loads(sys.argv[1]))
