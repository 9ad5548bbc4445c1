"""Exported files in the runtimes people deploy with: OpenVINO IR, INT8 for each runtime, one loader for all
(:doc:`/tutorials/export_deploy`)."""
import json
import os
import shutil
import tempfile

from .._compat import mx, np
from ..errors import MissingInputError, UsageError
from ..fileio import atomic_path
from ..preprocessing import Preprocessing
from .export import ExportError, _input_shape, _meta, _sample_batch, export_onnx, load_mxnet
from .graph import params_context
from .predict import predict_images

#: Exported file formats and the runtimes that run them.
FORMATS = ("mxnet", "onnx", "openvino")
RUNTIMES = ("mxnet", "onnxruntime", "openvino")
RUNS = {"mxnet": ("mxnet",), "onnx": ("onnxruntime", "openvino"), "openvino": ("openvino",)}
KINDS = {"mxnet": "an MXNet export", "onnx": "an ONNX file", "openvino": "an OpenVINO IR"}

INSTALL = {
    "onnxruntime": "pip install 'gluon-inception[onnx]'",
    "openvino": "pip install 'gluon-inception[openvino]'",
    "nncf": "pip install 'gluon-inception[nncf]'",
}
#: Where the IR keeps our metadata: ``model.get_rt_info([RT_INFO, key])``.
RT_INFO = "gluon_inception"
#: Default lowest share of calibration images whose top-1 class INT8 keeps (see :func:`quantize_file`).
MIN_AGREEMENT = 0.9


class ModelFileError(UsageError):
    """An exported file that is missing, damaged, or does not fit the runtime, data or options given."""


def _require(package):
    try:
        return __import__(package)
    except ImportError:
        raise UsageError("%s is not installed: %s" % (package, INSTALL[package])) from None


