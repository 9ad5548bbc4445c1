"""Hybridized graphs of Gluon blocks, as export, quantization and bfloat16 conversion need them."""
import warnings

from .._compat import mx


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

