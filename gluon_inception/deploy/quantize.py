"""Fast CPU inference in MXNet's oneDNN: INT8, bfloat16 and fused float32 (:doc:`/tutorials/cpu_inference`)."""
import contextlib
import json
import logging
import os
import tempfile
import warnings
from itertools import islice

from .._compat import amp, mx, np, wait_for_parameters
from ..cpu import amx_in_use, supports_bf16
from ..errors import GluonInceptionError
from .amx import checked_block, pad_for_amx, refuse_broken_input
from .graph import fold_batchnorm, trace_graph

log = logging.getLogger(__name__)
quantization = mx.contrib.quantization

CALIB_MODES = ("naive", "entropy")


class QuantizationError(GluonInceptionError, RuntimeError):
    """Quantization cannot run with the given inputs."""


def _as_array(batch):
    """The data array of one calibration batch: NDArray, numpy array or DataBatch."""
    if isinstance(batch, mx.io.DataBatch):
        data = batch.data[0]
        pad = batch.pad or 0
        return data[: data.shape[0] - pad] if pad else data
    if isinstance(batch, (list, tuple)):
        return _as_array(batch[0])
    if isinstance(batch, np.ndarray):
        return mx.nd.array(batch)
    if isinstance(batch, mx.nd.NDArray):
        return batch
    raise QuantizationError("calibration batches must be NDArrays, numpy arrays or DataBatches, got %r" % type(batch))


def collect_calibration_data(batches, num_batches=None):
    """Concatenate up to ``num_batches`` batches of images into one NDArray on the CPU.

    Parameters
    ----------
    batches : iterable
        NDArrays, numpy arrays or :class:`mxnet.io.DataBatch` (their ``pad`` rows are dropped),
        e.g. the iterator of :func:`gluon_inception.data.build_val_iter`.
    num_batches : int, optional
        Stop after this many.

    Returns
    -------
    mxnet.nd.NDArray
        ``(N, 3, H, W)`` float32.
    """
    arrays = [_as_array(batch).as_in_context(mx.cpu()).astype("float32") for batch in islice(batches, num_batches)]
    if not arrays:
        raise QuantizationError("the calibration data yielded no batch: give a record file with images in it")
    return mx.nd.concat(*arrays, dim=0) if len(arrays) > 1 else arrays[0]