def _first_line(err):
    """The line of a runtime's error that says what is wrong (OpenVINO's start with where they were raised)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    said = [line for line in lines if not line.startswith(("Exception from ", "Check '", "FrontEnd API failed"))]
    return ((said or lines or [type(err).__name__])[0]).rstrip(".!")[:300]


def _json_or_text(value):
    try:
        return json.loads(value)
    except ValueError:
        return value


# -- writing --------------------------------------------------------------------------------
def _place(written, path):
    """Copy the file ``written`` to ``path`` atomically; for an IR its ``.bin`` first, so that a reader never
    finds a new ``.xml`` without its ``.bin``."""
    ir = [(written[: -len(".xml")] + ".bin", path[: -len(".xml")] + ".bin")] if path.endswith(".xml") else []
    for source, target in ir + [(written, path)]:
        with atomic_path(target) as out:
            shutil.copyfile(source, out)


def _check_suffix(path, fmt):
    want = {"onnx": ".onnx", "openvino": ".xml"}[fmt]
    if not os.fspath(path).endswith(want):
        raise UsageError("%s: a %s file's name ends with %s (e.g. %s)" % (path, fmt, want,
                                                                       os.path.splitext(path)[0] + want))


def export_openvino(net, path, preprocessing=None, classes=None, input_shape=None, metadata=None, check=True,
                    atol=1e-4):
    """Write ``net`` as OpenVINO IR: ``path`` (``.xml``) and the ``.bin`` beside it, checked against MXNet.

    The network goes through our ONNX export (:func:`~gluon_inception.deploy.export.export_onnx`) and
    OpenVINO's ONNX reader; the weights stay float32 in the ``.bin`` (OpenVINO picks bf16 at run time
    where the CPU has it, see :func:`load_model_file`).

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        A float32 GoogLeNet or :class:`~gluon_inception.deploy.export.WithPreprocessing`.
    path : str
        The ``.xml`` file.
    preprocessing, classes, input_shape, metadata
        As for :func:`~gluon_inception.deploy.export.export_onnx`; kept in the IR's ``rt_info``.
    check : bool, default True
        Run the IR in OpenVINO (float32) on random images and compare with MXNet's logits.
    atol : float, default 1e-4

    Returns
    -------
    dict
        ``{"path": xml, "bin": bin, "max_abs_diff": float or None}``.

    Examples
    --------
    >>> import os, tempfile
    >>> from gluon_inception import googlenet
    >>> from gluon_inception.preprocessing import Preprocessing
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.xml")
    >>> export_openvino(googlenet(classes=3), path, Preprocessing(crop_size=64))["max_abs_diff"] < 1e-4
    True
    """
    path = os.fspath(path)
    _check_suffix(path, "openvino")
    ov = _require("openvino")
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = os.path.join(tmp, "net.onnx")
        export_onnx(net, onnx_path, preprocessing, classes, input_shape, metadata=metadata, check=False)
        model = ov.convert_model(onnx_path)
        for key, value in _meta(net, preprocessing, classes, metadata, fmt="openvino").items():
            model.set_rt_info(json.dumps(value), [RT_INFO, key])
        ov.save_model(model, os.path.join(tmp, "model.xml"), compress_to_fp16=False)
        _place(os.path.join(tmp, "model.xml"), path)
    result = {"path": path, "bin": path[: -len(".xml")] + ".bin", "max_abs_diff": None}
    if check:
        batch = _sample_batch(net, _input_shape(net, preprocessing, input_shape), batch=2)
        expected = net(mx.nd.array(batch, ctx=params_context(net))).asnumpy()
        got = load_model_file(path, "openvino", precision="float32").run(batch)
        diff = float(np.abs(got - expected).max())
        result["max_abs_diff"] = diff
        if not diff <= atol:
            raise ExportError("OpenVINO's output differs from MXNet's by %.3g (more than %.1g): the IR %s does not "
                              "reproduce the network" % (diff, atol, path))
    return result


def quantize_file(source, path, calib_batches, min_agreement=MIN_AGREEMENT, subset_size=None):
    """INT8 copy of a float32 ONNX or OpenVINO file, calibrated on ``calib_batches`` with each runtime's best quantizer.

    An OpenVINO IR gets NNCF's, an ONNX file ONNX Runtime's own ``quantize_static`` (QDQ, weights per
    output channel); :doc:`/tutorials/export_deploy` says why.

    Parameters
    ----------
    source : str
        A float32 ``.onnx`` or ``.xml`` file written by this package.
    path : str
        The INT8 file to write, of the same format.
    calib_batches : list of numpy.ndarray
        NCHW float32 batches, in the file's input values (normalised, or 0-255 pixels when the
        preprocessing is baked in).
    min_agreement : float, default 0.9
        The lowest share of calibration images whose top-1 class the INT8 file must keep; below it
        the calibration failed (too few images, ranges dominated by outliers) and nothing is written.
    subset_size : int, optional
        Calibration batches to use; default all of ``calib_batches``.

    Returns
    -------
    dict
        ``{"path", "quantized_layers", "agreement", "images", "quantizer"}``.

    Raises
    ------
    ExportError
        The quantizer failed, quantized nothing, or the INT8 answers differ from float32 beyond
        ``min_agreement``.
    """
    source, path = os.fspath(source), os.fspath(path)
    fmt = "openvino" if source.endswith(".xml") else "onnx"
    runtime = "openvino" if fmt == "openvino" else "onnxruntime"
    _check_suffix(path, fmt)
    batches = [np.ascontiguousarray(b, dtype=np.float32) for b in calib_batches][: subset_size or None]
    if not batches:
        raise ExportError("INT8 calibration needs images: the calibration data gave none")
    quantize, quantizer = (_nncf_openvino, "NNCF") if fmt == "openvino" else (_ort_static, "ONNX Runtime")
    float_model = load_model_file(source, runtime, precision="float32")
    with tempfile.TemporaryDirectory(prefix="gluon-inception-int8-") as tmp:
        tmp_path = os.path.join(tmp, "model" + os.path.splitext(path)[1])
        try:
            layers = quantize(source, tmp_path, batches, tmp)
        except UsageError:
            raise
        except Exception as err:  # the quantizers' own errors have no common base class
            raise ExportError("%s could not quantize %s: %s" % (quantizer, source, _first_line(err))) from err
        if layers == 0:
            raise ExportError("%s quantized no layer of %s: the INT8 file would be the float32 one"
                              % (quantizer, source))
        int8 = load_model_file(tmp_path, runtime, precision="float32")
        same = sum(int((int8.run(b).argmax(1) == float_model.run(b).argmax(1)).sum()) for b in batches)
        images = sum(len(b) for b in batches)
        if same < min_agreement * images:
            raise ExportError(
                "INT8 calibration failed: the INT8 model keeps the top-1 class of only %d of %d calibration images "
                "(%.0f%%, below %.0f%%); calibrate on more images (--calib-batches) or ship float32"
                % (same, images, 100.0 * same / images, 100 * min_agreement))
        _place(tmp_path, path)
    return {"path": path, "quantized_layers": int(layers), "agreement": same / images, "images": images,
            "quantizer": quantizer}  # fmt: skip


def _nncf_openvino(source, out, batches, tmp):
    """NNCF's INT8 of the IR ``source`` written to ``out``; returns the number of FakeQuantize layers."""
    nncf, ov = _require("nncf"), _require("openvino")
    quantized = nncf.quantize(ov.Core().read_model(source), nncf.Dataset(batches), subset_size=len(batches))
    quantized.set_rt_info(json.dumps("int8"), [RT_INFO, "precision"])
    ov.save_model(quantized, out, compress_to_fp16=False)
    return sum(op.get_type_name() == "FakeQuantize" for op in quantized.get_ops())


