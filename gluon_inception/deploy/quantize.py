"""Fast CPU inference: INT8 through MXNet's oneDNN quantization flow, and bfloat16.

INT8 (:func:`quantize_int8`) runs convolutions and the classifier in 8-bit integers with
thresholds calibrated on a few batches of real images; on AVX-512 VNNI CPUs it is the fast
path. bfloat16 (:func:`to_bfloat16`) fuses the float graph for oneDNN, then converts the fused
layers through ``mxnet.contrib.amp``; :func:`optimize_float32` is the same fusion in float32.
Measure with ``bench/inference.py``.
"""
import contextlib
import json
import logging
import os
import tempfile
import warnings

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
    arrays = []
    for i, batch in enumerate(batches):
        if num_batches is not None and i >= num_batches:
            break
        arrays.append(_as_array(batch).as_in_context(mx.cpu()).astype("float32"))
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

    MXNet's own calibration (``quantize_net``) reads each layer's output in a ctypes monitor
    callback with ``mx.nd.min``/``mx.nd.max``. In MXNet 1.9.1, once the process has run the same
    model in other ways (other batch sizes, ``static_alloc``), the classifier's output can arrive
    in a oneDNN layout that those operators fail on ("We can't generate TBlob for MKLDNN data");
    the exception dies in the callback and the layer silently keeps no statistics
    (``bench/int8_calibration_repro.py`` reproduces it). This function does not use the callback:
    the calibrated layers' outputs become outputs of the float32 graph, are read with ``asnumpy``
    (a copy in the plain layout) after each forward pass, and MXNet's ``calib_graph`` gets the
    statistics. Any failure while reading raises, naming the layer, and every layer MXNet asks
    statistics for must get them. Peak memory holds those outputs for one batch.

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
    wait_for_parameters()
    with warnings.catch_warnings(), _keeps_hybridization(net):
        warnings.filterwarnings("ignore", message=".*deprecated after MXNet 2.0")
        warnings.filterwarnings("ignore", message="Cannot decide type")
        try:
            shape = (batch_size,) + tuple(data.shape[1:])
            sym, args, auxs = _float_graph(net, shape)
            plain = sym
            refuse_broken_input(plain, shape, "INT8", QuantizationError)
            sym, args, auxs = pad_for_amx(sym, args, auxs, shape)  # AMX int8 kernels want 32-channel multiples
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
            qnet = _symbol_block(qsym.get_backend_symbol("MKLDNN_QUANTIZE"), qargs, auxs, checked=(plain, "INT8"))
        except mx.base.MXNetError as err:
            first = str(err).strip().splitlines()[0]
            raise QuantizationError("MXNet's INT8 quantization failed: %s" % first) from err
    if logger:
        logger.info("Calibrated %d layers on %d images (%s)", len(layers), usable, calib_mode)
    # static_alloc only: with static_shape as well the INT8 graph runs 1.3x faster at a fixed batch
    # shape, but MXNet 1.9.1 was seen failing inside its forward ("can't generate TBlob for MKLDNN
    # data") after other oneDNN work in the same process; call hybridize(static_shape=True) yourself
    # to serve one fixed shape.
    qnet.hybridize(static_alloc=True)
    return qnet


def _float_graph(net, input_shape):
    """``net``'s float32 symbol and parameters, as ``export`` writes them."""
    trace_graph(net, input_shape)
    with tempfile.TemporaryDirectory(prefix="gluon-inception-int8-") as tmp:
        net.export(os.path.join(tmp, "net"), epoch=0)
        return mx.model.load_checkpoint(os.path.join(tmp, "net"), 0)


def _layer_statistics(sym, args, auxs, layers, batches, calib_mode, num_bins=8001):
    """Per-layer calibration statistics of the float32 graph ``sym`` over ``batches``.

    The calibrated layers' outputs become outputs of the graph and are read with ``asnumpy``,
    which copies oneDNN layouts to the plain layout: no monitor callback, and no generic operator
    (like MXNet's ``min``/``max``) on a oneDNN-layout array. Returns ``{layer: (min, max)}`` for
    ``"naive"`` and MXNet's histogram tuples for ``"entropy"``.
    """
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


