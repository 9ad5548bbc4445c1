"""Ship a network: MXNet symbol + params and ONNX files, optionally with the preprocessing inside
(:doc:`/tutorials/export_deploy`)."""
import contextlib
import json
import logging
import os
import shutil
import tempfile
import warnings

from .._compat import mx, np, wait_for_parameters
from ..errors import GluonInceptionError, MissingInputError
from ..fileio import atomic_path, write_json
from ..models.blocks import ChannelAffine
from .graph import fold_batchnorm, params_context, trace_graph

#: The onnx release ``mx.onnx.export_model`` of MXNet 1.9.1 works with (newer ones removed APIs it uses).
ONNX_VERSION = "1.18.0"
INSTALL_ONNX = "pip install 'gluon-inception[onnx]'  (onnx==%s and onnxruntime)" % ONNX_VERSION


class ExportError(GluonInceptionError, RuntimeError):
    """An export that cannot be done or did not reproduce the network's outputs."""


class WithPreprocessing(mx.gluon.HybridBlock):
    """A network with a :class:`~gluon_inception.ChannelAffine` normalisation in front: it takes NCHW RGB pixels, 0-255.

    Attributes
    ----------
    normalize : ChannelAffine
    net : mxnet.gluon.HybridBlock
        The wrapped network (parameters shared, not copied).
    preprocessing : Preprocessing
    """

    def __init__(self, net, preprocessing, **kwargs):
        super().__init__(**kwargs)
        self.preprocessing = preprocessing
        with self.name_scope():
            self.normalize = ChannelAffine(*preprocessing.affine, prefix="normalize_")
        self.net = net

    def hybrid_forward(self, F, x):
        return self.net(self.normalize(x))


def bake_preprocessing(net, preprocessing):
    """Return ``net`` with the mean/std normalisation of ``preprocessing`` as its first layer.

    Resizing and cropping stay outside the graph: feed ``crop_size`` x ``crop_size`` RGB
    images, NCHW float32 pixels on the 0-255 scale.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
    preprocessing : Preprocessing

    Returns
    -------
    WithPreprocessing

    Examples
    --------
    >>> import mxnet as mx
    >>> from gluon_inception import googlenet
    >>> from gluon_inception.preprocessing import Preprocessing
    >>> baked = bake_preprocessing(googlenet(classes=3), Preprocessing(crop_size=64))
    >>> baked(mx.nd.full((1, 3, 64, 64), 128.0)).shape
    (1, 3)
    """
    return WithPreprocessing(net, preprocessing)


def _input_shape(net, preprocessing, input_shape):
    if input_shape is not None:
        return tuple(int(v) for v in input_shape)
    if preprocessing is None and isinstance(net, WithPreprocessing):
        preprocessing = net.preprocessing
    size = preprocessing.crop_size if preprocessing is not None else 224
    return (1, 3, size, size)