def _ort_static(source, out, batches, tmp):
    """ONNX Runtime's static QDQ INT8 of ``source`` written to ``out``, metadata kept; returns its QuantizeLinears."""
    _require("onnxruntime")
    try:
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as err:  # its quantizer needs ml_dtypes, which the runtime alone does not
        raise UsageError("ONNX Runtime's quantizer cannot be imported (%s): %s" % (err, INSTALL["onnxruntime"])) \
            from None  # fmt: skip
    import onnx

    float_model = onnx.load(source)
    name = float_model.graph.input[0].name

    class Batches(CalibrationDataReader):
        def __init__(self):
            self._left = iter(batches)

        def get_next(self):
            batch = next(self._left, None)
            return None if batch is None else {name: batch}

    prepared = os.path.join(tmp, "prepared.onnx")
    quant_pre_process(source, prepared, skip_symbolic_shape=True)
    quantize_static(prepared, out, Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)  # fmt: skip
    quantized = onnx.load(out)
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(float_model.metadata_props)
    _set_onnx_meta(quantized, "precision", "int8")
    onnx.save(quantized, out)
    return sum(node.op_type == "QuantizeLinear" for node in quantized.graph.node)


def _set_onnx_meta(model, key, value):
    for entry in model.metadata_props:
        if entry.key == key:
            entry.value = json.dumps(value)
            return
    entry = model.metadata_props.add()
    entry.key, entry.value = key, json.dumps(value)


# -- reading --------------------------------------------------------------------------------
def file_format(path):
    """``"mxnet"``, ``"onnx"`` or ``"openvino"`` from an exported file's name (MXNet: its prefix or files)."""
    path = os.fspath(path)
    if path.endswith((".xml", ".bin")):
        return "openvino"
    if path.endswith(".onnx"):
        return "onnx"
    return "mxnet"


def _mxnet_prefix(path):
    for suffix in ("-symbol.json", "-0000.params", "-meta.json"):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


def choose_runtime(path, runtime=None):
    """The runtime for ``path``: ``runtime`` when it can run the file, else the one the file's format implies.

    An ``.onnx`` file runs in ONNX Runtime and in OpenVINO, so it needs ``runtime``.
    """
    fmt = file_format(path)
    choices = RUNS[fmt]
    if runtime is None:
        if len(choices) > 1:
            raise UsageError("%s runs in %s: choose one with --runtime" % (path, " or ".join(choices)))
        return choices[0]
    if runtime not in RUNTIMES:
        raise UsageError("unknown runtime %r: choose one of %s" % (runtime, ", ".join(RUNTIMES)))
    if runtime not in choices:
        raise UsageError("--runtime %s cannot run %s (%s): use %s" % (runtime, path, KINDS[fmt], " or ".join(choices)))
    return runtime


