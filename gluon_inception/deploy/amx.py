"""AMX rules for inference graphs: what oneDNN 2.4 gets wrong on AMX, refused, and what it runs slowly, padded.

The rules act only while :func:`gluon_inception.cpu.amx_in_use` says yes (``GLUON_INCEPTION_AMX=1``);
otherwise each function leaves the graph as it is. :doc:`/architecture` places them.
"""
import contextlib
import io
import json
import re

from .._compat import mx, np
from ..cpu import amx_1x1_broken, amx_channels, amx_in_use


def refuse_broken_input(sym, input_shape, what, error):
    """On AMX, raise ``error`` when ``sym`` (a plain float32 graph) has a 1x1 convolution that oneDNN 2.4
    corrupts memory in at ``input_shape``; the message starts with ``what`` and the shape, and ends
    with :func:`amx_breakage`'s ways out. Does nothing without AMX."""
    reason = amx_breakage(sym, input_shape) if amx_in_use() else None
    if reason:
        raise error("%s at input shape %s: %s" % (what, "x".join(map(str, input_shape)), reason))


def pad_for_amx(sym, args, auxs, input_shape):
    """On AMX, :func:`pad_channels` of the inference graph (its ``padded`` list dropped); unchanged without AMX."""
    if not amx_in_use():
        return sym, args, auxs
    return pad_channels(sym, args, auxs, input_shape)[:3]


class _CheckedBlock(mx.gluon.SymbolBlock):
    """A SymbolBlock that runs :func:`refuse_broken_input` on each new height and width before running it."""

    def __init__(self, outputs, inputs, plain, what, error):
        super().__init__(outputs, inputs)
        self._amx_check = (plain, what, error)
        self._amx_checked_sizes = set()

    def forward(self, x, *args):
        if isinstance(x, mx.nd.NDArray) and x.shape[2:] not in self._amx_checked_sizes:
            plain, what, error = self._amx_check
            refuse_broken_input(plain, x.shape, what, error)
            self._amx_checked_sizes.add(x.shape[2:])
        return super().forward(x, *args)


def checked_block(outputs, inputs, plain, what, error):
    """A ``SymbolBlock(outputs, inputs)`` that, on AMX, refuses input sizes at which oneDNN 2.4 would
    corrupt memory (see :func:`refuse_broken_input`; ``plain`` is the float32 graph of the same network,
    whose 1x1 convolutions a fused graph hides in subgraphs). Without AMX a plain ``SymbolBlock``."""
    if not amx_in_use():
        return mx.gluon.SymbolBlock(outputs, inputs)
    return _CheckedBlock(outputs, inputs, plain, what, error)


def amx_broken_convolutions(sym, input_shape):
    """``[(name, (height, width))]`` of the convolutions in ``sym`` that oneDNN 2.4 corrupts memory
    in when it runs them on AMX (:func:`~gluon_inception.cpu.amx_1x1_broken`), for an input
    named ``data`` of ``input_shape``.

    Examples
    --------
    >>> from gluon_inception import googlenet
    >>> sym = googlenet(classes=10, topology="gluoncv")(mx.sym.var("data"))
    >>> sorted({hw for _, hw in amx_broken_convolutions(sym, (1, 3, 96, 96))})
    [(6, 6)]
    >>> amx_broken_convolutions(sym, (1, 3, 224, 224))
    []
    """
    nodes = json.loads(sym.tojson())["nodes"]
    convs = [(node["name"], tuple(int(v) for v in re.findall(r"\d+", node.get("attrs", {}).get("kernel", ""))))
             for node in nodes if node["op"] == "Convolution"]  # fmt: skip
    convs = [(name, kernel) for name, kernel in convs if kernel == (1, 1)]
    if not convs:
        return []
    internals = sym.get_internals()
    outputs = mx.sym.Group([internals[name + "_output"] for name, _ in convs])
    _, shapes, _ = outputs.infer_shape(data=tuple(input_shape))
    return [(name, tuple(shape[2:])) for (name, kernel), shape in zip(convs, shapes)
            if amx_1x1_broken(kernel, *shape[2:])]  # fmt: skip


def _amx_safe_size(sym, input_shape, size):
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # MXNet prints the arguments of a failed infer_shape
            return not amx_broken_convolutions(sym, tuple(input_shape[:2]) + (size, size))
    except mx.base.MXNetError:  # too small for the network
        return False