def _write_mxnet_files(net, prefix):
    """``net.export`` into a temporary folder, then move the files into place atomically."""
    folder = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(folder, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=".export-", dir=folder)
    try:
        tmp_prefix = os.path.join(tmp_dir, "net")
        wait_for_parameters()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is not found in the graph")
            net.export(tmp_prefix, epoch=0)
        symbol, params = prefix + "-symbol.json", prefix + "-0000.params"
        # The params are checked against the symbol before anything is replaced.
        saved = mx.nd.load(tmp_prefix + "-0000.params")
        sym = mx.sym.load(tmp_prefix + "-symbol.json")
        needed = set(sym.list_arguments()) | set(sym.list_auxiliary_states())
        needed.discard("data")
        missing = needed - {k.split(":", 1)[-1] for k in saved}
        if missing:
            raise ExportError(
                "the exported params lack %d of the graph's inputs (e.g. %s)" % (len(missing), sorted(missing)[0])
            )
        os.replace(tmp_prefix + "-0000.params", params)
        os.replace(tmp_prefix + "-symbol.json", symbol)
        return symbol, params
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def export_mxnet(net, prefix, preprocessing=None, classes=None, input_shape=None, metadata=None):
    """Write ``net`` as MXNet symbol JSON + params, with a meta JSON beside them.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        A GoogLeNet, a :class:`WithPreprocessing` or a quantized ``SymbolBlock``. It is
        hybridized and run once on zeros to trace its graph.
    prefix : str
        Files are ``PREFIX-symbol.json``, ``PREFIX-0000.params`` and ``PREFIX-meta.json``.
    preprocessing : Preprocessing, optional
        Recorded in the meta file (and gives the traced input size).
    classes : list of str, optional
        Class names, index = output unit; recorded in the meta file.
    input_shape : tuple, optional
        Shape for tracing; defaults to ``(1, 3, crop, crop)``.
    metadata : dict, optional
        More keys for the meta file (where the weights came from, precision...).

    Returns
    -------
    dict
        ``{"symbol": path, "params": path, "meta": path}``; :func:`load_mxnet` has an example.
    """
    prefix = os.fspath(prefix)
    trace_graph(net, _input_shape(net, preprocessing, input_shape))
    symbol, params = _write_mxnet_files(net, prefix)
    meta = _meta(net, preprocessing, classes, metadata, fmt="mxnet")
    meta.update(symbol=os.path.basename(symbol), params=os.path.basename(params))
    meta_path = prefix + "-meta.json"
    write_json(meta_path, meta)
    return {"symbol": symbol, "params": params, "meta": meta_path}


def _meta(net, preprocessing, classes, metadata, fmt):
    baked = isinstance(net, WithPreprocessing)
    if baked and preprocessing is None:
        preprocessing = net.preprocessing
    meta = {
        "format": fmt,
        "input": {
            "name": "data",
            "layout": "NCHW",
            "color": "RGB",
            "values": "pixels 0-255" if baked else "normalised: (pixel - mean) / std",
        },
        "preprocessing_baked": baked,
        "preprocessing": preprocessing.to_dict() if preprocessing is not None else None,
        "classes": list(classes) if classes is not None else None,
    }
    meta.update(metadata or {})
    return meta


def load_mxnet(prefix, ctx=None):
    """Load what :func:`export_mxnet` wrote.

    Parameters
    ----------
    prefix : str
        The export prefix (``PREFIX-symbol.json`` must exist).
    ctx : mxnet.Context, optional

    Returns
    -------
    (mxnet.gluon.SymbolBlock, dict)
        The network and the meta dict (empty when no meta file exists).

    Examples
    --------
    >>> import os, tempfile
    >>> import mxnet as mx
    >>> from gluon_inception import googlenet
    >>> from gluon_inception.deploy.export import export_mxnet, load_mxnet
    >>> prefix = os.path.join(tempfile.mkdtemp(), "tiny")
    >>> files = export_mxnet(googlenet(classes=3), prefix, input_shape=(1, 3, 64, 64))
    >>> net, meta = load_mxnet(prefix)
    >>> net(mx.nd.zeros((2, 3, 64, 64))).shape, meta["format"]
    ((2, 3), 'mxnet')
    """
    prefix = os.fspath(prefix)
    symbol, params = prefix + "-symbol.json", prefix + "-0000.params"
    for path in (symbol, params):
        if not os.path.exists(path):
            raise MissingInputError("%s does not exist: is %r the prefix given to export?" % (path, prefix))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Cannot decide type")
        net = mx.gluon.SymbolBlock.imports(symbol, ["data"], params, ctx=ctx or mx.cpu())
    meta = {}
    if os.path.exists(prefix + "-meta.json"):
        with open(prefix + "-meta.json", encoding="utf-8") as f:
            meta = json.load(f)
    return net, meta


# -- ONNX -----------------------------------------------------------------------------------
def require_onnx():
    """Import onnx, or raise :class:`ExportError` that says how to install it."""
    try:
        import onnx
    except ImportError:
        raise ExportError("ONNX export needs the onnx package, which is not installed: " + INSTALL_ONNX) from None
    if not onnx.__version__.startswith(ONNX_VERSION.rsplit(".", 1)[0] + "."):
        warnings.warn(
            "onnx %s is installed; MXNet 1.9.1's exporter is known to work with onnx==%s only. "
            "If the export fails: %s" % (onnx.__version__, ONNX_VERSION, INSTALL_ONNX)
        )
    return onnx