class ExportedModel:
    """An exported file loaded in a runtime: a callable network with its class names and preprocessing.

    Call it like a network: NCHW float32 images normalised with :attr:`preprocessing` (an NDArray
    gives an NDArray of logits, a numpy array a numpy array). When the preprocessing is baked into
    the file, the normalisation is undone first, so every file takes the same input.
    :meth:`run` feeds the file's own input (0-255 pixels when baked).

    Attributes
    ----------
    path, runtime, format : str
    precision : str
        ``"float32"`` or ``"int8"`` (the file's), or ``"bfloat16"`` (OpenVINO's inference precision).
    classes : list of str or None
    preprocessing : Preprocessing
    baked : bool
        The preprocessing's mean/std is inside the file.
    num_classes : int or None
        Width of the output, when the file states it.
    meta : dict
    """

    def __init__(self, path, runtime, run, meta, num_classes, precision):
        self.path, self.runtime, self.format = path, runtime, file_format(path)
        self.meta = meta
        self.classes = meta.get("classes")
        pre = meta.get("preprocessing")
        self.preprocessing = Preprocessing.from_dict(pre) if pre else Preprocessing()
        self.baked = bool(meta.get("preprocessing_baked"))
        self.num_classes = num_classes
        self.precision = precision
        self._run = run
        if self.classes is not None and num_classes is not None and len(self.classes) != num_classes:
            raise ModelFileError("%s has %d outputs but names %d classes: the file was altered after export; "
                                 "export it again" % (path, num_classes, len(self.classes)))

    def run(self, batch):
        """Logits (numpy float32) of a batch in the file's own input values."""
        return self._run(np.ascontiguousarray(batch, dtype=np.float32))

    def __call__(self, batch):
        nd = hasattr(batch, "asnumpy")
        x = batch.asnumpy() if nd else np.asarray(batch, dtype=np.float32)
        if self.baked:
            x = self.preprocessing.denormalize(x)
        logits = self.run(x)
        return mx.nd.array(logits, ctx=batch.context) if nd else logits

    def predict(self, paths, topk=5, batch_size=16):
        """Top-k class names and probabilities of image files and folders (see :func:`predict_images`)."""
        return predict_images(self, paths, self.preprocessing, self.classes, topk=topk, batch_size=batch_size)

    def __repr__(self):
        return "ExportedModel(%r, runtime=%r, precision=%r, classes=%s)" % (
            self.path, self.runtime, self.precision, self.num_classes)


def load_model_file(path, runtime=None, precision=None, threads=None, ctx=None):
    """Open an exported file in a runtime.

    Parameters
    ----------
    path : str
        An MXNet export prefix (or one of its files), an ``.onnx`` file or an OpenVINO ``.xml``.
    runtime : {"mxnet", "onnxruntime", "openvino"}, optional
        Default: the file's own (required for ``.onnx``: ONNX Runtime or OpenVINO).
    precision : {None, "float32", "bfloat16", "int8"}
        What to run. Default (None) and ``"float32"``/``"int8"``: the file as exported (``"int8"``
        requires an INT8 file). ``"bfloat16"``: OpenVINO's bf16 inference precision, on a CPU with
        AVX-512 BF16 or AMX. OpenVINO is told ``float32`` explicitly otherwise, so the numbers are
        those of the file, not of the CPU's default.
    threads : int, optional
        Threads of the runtime (default: its own choice).
    ctx : mxnet.Context, optional
        For ``runtime="mxnet"``.

    Returns
    -------
    ExportedModel

    Raises
    ------
    ModelFileError
        A missing or damaged file, a runtime that cannot run it, a precision the file or CPU lacks.

    Examples
    --------
    >>> model = load_model_file("demo.xml")  # doctest: +SKIP
    >>> model.predict(["digit.png"])[0][0].names[0]  # doctest: +SKIP
    '7'
    """
    path = os.fspath(path)
    runtime = choose_runtime(path, runtime)
    loader = {"mxnet": _load_mxnet, "onnxruntime": _load_onnxruntime, "openvino": _load_openvino}[runtime]
    try:
        run, meta, num_classes = loader(path, precision, threads, ctx)
    except (UsageError, ExportError):
        raise
    except Exception as err:  # each runtime raises its own types for a damaged file
        raise ModelFileError("%s cannot be loaded in %s: %s. Export it again" % (path, runtime, _first_line(err))) \
            from err
    file_precision = meta.get("precision") or "float32"
    if precision == "int8" and file_precision != "int8":
        raise ModelFileError("%s is a %s file: --precision int8 needs an INT8 export (gluon-inception export "
                             "--precision int8)" % (path, file_precision))
    if precision == "bfloat16" and file_precision == "int8":
        raise ModelFileError("%s is an INT8 file: run it as exported (no --precision, or int8)" % path)
    return ExportedModel(path, runtime, run, meta, num_classes, precision if precision == "bfloat16" else
                         file_precision)