def amx_breakage(sym, input_shape, size_word="an image size of"):
    """Why ``sym`` cannot run on AMX at ``input_shape`` (:func:`amx_broken_convolutions`) and the ways
    out, as the end of an error message; None when it can.

    For a square input the nearest square sizes without such convolutions are named (one each way,
    within 64 pixels), in the words of ``size_word`` (``"--image-size"``).

    Examples
    --------
    >>> from gluon_inception import googlenet
    >>> sym = googlenet(classes=10, topology="gluoncv")(mx.sym.var("data"))
    >>> print(amx_breakage(sym, (1, 3, 96, 96), "--image-size"))  # doctest: +NORMALIZE_WHITESPACE
    on this CPU's AMX tiles, the oneDNN 2.4 inside MXNet 1.9.1 corrupts memory in 1x1 convolutions
    with a 6x6 output (20 of them here); use --image-size 94 or 111, or run without AMX:
    DNNL_MAX_CPU_ISA=AVX512_CORE_BF16 in the environment
    """
    broken = amx_broken_convolutions(sym, input_shape)
    if not broken:
        return None
    areas = ", ".join(sorted({"%dx%d" % hw for _, hw in broken}))
    height, width = input_shape[-2:]
    way_out = "use another input size"
    if height == width:
        safe = [(s for s in candidates if _amx_safe_size(sym, input_shape, s))
                for candidates in (range(height - 1, max(height - 65, 0), -1), range(height + 1, height + 65))]
        sizes = [str(s) for s in (next(found, None) for found in safe) if s is not None]
        if sizes:
            way_out = "use %s %s" % (size_word, " or ".join(sizes))
    return ("on this CPU's AMX tiles, the oneDNN 2.4 inside MXNet 1.9.1 corrupts memory in 1x1 convolutions with a %s "
            "output (%d of them here); %s, or run without AMX: DNNL_MAX_CPU_ISA=AVX512_CORE_BF16 in the environment"
            % (areas, len(broken), way_out))


#: Operators that map each channel to the same channel (so zero-weighted padding channels can pass through).
_CHANNELWISE = {"Activation", "Pooling", "Dropout", "_copy", "identity", "relu", "BatchNorm"}

#: Values a BatchNorm gets for padding channels: gamma 1, beta 0, mean 0, variance 1 (zero stays zero).
_NEUTRAL = (1.0, 0.0, 0.0, 1.0)