#: The newest opset MXNet 1.9.1's converters write nodes for (its mx2onnx has opset 12 and 13 translations).
MXNET_ONNX_OPSET = 13


def _tidy_onnx_graph(model, input_name, output_name):
    """Name the input and output, keep weights out of the graph inputs, and declare the opset written.

    MXNet's exporter lists every weight as a graph input too (onnxruntime then warns per weight and
    skips constant folding), and declares the installed onnx's newest opset for nodes that follow
    opset 13 (ONNX Runtime's INT8 rewrite of a quantized ``Slice`` failed on that).
    """
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = min(entry.version, MXNET_ONNX_OPSET)
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in initializers]
    del graph.input[:]
    graph.input.extend(real_inputs)
    renames = {}
    if len(real_inputs) == 1 and real_inputs[0].name != input_name:
        renames[real_inputs[0].name] = input_name
        real_inputs[0].name = input_name
    if len(graph.output) == 1 and graph.output[0].name != output_name:
        renames[graph.output[0].name] = output_name
        graph.output[0].name = output_name
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    return model


def _channel_affine_at(tensor, consts, consumers):
    """The ``(scale, shift, output)`` of the :class:`~gluon_inception.ChannelAffine` reading ``tensor``, or None.

    MXNet writes it per channel ``c`` as a Slice ``[c, c + 1)`` on axis 1, a Mul and an Add by scalars,
    then a Concat of the channels in order, each read by nothing else (the fold removes them all).
    """
    slices = consumers.get(tensor, [])
    if not slices or len(slices) != len({id(n) for n in slices}):
        return None
    scale, shift, planes = {}, {}, {}
    for node in slices:
        bounds = [consts.get(n) for n in node.input[1:4]] if node.op_type == "Slice" and len(node.input) >= 4 else []
        if len(bounds) != 3 or any(v is None or v.size != 1 for v in bounds) or int(bounds[2]) != 1 \
                or int(bounds[1]) != int(bounds[0]) + 1:  # fmt: skip
            return None
        out, factors = node.output[0], []
        for op in ("Mul", "Add"):
            nxt = consumers.get(out, [])
            values = [consts.get(n) for n in nxt[0].input if n != out] if len(nxt) == 1 and nxt[0].op_type == op else []
            if len(values) != 1 or values[0] is None or values[0].size != 1:
                return None
            factors.append(float(values[0].reshape(-1)[0]))
            out = nxt[0].output[0]
        channel = int(bounds[0])
        scale[channel], shift[channel], planes[channel] = factors[0], factors[1], out
    order = range(len(planes))
    concat = consumers.get(planes.get(0), [])
    if len(concat) != 1 or concat[0].op_type != "Concat" or list(concat[0].input) != [planes.get(c) for c in order] \
            or any(consumers[planes[c]] != concat for c in order):  # fmt: skip
        return None
    return np.array([scale[c] for c in order]), np.array([shift[c] for c in order]), concat[0].output[0]