def _exists(*paths):
    for p in paths:
        if not os.path.exists(p):
            raise MissingInputError("%s does not exist" % p)


def _refuse(precision, runtime, allowed):
    if precision not in (None,) + allowed:
        raise ModelFileError("--precision %s does not run in %s: it runs a file as exported%s" % (
            precision, runtime, "; bfloat16 runs in openvino" if precision == "bfloat16" else ""))


def _load_mxnet(path, precision, threads, ctx):
    _refuse(precision, "mxnet", ("float32", "int8"))
    prefix = _mxnet_prefix(path)
    net, meta = load_mxnet(prefix, ctx=ctx)
    ctx = ctx or mx.cpu()
    net.hybridize(static_alloc=True, static_shape=True)

    def run(x):
        return net(mx.nd.array(x, ctx=ctx)).asnumpy()

    width = None
    pre = meta.get("preprocessing")
    if pre:
        size = Preprocessing.from_dict(pre).crop_size
        _, outputs, _ = mx.sym.load(prefix + "-symbol.json").infer_shape(data=(1, 3, size, size))
        width = int(outputs[0][-1])
    return run, meta, width


def _load_onnxruntime(path, precision, threads, ctx):
    _refuse(precision, "onnxruntime", ("float32", "int8"))
    _exists(path)
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = int(threads)
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    meta = {key: _json_or_text(value) for key, value in session.get_modelmeta().custom_metadata_map.items()}
    width = session.get_outputs()[0].shape[-1]

    def run(x):
        return session.run(None, {name: x})[0]

    return run, meta, width if isinstance(width, int) else None


def _load_openvino(path, precision, threads, ctx):
    _refuse(precision, "openvino", ("float32", "bfloat16", "int8"))
    ov = _require("openvino")
    core = ov.Core()
    if path.endswith(".onnx"):  # ONNX's reader only (read_model tries every format's, and some print to stderr)
        _exists(path)
        reader = ov.frontend.FrontEndManager().load_by_framework("onnx")
        model = reader.convert(reader.load(path))
        section = "framework"  # where OpenVINO puts an ONNX file's metadata_props
    else:
        xml = path[: -len(".bin")] + ".xml" if path.endswith(".bin") else path
        _exists(xml, xml[: -len(".xml")] + ".bin")
        model = core.read_model(xml)
        section = RT_INFO
    info = model.get_rt_info()
    meta = {key: _json_or_text(value.astype(str)) for key, value in info[section].items()} if section in info else {}
    if precision == "bfloat16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        raise ModelFileError("--precision bfloat16: OpenVINO has no bfloat16 kernels for this CPU (%s; it needs "
                             "AVX-512 BF16 or AMX): use float32" % core.get_property("CPU", "FULL_DEVICE_NAME"))
    config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bfloat16" else "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    compiled = core.compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    width = model.outputs[0].partial_shape[-1]

    def run(x):
        return request.infer({0: x})[0].copy()

    return run, meta, width.get_length() if width.is_static else None


__all__ = [
    "ExportedModel",
    "FORMATS",
    "ModelFileError",
    "RUNTIMES",
    "choose_runtime",
    "export_openvino",
    "file_format",
    "load_model_file",
    "quantize_file",
]
