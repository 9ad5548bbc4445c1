"""Hybridized graphs of Gluon blocks, as export, quantization and bfloat16 conversion need them."""
import json
import warnings

from .._compat import mx, np


def params_context(net):
    """The context of ``net``'s first initialised parameter (the CPU when there is none)."""
    for param in net.collect_params().values():
        try:
            return param.list_ctx()[0]
        except (RuntimeError, mx.gluon.parameter.DeferredInitializationError):
            continue
    return mx.cpu()


def trace_graph(net, input_shape):
    """Hybridize ``net`` if needed and run it once on zeros of ``input_shape``.

    Export, quantization and bfloat16 conversion read the graph that a hybridized block
    caches on its first call; this makes sure there is one.
    """
    if not getattr(net, "_active", False):
        net.hybridize()
    x = mx.nd.zeros(tuple(input_shape), ctx=params_context(net))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Cannot decide type")
        net(x).wait_to_read()
    if not net._cached_graph:
        raise RuntimeError("%s built no graph; only HybridBlocks can be exported or converted" % type(net).__name__)


def fold_batchnorm(sym, args, auxs):
    """Fold every BatchNorm that follows a Convolution into that convolution's weight and bias.

    Inference only: ``y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta`` becomes one
    convolution with weight ``w * s`` and bias ``beta + (b - mean) * s``, ``s = gamma / sqrt(var + eps)``,
    computed in float64 from the float32 parameters. oneDNN fuses BatchNorm itself, but in
    bfloat16 it folds into the already-rounded bfloat16 weights; folding here rounds once.

    Parameters
    ----------
    sym : mxnet.symbol.Symbol
        A float32 graph, as ``HybridBlock.export`` writes it.
    args, auxs : dict of str to NDArray
        Its parameters and auxiliary states (not changed).

    Returns
    -------
    tuple
        ``(sym, args, auxs)``: the graph without the folded BatchNorms and its parameters; a
        convolution that had no bias gets one, named ``<convolution>_folded_bias``.
    """
    graph = json.loads(sym.tojson())
    nodes = graph["nodes"]
    consumers = {}
    for node in nodes:
        for src, _, _ in node["inputs"]:
            consumers[src] = consumers.get(src, 0) + 1
    for src, _, _ in graph["heads"]:
        consumers[src] = consumers.get(src, 0) + 1
    args, auxs = dict(args), dict(auxs)
    folds = {}  # convolution id -> its BatchNorm id
    for i, node in enumerate(nodes):
        if node["op"] != "BatchNorm" or node.get("attrs", {}).get("axis", "1") != "1":
            continue
        src = node["inputs"][0][0]
        if nodes[src]["op"] == "Convolution" and consumers[src] == 1:
            folds[src] = i
    out, new_id = [], {}
    for i, node in enumerate(nodes):
        if i in folds.values():
            continue
        node = dict(node, inputs=[[new_id.get(s, s), k, v] for s, k, v in node["inputs"]])
        if i in folds:
            bn = nodes[folds[i]]
            gamma, beta, mean, var = (nodes[s]["name"] for s, _, _ in bn["inputs"][1:5])
            attrs = bn.get("attrs", {})
            eps = float(attrs.get("eps", 1e-3))
            weight = nodes[node["inputs"][1][0]]["name"]
            w = args[weight].asnumpy().astype(np.float64)
            g = np.ones(w.shape[0]) if attrs.get("fix_gamma", "True") == "True" else args[gamma].asnumpy()
            s = g.astype(np.float64) / np.sqrt(auxs[var].asnumpy().astype(np.float64) + eps)
            has_bias = node.get("attrs", {}).get("no_bias", "False") != "True"
            b = args[nodes[node["inputs"][2][0]]["name"]].asnumpy() if has_bias else 0.0
            bias = node["name"] + "_folded_bias" if not has_bias else nodes[node["inputs"][2][0]]["name"]
            args[weight] = mx.nd.array(w * s.reshape((-1,) + (1,) * (w.ndim - 1)), dtype="float32")
            args[bias] = mx.nd.array(args[beta].asnumpy() + (b - auxs[mean].asnumpy()) * s, dtype="float32")
            if not has_bias:
                out.append({"op": "null", "name": bias, "inputs": []})
                node["inputs"] = node["inputs"][:2] + [[len(out) - 1, 0, 0]]
                node["attrs"] = dict(node.get("attrs", {}), no_bias="False")
        new_id[i] = len(out)
        out.append(node)
        if i in folds:
            new_id[folds[i]] = new_id[i]
    graph["nodes"] = out
    graph["arg_nodes"] = [i for i, node in enumerate(out) if node["op"] == "null"]
    graph["heads"] = [[new_id[s], k, v] for s, k, v in graph["heads"]]
    graph.pop("node_row_ptr", None)
    folded = mx.sym.load_json(json.dumps(graph))
    used = set(folded.list_arguments()) | set(folded.list_auxiliary_states())
    return folded, {k: v for k, v in args.items() if k in used}, {k: v for k, v in auxs.items() if k in used}