def _fold_input_scaling(model):
    """Fold the :class:`~gluon_inception.ChannelAffine` layers in front of the first convolution into it.

    Input scaling (topology ``"torchvision"``) and baked-in preprocessing are per-channel
    ``y = x * s + t``, which is ``s * (x - v)`` with ``v = -t / s``. A convolution over ``y``
    zero-padded equals the convolution, with each input channel's weights multiplied by ``s``, over
    ``x - v`` zero-padded, border included (putting ``t`` into the bias instead would pad with the
    wrong value). So the chain of affines (whose Slices OpenVINO ran as a slow reference split) becomes
    one Sub by a ``(1, C, 1, 1)`` constant in front of the convolution. Other graphs are left as written.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    source = tensor = graph.input[0].name
    scale, shift = None, None
    while True:
        found = _channel_affine_at(tensor, consts, consumers)
        if found is None:
            break
        s, t, tensor = found
        scale, shift = (s, t) if scale is None else (scale * s, shift * s + t)
    convs = consumers.get(tensor, [])
    weight = consts.get(convs[0].input[1]) if len(convs) == 1 and convs[0].op_type == "Conv" else None
    groups = [a.i for a in convs[0].attribute if a.name == "group"] if convs else []
    if scale is None or weight is None or groups not in ([], [1]) or weight.shape[1] != len(scale) \
            or not np.all(scale != 0):  # fmt: skip
        return model
    conv, channels = convs[0], len(scale)
    folded = (weight * scale.reshape(1, channels, 1, 1)).astype(weight.dtype)
    offset = (-shift / scale).reshape(1, channels, 1, 1).astype(np.float32)
    names = (conv.input[1] + "_scaled", "gluon_inception_input_offset", "gluon_inception_input_shifted")
    graph.initializer.extend([numpy_helper.from_array(folded, names[0]), numpy_helper.from_array(offset, names[1])])
    conv.input[0], conv.input[1] = names[2], names[0]
    dropped = set()
    reached = [source]  # the affine nodes: everything between the input and the convolution
    while reached:
        for node in consumers.get(reached.pop(), []):
            if node is not conv and id(node) not in dropped:
                dropped.add(id(node))
                reached.extend(node.output)
    kept = [node for node in graph.node if id(node) not in dropped]
    del graph.node[:]
    graph.node.extend([helper.make_node("Sub", [source, names[1]], [names[2]], name="gluon_inception_input_shift")])
    graph.node.extend(kept)
    used = {n for node in graph.node for n in node.input}
    kept_consts = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept_consts)
    return model


def export_onnx(
    net,
    path,
    preprocessing=None,
    classes=None,
    input_shape=None,
    dynamic_batch=True,
    metadata=None,
    check=True,
    atol=1e-4,
    check_batch=None,
):
    """Write ``net`` as an ONNX file and check it in onnxruntime.

    The file is the network as inference runs it: BatchNorm folded into the convolutions, and a
    per-channel input scaling (topology ``"torchvision"``, baked-in preprocessing) folded into the
    first convolution, with one subtraction left in front of it.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        A float32 GoogLeNet or :class:`WithPreprocessing` (INT8 graphs do not export to ONNX).
    path : str
        The ``.onnx`` file, written atomically.
    preprocessing : Preprocessing, optional
        Recorded in the file's metadata (and gives the input size).
    classes : list of str, optional
        Recorded in the file's metadata.
    input_shape : tuple, optional
        ``(N, 3, H, W)``; defaults to ``(1, 3, crop, crop)``.
    dynamic_batch : bool, default True
        Leave the batch axis free.
    metadata : dict, optional
        More metadata (string values after JSON encoding).
    check : bool, default True
        Run the file in onnxruntime and compare with MXNet's logits. Skipped with a warning
        when onnxruntime is not installed.
    atol : float, default 1e-4
        The largest absolute difference the check accepts.
    check_batch : numpy.ndarray, optional
        Input for the check; random images in the input's value range by default.

    Returns
    -------
    dict
        ``{"path": path, "max_abs_diff": float or None}``.

    Raises
    ------
    ExportError
        When onnx is missing, the graph does not convert, or onnxruntime's output differs from
        MXNet's by more than ``atol``.

    Examples
    --------
    >>> import os, tempfile
    >>> from gluon_inception import googlenet
    >>> from gluon_inception.deploy.export import export_onnx
    >>> from gluon_inception.preprocessing import Preprocessing
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.onnx")
    >>> result = export_onnx(googlenet(classes=3), path, preprocessing=Preprocessing(crop_size=64))
    >>> result["max_abs_diff"] < 1e-4
    True
    """
    onnx = require_onnx()
    if _is_quantized(net):
        raise ExportError(
            "INT8 (quantized) networks use MXNet's oneDNN operators, which the ONNX exporter cannot "
            "convert: export INT8 with --format mxnet, or export float32 to ONNX and quantize there."
        )
    path = os.fspath(path)
    shape = _input_shape(net, preprocessing, input_shape)
    trace_graph(net, shape)
    meta = _meta(net, preprocessing, classes, metadata, fmt="onnx")
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "net")
        symbol, params = _write_mxnet_files(net, prefix)
        _fold_batchnorm_files(symbol, params)
        onnx_tmp = os.path.join(tmp, "net.onnx")
        dynamic_shape = [(None,) + shape[1:]] if dynamic_batch else None
        try:
            with _quiet_exporter():
                mx.onnx.export_model(
                    symbol,
                    params,
                    in_shapes=[shape],
                    in_types=[np.float32],
                    onnx_file_path=onnx_tmp,
                    dynamic=bool(dynamic_batch),
                    dynamic_input_shapes=dynamic_shape,
                )
        except Exception as err:
            raise ExportError(
                "mx.onnx.export_model failed (%s: %s). onnx %s is installed; MXNet 1.9.1 needs onnx==%s."
                % (type(err).__name__, err, onnx.__version__, ONNX_VERSION)
            ) from err
        model = _fold_input_scaling(_tidy_onnx_graph(onnx.load(onnx_tmp), "data", "logits"))
        for key, value in meta.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
        onnx.checker.check_model(model)
        with atomic_path(path) as tmp_out:
            onnx.save(model, tmp_out)
    result = {"path": path, "max_abs_diff": None}
    if check:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            warnings.warn("onnxruntime is not installed, so the ONNX file was not checked: " + INSTALL_ONNX)
            return result
        if check_batch is None:
            check_batch = _sample_batch(net, shape, batch=2 if dynamic_batch else shape[0])
        diff = check_onnx(path, net, check_batch)
        result["max_abs_diff"] = diff
        if not diff <= atol:
            raise ExportError(
                "onnxruntime's output differs from MXNet's by %.3g (more than %.1g): the ONNX file %s "
                "does not reproduce the network" % (diff, atol, path)
            )
    return result


def _fold_batchnorm_files(symbol, params):
    """Fold the BatchNorms of an exported float32 graph into its convolutions, in place (an INT8 quantizer
    would quantize the unfolded weights and leave a per-channel multiply behind each convolution)."""
    saved = mx.nd.load(params)
    args = {k[4:]: v for k, v in saved.items() if k.startswith("arg:")}
    auxs = {k[4:]: v for k, v in saved.items() if k.startswith("aux:")}
    sym, args, auxs = fold_batchnorm(mx.sym.load(symbol), args, auxs)
    sym.save(symbol)
    mx.nd.save(params, {**{"arg:" + k: v for k, v in args.items()}, **{"aux:" + k: v for k, v in auxs.items()}})


@contextlib.contextmanager
def _quiet_exporter():
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _sample_batch(net, shape, batch):
    rng = np.random.RandomState(0)
    size = (batch,) + tuple(shape[1:])
    if isinstance(net, WithPreprocessing):
        return rng.uniform(0, 255, size).astype(np.float32)
    return rng.normal(0, 1, size).astype(np.float32)


def run_onnx(path, batch):
    """Run an ONNX file on one numpy batch in onnxruntime (CPU); returns the first output."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.asarray(batch, dtype=np.float32)})[0]


def check_onnx(path, net, batch):
    """Largest absolute difference between onnxruntime's and MXNet's outputs on ``batch``.

    Parameters
    ----------
    path : str
        ONNX file.
    net : mxnet.gluon.Block
        The network it was exported from.
    batch : numpy.ndarray
        NCHW float32 input.

    Returns
    -------
    float
    """
    expected = net(mx.nd.array(batch, ctx=params_context(net))).asnumpy()
    got = run_onnx(path, batch)
    if got.shape != expected.shape:
        raise ExportError("onnxruntime returned shape %s, MXNet %s" % (got.shape, expected.shape))
    return float(np.abs(got - expected).max())


def _is_quantized(net):
    graph = getattr(net, "_cached_graph", None)
    return bool(graph) and graph[1] is not None and "quantize" in graph[1].tojson()


__all__ = [
    "ExportError",
    "WithPreprocessing",
    "bake_preprocessing",
    "check_onnx",
    "export_mxnet",
    "export_onnx",
    "load_mxnet",
    "require_onnx",
    "run_onnx",
]
