"""One vocabulary for inference precision: which precision runs on which device, and the conversion.

``float32`` is the trained network as it is; ``float16`` is MXNet's AMP conversion for GPUs;
``bfloat16`` (:func:`~.quantize.to_bfloat16`) and ``int8`` (:func:`~.quantize.quantize_int8`) are
the oneDNN conversions for CPUs. :func:`convert` is the one entry point; ``gluon-inception
evaluate --precision`` and ``export --precision`` call it.
"""
import warnings

from .._compat import amp, mx
from ..cpu import supports_bf16
from ..errors import UsageError
from .graph import trace_graph
from .quantize import quantize_int8, to_bfloat16

#: Every precision of the package's vocabulary (training takes the first three).
PRECISIONS = ("float32", "float16", "bfloat16", "int8")


class PrecisionError(UsageError):
    """A precision that this device or CPU cannot run, or that lacks what it needs.

    The message starts with the precision (``"float16 needs a GPU: ..."``) and says what runs instead.
    """


def check_precision(precision, ctx=None):
    """Raise :class:`PrecisionError` when ``precision`` cannot run inference on ``ctx``.

    MXNet 1.9.1 runs float16 on GPUs only, bfloat16 and INT8 on CPUs only (oneDNN), and bfloat16 is
    refused, not emulated, where the CPU lacks AVX-512 BF16 and AMX.

    Parameters
    ----------
    precision : {"float32", "float16", "bfloat16", "int8"}
    ctx : mxnet.Context, default CPU
        The device the network will run on.

    Examples
    --------
    >>> from gluon_inception._compat import mx
    >>> check_precision("int8", mx.cpu())
    >>> check_precision("float16", mx.cpu())
    Traceback (most recent call last):
    ...
    gluon_inception.deploy.precision.PrecisionError: float16 needs a GPU: ...
    """
    device = (ctx or mx.cpu()).device_type
    if precision not in PRECISIONS:
        raise PrecisionError("%r is not a precision: choose one of %s" % (precision, ", ".join(PRECISIONS)))
    if precision == "float16" and device != "gpu":
        raise PrecisionError(
            "float16 needs a GPU: MXNet 1.9.1 has no float16 CPU kernels. On the CPU use bfloat16 (AVX-512 BF16 "
            "or AMX), int8 or float32"
        )
    if precision in ("bfloat16", "int8") and device == "gpu":
        raise PrecisionError(
            "%s runs on the CPU only: MXNet 1.9.1 has %s kernels in oneDNN, not on GPUs. On a GPU use float16 "
            "or float32" % (precision, precision)
        )
    if precision == "bfloat16" and not supports_bf16():
        raise PrecisionError(
            "bfloat16 needs a CPU with AVX-512 BF16 or AMX-BF16 (this one has neither: bfloat16 would be "
            "emulated, slower than float32). Use int8 or float32"
        )


def convert(net, precision, calib_data=None, input_shape=(1, 3, 224, 224), ctx=None, num_calib_batches=None,
            batch_size=None, calib_mode="naive"):  # fmt: skip
    """``net`` ready for inference in ``precision``.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        A trained float32 network (GoogLeNet or a
        :class:`~gluon_inception.deploy.export.WithPreprocessing`), its parameters on ``ctx``.
    precision : {"float32", "float16", "bfloat16", "int8"}
        ``"float32"``: ``net`` itself, hybridized with ``static_alloc``/``static_shape``;
        ``"float16"``: MXNet's AMP conversion (GPU; input and output stay float32, BatchNorm and
        softmax-like operators stay float32); ``"bfloat16"``: :func:`~.quantize.to_bfloat16`;
        ``"int8"``: :func:`~.quantize.quantize_int8`.
    calib_data : iterable or NDArray, optional
        int8 only, and required there: calibration images, preprocessed as ``net`` expects them
        (see :func:`~.quantize.quantize_int8`).
    input_shape : tuple, default (1, 3, 224, 224)
        Shape used to trace the graph (float16, bfloat16).
    ctx : mxnet.Context, default CPU
        The device the result runs on (checked with :func:`check_precision`).
    num_calib_batches, batch_size : int, optional
        int8 calibration: at most this many batches of ``calib_data``, and the calibration batch size.
    calib_mode : {"naive", "entropy"}, default "naive"
        int8 calibration method (see :func:`~.quantize.quantize_int8`).

    Returns
    -------
    mxnet.gluon.HybridBlock
        It takes and returns float32, like ``net``.

    Raises
    ------
    PrecisionError
        When ``precision`` cannot run on ``ctx`` or this CPU (:func:`check_precision`), or int8 has
        no ``calib_data``.
    QuantizationError
        When MXNet's bfloat16 or INT8 conversion fails.

    Examples
    --------
    >>> from gluon_inception import googlenet
    >>> from gluon_inception._compat import mx
    >>> net = googlenet(classes=10)
    >>> fast = convert(net, "int8", calib_data=mx.nd.random.normal(shape=(8, 3, 64, 64)))  # doctest: +SKIP
    >>> fast(mx.nd.random.normal(shape=(1, 3, 64, 64))).shape  # doctest: +SKIP
    (1, 10)
    """
    ctx = ctx or mx.cpu()
    check_precision(precision, ctx)
    if precision == "int8":
        if calib_data is None:
            raise PrecisionError("int8 needs calibration images (calib_data): a few hundred images of the training "
                                 "distribution, preprocessed as the network expects them")  # fmt: skip
        return quantize_int8(net, calib_data, num_calib_batches=num_calib_batches, batch_size=batch_size,
                             calib_mode=calib_mode)  # fmt: skip
    if precision == "bfloat16":
        return to_bfloat16(net, input_shape=input_shape, ctx=ctx)
    if precision == "float16":
        return _to_float16(net, input_shape, ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    return net


def _to_float16(net, input_shape, ctx):
    """MXNet's AMP float16 conversion of ``net`` (its graph converted, not run), hybridized for serving."""
    trace_graph(net, input_shape)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Cannot decide type")
        half = amp.convert_hybrid_block(net, target_dtype="float16", ctx=ctx)
    half.hybridize(static_alloc=True, static_shape=True)  # the converter drops them; serving wants them
    return half