def _symbol_block(qsym, args, auxs, checked):
    """A Gluon block over the quantized symbol with its parameters (:func:`.amx.checked_block` of ``checked``)."""
    block = checked_block(qsym, [mx.sym.var("data")], *checked, QuantizationError)
    save = {"arg:%s" % k: v.as_in_context(mx.cpu()) for k, v in args.items()}
    save.update({"aux:%s" % k: v.as_in_context(mx.cpu()) for k, v in auxs.items()})
    with tempfile.TemporaryDirectory(prefix="gluon-inception-int8-") as tmp:
        path = os.path.join(tmp, "net.params")
        mx.nd.save(path, save)
        block.collect_params().load(path, ctx=mx.cpu(), cast_dtype=True, dtype_source="saved")
    return block


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

    The float32 graph is first partitioned by MXNet's oneDNN backend (``MKLDNN``): every
    convolution absorbs its BatchNorm and ReLU, the classifier becomes one fused dense layer.
    ``mxnet.contrib.amp`` then runs those fused layers in bfloat16, and pooling and concatenation
    follow their inputs, so activations stay bfloat16 from the second convolution to the
    classifier with no cast in between. Without AMX the first convolution (3 input channels, for
    which oneDNN 2.4 has no fast AVX-512 bfloat16 kernel) stays float32. BatchNorm is folded into
    the convolutions in float64 first (:func:`.graph.fold_batchnorm`). Input and output stay float32. Converting
    the plain graph instead (``amp.convert_hybrid_block``) keeps BatchNorm and ReLU as separate
    operators with layout reorders between them, and measured slower than float32.

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
    (each a pass over the activations); the ``MKLDNN`` backend folds them into the convolution.
    The result computes the same function (to float32 rounding) and is for inference only.

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
    """
    sym, args, auxs, _ = _fused_graph(net, input_shape)
    return _typed_block(sym, args, auxs, ctx or mx.cpu())


def _fused_graph(net, input_shape, fold=False):
    """``net``'s float32 symbol partitioned by the oneDNN backend, with its parameters, and the plain
    float32 symbol it came from. With ``fold``, BatchNorm is folded into the convolutions first (in
    float64, see :func:`.graph.fold_batchnorm`) and, on AMX, convolution inputs are zero-padded to
    32-channel multiples (:func:`.amx.pad_for_amx`)."""
    with _keeps_hybridization(net):
        wait_for_parameters()
        sym, args, auxs = _float_graph(net, input_shape)
    plain = sym
    if fold:
        sym, args, auxs = fold_batchnorm(sym, args, auxs)
        sym, args, auxs = pad_for_amx(sym, args, auxs, input_shape)
    return sym.get_backend_symbol("MKLDNN"), args, auxs, plain


def _typed_block(sym, args, auxs, ctx, checked=None):
    """A hybridized SymbolBlock over ``sym`` whose parameters keep the dtypes of ``args``/``auxs``
    (:func:`.amx.checked_block` of ``checked``)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Cannot decide type")
        inputs = [mx.sym.var("data")]
        block = mx.gluon.SymbolBlock(sym, inputs) if checked is None else checked_block(
            sym, inputs, *checked, QuantizationError)
    params = block.collect_params()
    values = dict(("arg:%s" % k, v) for k, v in args.items())
    values.update(("aux:%s" % k, v) for k, v in auxs.items())
    for name, param in params.items():
        value = args.get(name, auxs.get(name))
        if value is not None and param.dtype != value.dtype:
            param.cast(value.dtype)
    params.load_dict(values, ctx=ctx, ignore_extra=True, cast_dtype=False)
    block.hybridize(static_alloc=True, static_shape=True)
    return block
