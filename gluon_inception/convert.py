"""Parameter-name translation between other projects' GoogLeNets and ours.

Our parameter names are structural (``features.inception4a.branch2.1.conv.weight``); a
translation maps each of our names to the name the other project saved the same tensor
under. Shapes are checked, so a topology mismatch is reported instead of loaded.
"""
import re

from ._compat import mx

_BN = ("gamma", "beta", "running_mean", "running_var")


def _gluoncv_name(ours):
    """GluonCV name of one of our parameter names, or None for a name GluonCV does not have."""
    m = re.fullmatch(r"features\.(conv[123])\.(conv|bn)\.(\w+)", ours)
    if m:
        stem, layer, leaf = m.groups()
        return "%s.%d.%s" % (stem, 0 if layer == "conv" else 1, leaf)
    m = re.fullmatch(r"features\.(inception\w+)\.branch([1-4])(?:\.(\d))?\.(conv|bn)\.(\w+)", ours)
    if m:
        block, branch, step, layer, leaf = m.groups()
        branch = int(branch) - 1
        step = 0 if step is None else int(step)  # branch4.1 is the conv after the pool, as in GluonCV
        return "%s.%d.%d.%d.%s" % (block, branch, step, 0 if layer == "conv" else 1, leaf)
    m = re.fullmatch(r"output\.1\.(weight|bias)", ours)
    if m:
        return "output." + m.group(1)
    m = re.fullmatch(r"(aux[12])\.conv\.(conv|bn)\.(\w+)", ours)
    if m:
        head, layer, leaf = m.groups()
        return "%s.1.%d.%s" % (head, 0 if layer == "conv" else 1, leaf)
    m = re.fullmatch(r"(aux[12])\.fc([12])\.(weight|bias)", ours)
    if m:
        head, fc, leaf = m.groups()
        return "%s.%d.%s" % (head, 3 if fc == "1" else 6, leaf)
    return None


def from_gluoncv(net, gluoncv_params, allow_missing=()):
    """Translate a GluonCV googlenet parameter dict into ours for ``net``.

    Parameters
    ----------
    net : GoogLeNet
        A network with ``topology="gluoncv"``; its parameter names and shapes drive the mapping.
    gluoncv_params : dict of str to NDArray
        What ``mx.nd.load`` returns for a file written by GluonCV's ``save_parameters``.
    allow_missing : iterable of str
        Prefixes of our names that may be absent from the source (e.g. ``("aux1.", "aux2.")``).

    Returns
    -------
    dict of str to NDArray
        Our structural names, ready for :func:`mxnet.nd.save` and ``load_parameters``.

    Raises
    ------
    ValueError
        When a tensor is missing or has a different shape, naming both names and shapes.
    """
    if getattr(net, "topology", "gluoncv") != "gluoncv":
        raise ValueError(
            "GluonCV's googlenet has 3x3 third branches: build the network with "
            "topology='gluoncv', not %r" % net.topology
        )
    allow_missing = tuple(allow_missing)
    out = {}
    for ours, param in net._collect_params_with_prefix().items():
        theirs = _gluoncv_name(ours)
        if theirs is None:
            raise ValueError("no GluonCV counterpart for our parameter %r" % ours)
        if theirs not in gluoncv_params:
            if ours.startswith(allow_missing):
                continue
            raise ValueError("GluonCV parameters lack %r (our %r): not a GluonCV googlenet file?" % (theirs, ours))
        value = gluoncv_params[theirs]
        if tuple(value.shape) != tuple(param.shape):
            raise ValueError(
                "shape mismatch for %r: GluonCV %r has %s, ours needs %s (wrong number of classes "
                "or topology?)" % (ours, theirs, tuple(value.shape), tuple(param.shape))
            )
        out[ours] = value.astype("float32", copy=False) if isinstance(value, mx.nd.NDArray) else value
    return out