def quantize_int8(
    net,
    calib_data,
    num_calib_batches=None,
    calib_mode="naive",
    batch_size=None,
    exclude_layers_match=None,
    quantized_dtype="auto",
    logger=None,
):
    """Quantize a float32 network to INT8 with oneDNN, calibrated on real images.

    The calibrated layers' outputs are read as outputs of the float32 graph, not in MXNet's monitor
    callback, which can lose a layer's statistics silently; peak memory holds them for one batch
    (:doc:`/tutorials/cpu_inference`, "Calibration in a long-running process").

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        A trained float32 network on the CPU (GoogLeNet or a ``WithPreprocessing``).
    calib_data : iterable or NDArray
        Calibration images, already preprocessed the way ``net`` expects them: one NDArray
        ``(N, 3, H, W)`` or an iterable of batches (see :func:`collect_calibration_data`).
        A few hundred images are plenty.
    num_calib_batches : int, optional
        Use at most this many batches of an iterable.
    calib_mode : {"naive", "entropy"}, default "naive"
        ``"naive"`` takes each layer's observed min/max as its range; ``"entropy"`` picks
        ranges that minimise the KL divergence (slower to calibrate, sometimes more accurate).
    batch_size : int, optional
        Batch size of the calibration forward passes (default: up to 32).
    exclude_layers_match : list of str, optional
        Keep layers whose names contain any of these strings in float32.
    quantized_dtype : {"auto", "int8", "uint8"}, default "auto"
    logger : logging.Logger, optional
        Progress of MXNet's quantization passes.

    Returns
    -------
    mxnet.gluon.SymbolBlock
        The INT8 network, hybridized with ``static_alloc``; it takes the same input as ``net``.

    Raises
    ------
    QuantizationError
        Without calibration data, for an unknown mode, when MXNet's pass fails, or when a
        layer's output cannot be read during calibration (the message names the layer). On AMX,
        also for input sizes at which oneDNN 2.4 corrupts memory
        (:data:`~gluon_inception.cpu.AMX_1X1_BROKEN_AREAS`; the message names sizes that
        work). The returned model makes the same check on each new input shape, before running it.

    Examples
    --------
    >>> import mxnet as mx
    >>> from gluon_inception import googlenet
    >>> net = googlenet(classes=10)
    >>> qnet = quantize_int8(net, mx.nd.random.normal(shape=(8, 3, 64, 64)))  # doctest: +SKIP
    >>> qnet(mx.nd.random.normal(shape=(1, 3, 64, 64))).shape  # doctest: +SKIP
    (1, 10)
    """
    if calib_mode not in CALIB_MODES:
        raise QuantizationError("unknown calib_mode %r: choose one of %s" % (calib_mode, ", ".join(CALIB_MODES)))
    if isinstance(calib_data, mx.nd.NDArray):
        data = calib_data
    else:
        data = collect_calibration_data(calib_data, num_calib_batches)
    if data.ndim != 4 or data.shape[1] != 3:
        raise QuantizationError("calibration data must be (N, 3, H, W) images, got shape %s" % (data.shape,))
    batch_size = min(batch_size or 32, data.shape[0])
    # Calibration visits whole batches only: trim to a multiple of the batch size.
    usable = data.shape[0] - data.shape[0] % batch_size
    batches = [data[i : i + batch_size] for i in range(0, usable, batch_size)]
    with warnings.catch_warnings(), _keeps_hybridization(net):
        warnings.filterwarnings("ignore", message=".*deprecated after MXNet 2.0")
        warnings.filterwarnings("ignore", message="Cannot decide type")
        try:
            shape = (batch_size,) + tuple(data.shape[1:])
            plain, args, auxs = _float_graph(net, shape)
            refuse_broken_input(plain, shape, "INT8", QuantizationError)
            sym, args, auxs = pad_for_amx(plain, args, auxs, shape)  # AMX int8 kernels want 32-channel multiples
            excluded = sorted({layer.name for layer in sym.get_internals() for m in exclude_layers_match or []
                               if m in layer.name})  # fmt: skip
            sym = sym.get_backend_symbol("MKLDNN_QUANTIZE")
            qsym, _, auxs, collector = quantization.quantize_graph(
                sym=sym, arg_params=args, aux_params=auxs, ctx=mx.cpu(), excluded_sym_names=excluded,
                calib_mode=calib_mode, quantized_dtype=quantized_dtype, quantize_mode="full", logger=logger,
            )  # fmt: skip
            layers = list(collector.include_layer)
            stats = _layer_statistics(sym, args, auxs, layers, batches, calib_mode)
            if calib_mode == "naive":
                collector.min_max_dict = {name: (float(s[0]), float(s[1])) for name, s in stats.items()}
            else:
                collector.hist_dict = stats
            qsym, qargs, auxs = quantization.calib_graph(
                qsym=qsym, arg_params=args, aux_params=auxs, collector=collector, calib_mode=calib_mode,
                quantized_dtype=quantized_dtype, logger=logger,
            )  # fmt: skip
            # static_alloc only: static_shape runs 1.3x faster at a fixed batch shape, but MXNet 1.9.1 was seen
            # failing inside its forward ("can't generate TBlob for MKLDNN data") after other oneDNN work in the
            # same process; call hybridize(static_shape=True) yourself to serve one fixed shape.
            qnet = _typed_block(qsym.get_backend_symbol("MKLDNN_QUANTIZE"), qargs, auxs, mx.cpu(),
                                checked=(plain, "INT8"), static_shape=False)  # fmt: skip
        except mx.base.MXNetError as err:
            first = str(err).strip().splitlines()[0]
            raise QuantizationError("MXNet's INT8 quantization failed: %s" % first) from err
    if logger:
        logger.info("Calibrated %d layers on %d images (%s)", len(layers), usable, calib_mode)
    return qnet


def _float_graph(net, input_shape):
    """``net``'s float32 symbol and parameters, as ``export`` writes them."""
    wait_for_parameters()
    trace_graph(net, input_shape)
    with tempfile.TemporaryDirectory(prefix="gluon-inception-int8-") as tmp:
        net.export(os.path.join(tmp, "net"), epoch=0)
        return mx.model.load_checkpoint(os.path.join(tmp, "net"), 0)