def pad_channels(sym, args, auxs, input_shape, multiple=32, minimum=32):
    """Give every convolution that reads ``minimum`` or more channels a multiple of ``multiple``, by
    adding zero filters upstream and zero weights downstream (inference only).

    With AMX, the oneDNN inside MXNet 1.9.1 runs a bfloat16 or int8 convolution on the AMX tiles only
    when its input channels are a multiple of 32 (or fewer than 32); GoogLeNet's 112-, 144- and
    528-channel inputs fall back to AVX-512 kernels, up to 5x slower. For such a convolution, the
    convolution upstream that produces the channels (through BatchNorm, ReLU, pooling and
    concatenation) gets extra filters with zero weight and bias, a BatchNorm on the way gets
    neutral statistics for them, and every convolution that reads them gets zero weights for them.
    The padding channels are zero and meet only zero weights, so the network computes the same
    function. Padding that would reach anything but a convolution (the classifier, the output) is
    not done.

    Parameters
    ----------
    sym : mxnet.symbol.Symbol
        A float32 inference graph (as ``HybridBlock.export`` writes it, or after :func:`fold_batchnorm`).
    args, auxs : dict of str to NDArray
        Its parameters and auxiliary states (not changed).
    input_shape : tuple
        The input's shape, to infer channel counts.

    Returns
    -------
    tuple
        ``(sym, args, auxs, padded)``: ``padded`` lists ``(convolution name, input channels before,
        after)`` for every convolution whose input was padded (including those that already had a
        multiple but read a padded tensor).
    """
    graph = json.loads(sym.tojson())
    nodes = graph["nodes"]
    params = dict(args)
    params.update(auxs)
    heads = {src for src, _, _ in graph["heads"]}
    consumers = {}
    for i, node in enumerate(nodes):
        for j, (src, _, _) in enumerate(node["inputs"]):
            consumers.setdefault(src, []).append((i, j))
    names = [node["name"] for node in nodes]
    var_ids = {node["name"]: i for i, node in enumerate(nodes) if node["op"] == "null"}

    def channels():
        internals = mx.sym.load_json(json.dumps(graph)).get_internals()
        _, shapes, _ = internals.infer_shape(data=tuple(input_shape))
        by_name = dict(zip(internals.list_outputs(), shapes))
        outputs = [n if node["op"] == "null" else n + "_output" for n, node in zip(names, nodes)]
        return {i: by_name[o][1] for i, o in enumerate(outputs) if o in by_name and len(by_name[o]) > 1}

    def param_names(i):
        return [nodes[src]["name"] for src, _, _ in nodes[i]["inputs"][1:]]

    def conv(i):
        attrs = nodes[i].get("attrs", {})
        return nodes[i]["op"] == "Convolution" and int(attrs.get("num_group", "1")) == 1

    def channel_axis_ok(i):
        return nodes[i]["op"] != "BatchNorm" or nodes[i].get("attrs", {}).get("axis", "1") == "1"

    def plan(tensor, pos, edits, chans):
        """Record the convolutions and BatchNorms that ``tensor``'s new channels (at ``pos``) reach;
        False if they would reach anything else."""
        if tensor in heads:
            return False
        for c, j in consumers.get(tensor, []):
            op = nodes[c]["op"]
            if j == 0 and conv(c):
                edits.append(("conv", c, pos))
            elif j == 0 and op in _CHANNELWISE and channel_axis_ok(c):
                if op == "BatchNorm":
                    edits.append(("norm", c, pos))
                if not plan(c, pos, edits, chans):
                    return False
            elif op in ("Concat", "concat") and nodes[c].get("attrs", {}).get("dim", "1") == "1":
                offset = sum(chans[src] for src, _, _ in nodes[c]["inputs"][:j])
                if not plan(c, offset + pos, edits, chans):
                    return False
            else:
                return False
        return True

    def producer(t):
        if conv(t):
            return t
        if nodes[t]["op"] in _CHANNELWISE:
            return producer(nodes[t]["inputs"][0][0])
        if nodes[t]["op"] in ("Concat", "concat"):
            for src, _, _ in reversed(nodes[t]["inputs"]):
                found = producer(src)
                if found is not None:
                    return found
        return None

    def set_param(name, value):  # the value, and the variable's recorded shape when the JSON has one
        params[name] = mx.nd.array(value, dtype=value.dtype)
        attrs = nodes[var_ids[name]].get("attrs", {})
        if "__shape__" in attrs:
            attrs["__shape__"] = str(tuple(value.shape))

    padded, skipped = [], set()
    while True:
        chans = channels()
        reads = {i: chans[nodes[i]["inputs"][0][0]] for i in range(len(nodes)) if conv(i) and i not in skipped}
        wanting = [i for i, count in reads.items() if amx_channels(count, multiple, minimum) != count]
        if not wanting:
            break
        extra = amx_channels(reads[wanting[0]], multiple, minimum) - reads[wanting[0]]
        source = producer(nodes[wanting[0]]["inputs"][0][0])
        edits = []
        if source is None or not plan(source, chans[source], edits, chans):
            skipped.add(wanting[0])
            continue
        for name in param_names(source):  # weight (out, in, kh, kw), then the bias if any
            value = params[name].asnumpy()
            set_param(name, np.concatenate([value, np.zeros((extra,) + value.shape[1:], value.dtype)]))
        attrs = nodes[source]["attrs"]
        attrs["num_filter"] = str(int(attrs["num_filter"]) + extra)
        for kind, c, pos in edits:
            if kind == "conv":
                weight = param_names(c)[0]
                value = params[weight].asnumpy()
                set_param(weight, np.insert(value, [pos] * extra, 0.0, axis=1))
                padded.append((names[c], value.shape[1], value.shape[1] + extra))
            else:  # BatchNorm: gamma, beta, moving mean, moving variance
                for name, neutral in zip(param_names(c), _NEUTRAL):
                    value = params[name].asnumpy()
                    set_param(name, np.insert(value, [pos] * extra, neutral))
    graph.pop("node_row_ptr", None)
    out = mx.sym.load_json(json.dumps(graph))
    return out, {k: params[k] for k in args}, {k: params[k] for k in auxs}, padded