def _layer_statistics(sym, args, auxs, layers, batches, calib_mode, num_bins=8001):
    """``{layer: (min, max)}`` (``"naive"``) or MXNet's histogram tuples (``"entropy"``) of the float32 graph
    ``sym`` over ``batches``, its ``layers`` read as graph outputs with ``asnumpy`` (plain layout)."""
    internals = sym.get_internals()
    missing = [name for name in layers if name not in internals.list_outputs()]
    if missing:
        raise QuantizationError("INT8 calibration: MXNet asked for statistics of %s, which the float32 graph does "
                                "not have; quantize without exclude_layers_match or report it" % missing)
    exe = mx.sym.Group([internals[name] for name in layers]).simple_bind(
        mx.cpu(), grad_req="null", data=batches[0].shape)
    exe.copy_params_from(args, auxs, allow_extra_params=True)
    stats = {}
    for batch in batches:
        exe.forward(is_train=False, data=batch)
        for name, output in zip(layers, exe.outputs):
            values = _read_layer(name, output)
            low, high = float(values.min()), float(values.max())
            if not (np.isfinite(low) and np.isfinite(high)):
                raise QuantizationError("INT8 calibration: layer %s produced non-finite values (min %r, max %r); "
                                        "check the network and the calibration images" % (name, low, high))
            if calib_mode == "naive":
                old = stats.get(name, (low, high))
                stats[name] = (min(old[0], low), max(old[1], high))
            else:
                th = max(abs(low), abs(high))
                if name in stats:
                    stats[name] = quantization.combine_histogram(stats[name], values, low, high, th)
                else:
                    hist, edges = np.histogram(values, bins=num_bins, range=(-th, th))
                    stats[name] = (hist, edges, low, high, th)
    lost = [name for name in layers if name not in stats]
    if lost:
        raise QuantizationError("INT8 calibration collected no statistics for %s; give more calibration images" % lost)
    return stats


def _read_layer(name, output):
    """One layer's output as a numpy array; any failure stops the calibration with the layer named."""
    try:
        return output.asnumpy()
    except Exception as err:  # noqa: BLE001 - every failure here must stop the export, with the layer named
        first = (str(err).strip().splitlines() or [type(err).__name__])[-1]
        raise QuantizationError(
            "INT8 calibration failed while reading the output of layer %s (%s). No INT8 model was made: retry in a "
            "fresh process, or keep that layer in float32 with exclude_layers_match=[%r]" % (name, first, name)
        ) from err


@contextlib.contextmanager
def _keeps_hybridization(net):
    """Restore ``net``'s hybridize settings afterwards: MXNet's converters call ``net.hybridize()``,
    which would silently drop the caller's ``static_alloc``/``static_shape``."""
    active, flags = getattr(net, "_active", False), dict(getattr(net, "_flags", []))
    try:
        yield
    finally:
        if hasattr(net, "hybridize") and (active, flags) != (net._active, dict(net._flags)):
            net.hybridize(active, **flags)


def to_bfloat16(net, input_shape=(1, 3, 224, 224), ctx=None):
    """Convert a float32 network to bfloat16 compute, fused for oneDNN.

    BatchNorm is folded into the convolutions in float64 (:func:`.graph.fold_batchnorm`), MXNet's
    oneDNN backend fuses each convolution with its ReLU, and ``mxnet.contrib.amp`` runs the fused
    convolutions and the dense layer in bfloat16 (without AMX, the 3-channel stem stays float32);
    input and output stay float32. Converting the plain graph instead (``amp.convert_hybrid_block``)
    keeps BatchNorm and ReLU apart, with layout reorders between them, and measured slower than float32.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
    input_shape : tuple, default (1, 3, 224, 224)
        Shape used to trace the graph.
    ctx : mxnet.Context, default CPU

    Returns
    -------
    mxnet.gluon.SymbolBlock
        Hybridized with ``static_alloc`` and ``static_shape``.

    Raises
    ------
    QuantizationError
        When the CPU has no native bfloat16 (oneDNN would emulate it, far slower than float32), and
        on AMX for input sizes at which oneDNN 2.4 corrupts memory
        (:data:`~gluon_inception.cpu.AMX_1X1_BROKEN_AREAS`), here and, for each new input
        shape, in the returned model.
    """
    if not supports_bf16():
        raise QuantizationError(
            "this CPU has no native bfloat16 (AVX-512 BF16 or AMX): bfloat16 would be emulated and slower "
            "than float32. Use float32 or INT8 instead."
        )
    # BatchNorm folded before the conversion: oneDNN would fold it into the bfloat16 weights, rounding
    # twice, which measured 8x the logit error of an unfused bfloat16 graph.
    # With AMX, convolutions reading 112, 144 or 528 channels get zero padding to a multiple of 32,
    # which puts them on the AMX kernels too (amx.pad_channels).
    sym, args, auxs, plain = _fused_graph(net, input_shape, fold=True)
    refuse_broken_input(plain, input_shape, "bfloat16", QuantizationError)
    lists = amp.lists.symbol_bf16  # MXNet's bfloat16 operator lists
    fused = ["_sg_mkldnn_conv", "_sg_mkldnn_fully_connected"]
    # A fused convolution reading 3 channels is the stem: without AMX, oneDNN 2.4 runs it through a slow
    # GEMM in bfloat16, and float32 is faster; with AMX tiles, bfloat16 is faster there too.
    nodes = json.loads(sym.tojson())["nodes"]
    stem = [node["name"] for node in nodes if node["op"] == "_sg_mkldnn_conv" and not amx_in_use()
            and args[nodes[node["inputs"][1][0]]["name"]].shape[1] < 8]  # fmt: skip
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Cannot decide type")
        # convert_model casts the parameter dicts in place: give it copies.
        bsym, bargs, bauxs = amp.convert_model(
            sym, dict(args), dict(auxs), target_dtype="bfloat16", target_dtype_ops=lists.BF16_FUNCS + fused,
            fp32_ops=[op for op in lists.FP32_FUNCS if op not in fused], excluded_sym_names=stem,
            cast_optional_params=True,
        )  # fmt: skip
    return _typed_block(bsym, bargs, bauxs, ctx or mx.cpu(), checked=(plain, "bfloat16"))


def optimize_float32(net, input_shape=(1, 3, 224, 224), ctx=None):
    """``net``'s float32 graph fused for oneDNN: convolution + BatchNorm + ReLU as one operator.

    A plain ``hybridize()`` in MXNet 1.9.1 runs BatchNorm and ReLU as operators of their own
    (each a pass over the activations). The result computes the same function (to float32 rounding)
    and is for inference only.

    Parameters
    ----------
    net, input_shape, ctx
        As for :func:`to_bfloat16`.

    Returns
    -------
    mxnet.gluon.SymbolBlock
        Hybridized with ``static_alloc`` and ``static_shape``.
    """
    sym, args, auxs, _ = _fused_graph(net, input_shape)
    return _typed_block(sym, args, auxs, ctx or mx.cpu())


def _fused_graph(net, input_shape, fold=False):
    """``net``'s float32 symbol partitioned by the oneDNN backend, its parameters and the plain symbol; with
    ``fold``, BatchNorm folded in first and, on AMX, convolution inputs padded (:func:`.amx.pad_for_amx`)."""
    with _keeps_hybridization(net):
        plain, args, auxs = _float_graph(net, input_shape)
    sym = plain
    if fold:
        sym, args, auxs = fold_batchnorm(sym, args, auxs)
        sym, args, auxs = pad_for_amx(sym, args, auxs, input_shape)
    return sym.get_backend_symbol("MKLDNN"), args, auxs, plain


def _typed_block(sym, args, auxs, ctx, checked=None, static_shape=True):
    """A SymbolBlock over ``sym`` whose parameters keep the dtypes of ``args``/``auxs`` (:func:`.amx.checked_block`
    of ``checked``), hybridized with ``static_alloc`` and ``static_shape``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Cannot decide type")
        inputs = [mx.sym.var("data")]
        block = mx.gluon.SymbolBlock(sym, inputs) if checked is None else checked_block(
            sym, inputs, *checked, QuantizationError)
    values = {"arg:" + k: v for k, v in args.items()}
    values.update({"aux:" + k: v for k, v in auxs.items()})
    block.collect_params().load_dict(values, ctx=ctx, ignore_extra=True, cast_dtype=True, dtype_source="saved")
    block.hybridize(static_alloc=True, static_shape=static_shape)
    return block
