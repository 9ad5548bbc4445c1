"""Parameter-name translation between other projects' GoogLeNets and ours.

Our parameter names are structural (``features.inception4a.branch2.1.conv.weight``); a
translation maps each of our names to the name the other project saved the same tensor
under. Shapes are checked, so a topology mismatch is reported instead of loaded.
"""
import json
import os
import re
import zipfile

from .._compat import mx
from ..errors import MissingInputError, UsageError
from ..fileio import atomic_open, atomic_path, file_digest
from ..models.googlenet import GoogLeNet, describe_model
from .store import CorruptWeightsError
from .torch_pth import TorchFileError, UnsafePickleError, load_state_dict


def _gluoncv_name(ours):
    """GluonCV name of one of our parameter names, or None for a name GluonCV does not have."""
    index = {"conv": 0, "bn": 1}
    if m := re.fullmatch(r"features\.(conv[123])\.(conv|bn)\.(\w+)", ours):
        stem, layer, leaf = m.groups()
        return "%s.%d.%s" % (stem, index[layer], leaf)
    if m := re.fullmatch(r"features\.(inception\w+)\.branch([1-4])(?:\.(\d))?\.(conv|bn)\.(\w+)", ours):
        block, branch, step, layer, leaf = m.groups()
        # step: branch4.1 is the conv after the pool, as in GluonCV
        return "%s.%d.%d.%d.%s" % (block, int(branch) - 1, int(step or 0), index[layer], leaf)
    if m := re.fullmatch(r"output\.1\.(weight|bias)", ours):
        return "output." + m.group(1)
    if m := re.fullmatch(r"(aux[12])\.conv\.(conv|bn)\.(\w+)", ours):
        head, layer, leaf = m.groups()
        return "%s.1.%d.%s" % (head, index[layer], leaf)
    if m := re.fullmatch(r"(aux[12])\.fc([12])\.(weight|bias)", ours):
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
        raise UsageError(
            "GluonCV's googlenet has 3x3 third branches: build the network with "
            "topology='gluoncv', not %r" % net.topology
        )
    allow_missing = tuple(allow_missing)
    out = {}
    for ours, param in net._collect_params_with_prefix().items():
        theirs = _gluoncv_name(ours)
        if theirs is None:
            raise UsageError("no GluonCV counterpart for our parameter %r" % ours)
        if theirs not in gluoncv_params:
            if ours.startswith(allow_missing):
                continue
            raise UsageError("GluonCV parameters lack %r (our %r): not a GluonCV googlenet file?" % (theirs, ours))
        value = gluoncv_params[theirs]
        if tuple(value.shape) != tuple(param.shape):
            raise UsageError(
                "shape mismatch for %r: GluonCV %r has %s, ours needs %s (wrong number of classes "
                "or topology?)" % (ours, theirs, tuple(value.shape), tuple(param.shape))
            )
        out[ours] = value.astype("float32", copy=False) if isinstance(value, mx.nd.NDArray) else value
    return out


# -- torchvision ----------------------------------------------------------------------------------
def _torchvision_name(ours):
    """torchvision name of one of our parameter names (their modules are named like ours)."""
    name = ours[len("features.") :] if ours.startswith("features.") else ours
    if name.startswith("output.1."):
        name = "fc." + name[len("output.1.") :]
    head, _, leaf = name.rpartition(".")
    return head + "." + {"gamma": "weight", "beta": "bias"}.get(leaf, leaf)


def from_torchvision(net, state_dict):
    """Translate a torchvision googlenet ``state_dict`` into ours for ``net``.

    torchvision's auxiliary heads pool to a fixed 4x4 grid where ours (and the paper's) use a
    5x5/3 average pool, so their weights would not compute the same function: they are never
    taken (torchvision also documents its ImageNet aux heads as untrained). Our aux parameters,
    if ``net`` has any, are left out of the result.

    Parameters
    ----------
    net : GoogLeNet
        A network with 3x3 third branches (``topology="torchvision"`` for torchvision's
        ImageNet weights, which expect its ``transform_input``).
    state_dict : dict of str to array
        What :func:`gluon_inception.weights.torch_pth.load_state_dict` returns for a file written with
        ``torch.save(model.state_dict(), path)``.

    Returns
    -------
    dict of str to NDArray
        Our structural names (aux heads excluded), float32.

    Raises
    ------
    ValueError
        When a tensor is missing or has a different shape, naming both names and shapes.
    """
    if getattr(net, "topology", "torchvision") == "paper":
        raise UsageError(
            "torchvision's googlenet has 3x3 third branches: build the network with "
            "topology='torchvision', not 'paper'"
        )
    out = {}
    for ours, param in net._collect_params_with_prefix().items():
        if ours.startswith(("aux1.", "aux2.")):
            continue
        theirs = _torchvision_name(ours)
        if theirs not in state_dict:
            raise UsageError(
                "torchvision state dict lacks %r (our %r): not a torchvision googlenet state_dict?" % (theirs, ours)
            )
        value = state_dict[theirs]
        if tuple(value.shape) != tuple(param.shape):
            raise UsageError(
                "shape mismatch for %r: torchvision %r has %s, ours needs %s (wrong number of classes?)"
                % (ours, theirs, tuple(value.shape), tuple(param.shape))
            )
        out[ours] = mx.nd.array(value, dtype="float32")
    return out


# -- files ----------------------------------------------------------------------------------------
#: Formats of weight files: GluonCV's ``save_parameters`` (optionally zipped as GluonCV publishes
#: it), torchvision's ``state_dict`` in a ``.pth``, and ours (``net.save_parameters``).
FORMATS = ("gluoncv", "torchvision", "gluon_inception")


def _corrupt(path, what, err=None):
    detail = " (%s)" % str(err).strip().splitlines()[-1] if err is not None and str(err).strip() else ""
    return CorruptWeightsError(
        "cannot read %s: %s%s. Delete it (cached files: `gluon-inception pretrained purge`) and fetch "
        "or convert it again." % (path, what, detail)
    )


def read_mxnet_params(path):
    """Load an MXNet ``.params`` file, or the one ``.params`` inside a zip as GluonCV publishes them.

    Raises
    ------
    CorruptWeightsError
        When the file is damaged, truncated or not an MXNet parameter file.
    """
    path = os.fspath(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                members = [n for n in zf.namelist() if n.endswith(".params")]
                if len(members) != 1:
                    raise _corrupt(path, "a zip, but it holds %d .params files, not 1" % len(members))
                params = mx.nd.load_frombuffer(zf.read(members[0]))
        else:
            params = mx.nd.load(path)
    except mx.base.MXNetError as err:
        raise _corrupt(path, "damaged, truncated or not an MXNet .params file", err) from None
    except zipfile.BadZipFile as err:
        raise _corrupt(path, "a damaged zip archive", err) from None
    if not isinstance(params, dict) or not params:
        raise _corrupt(path, "holds no named parameters (saved with save_checkpoint or a list?)")
    return params


def read_weights(path, source_format=None):
    """Read a weight file in any supported format, without converting names.

    Parameters
    ----------
    path : str
        A ``.params`` (ours or GluonCV's), a GluonCV ``.zip``, or a torchvision ``.pth``.
    source_format : {"gluoncv", "torchvision", "gluon_inception"}, optional
        Guessed from the content when not given.

    Returns
    -------
    tuple (str, dict)
        The format and the tensors under the names the file uses.

    Raises
    ------
    CorruptWeightsError
        When the file cannot be read, or its names are of no known GoogLeNet.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingInputError("no weight file at %s" % path)
    if source_format not in (None,) + FORMATS:
        raise UsageError("unknown weight format %r: choose one of %s" % (source_format, ", ".join(FORMATS)))
    if source_format == "torchvision" or (source_format is None and _looks_like_torch(path)):
        try:
            return "torchvision", load_state_dict(path)
        except UnsafePickleError:
            raise
        except TorchFileError as err:
            raise CorruptWeightsError("cannot read a torchvision state dict from %s" % err) from None
    params = read_mxnet_params(path)
    found = "gluon_inception" if any(k.startswith("features.") for k in params) else "gluoncv"
    if found == "gluoncv" and "conv1.0.weight" not in params:
        raise _corrupt(path, "its parameter names (%s, ...) are of no known GoogLeNet" % ", ".join(sorted(params)[:3]))
    if source_format is not None and source_format != found:
        raise _corrupt(path, "expected %s parameter names, found %s ones" % (source_format, found))
    return found, params


def _looks_like_torch(path):
    if path.lower().endswith((".pth", ".pt")):
        return True
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith("data.pkl") for n in zf.namelist())
    with open(path, "rb") as f:
        return f.read(2) == b"\x80\x02"  # a pickle: torch's legacy format


def weights_layout(source_format, params):
    """``(classes, third_kernel, has_aux)`` of a GoogLeNet weight dict in ``source_format``."""
    if source_format == "gluoncv":
        fc, branch3, aux = "output.weight", "inception3a.2.1.0.weight", "aux1.3.weight"
    elif source_format == "torchvision":
        fc, branch3, aux = "fc.weight", "inception3a.branch3.1.conv.weight", "aux1.fc1.weight"
    else:
        fc, branch3, aux = "output.1.weight", "features.inception3a.branch3.1.conv.weight", "aux1.fc1.weight"
    for key in (fc, branch3):
        if key not in params:
            raise UsageError("%s weights lack %r: not a GoogLeNet" % (source_format, key))
    return int(params[fc].shape[0]), int(params[branch3].shape[-1]), aux in params


def to_ours(net, source_format, params):
    """Our names for ``params`` read by :func:`read_weights`, checked against ``net``.

    Returns
    -------
    dict of str to NDArray
        Every parameter of ``net`` the source provides (torchvision's aux heads never do).
    """
    if source_format == "gluoncv":
        return from_gluoncv(net, params, allow_missing=("aux1.", "aux2."))
    if source_format == "torchvision":
        return from_torchvision(net, params)
    out = {}
    for ours, param in net._collect_params_with_prefix().items():
        if ours not in params:
            if ours.startswith(("aux1.", "aux2.")):
                continue
            raise UsageError("the weights lack %r" % ours)
        if tuple(params[ours].shape) != tuple(param.shape):
            raise UsageError(
                "shape mismatch for %r: the file has %s, the network needs %s"
                % (ours, tuple(params[ours].shape), tuple(param.shape))
            )
        out[ours] = params[ours]
    return out


def convert_file(src, out, source_format):
    """Convert a GluonCV or torchvision GoogLeNet weight file into our ``.params``.

    Writes ``out`` atomically, then a metadata file next to it (``out`` with ``.json`` for
    ``.params``) recording the topology the weights need, so that
    ``googlenet(pretrained=out)`` builds the right network.

    Parameters
    ----------
    src : str
        GluonCV ``.params`` or its published ``.zip``; torchvision ``.pth``.
    out : str
        Where to write our ``.params``.
    source_format : {"gluoncv", "torchvision"}

    Returns
    -------
    dict
        The metadata written: ``sha256`` of ``out``, ``model`` (name, topology, classes,
        aux_logits, dropout) and ``converted_from`` (format, file, sha256).

    Examples
    --------
    >>> from gluon_inception.weights.convert import convert_file
    >>> convert_file("googlenet-1378be20.pth", "googlenet-tv.params", "torchvision")  # doctest: +SKIP
    {'sha256': '...', 'model': {'name': 'googlenet', 'topology': 'torchvision', ...}, ...}
    """
    if source_format not in ("gluoncv", "torchvision"):
        raise UsageError("convert reads 'gluoncv' or 'torchvision' weights, not %r" % (source_format,))
    found, params = read_weights(src, source_format)
    classes, third_kernel, has_aux = weights_layout(found, params)
    if third_kernel != 3:
        raise UsageError("%s has %dx%d third branches: not a %s googlenet" % (src, third_kernel, third_kernel, found))
    net = GoogLeNet(classes=classes, topology=found, aux_logits=has_aux and found == "gluoncv")
    ours = to_ours(net, found, params)
    with atomic_path(out) as tmp:
        mx.nd.save(tmp, ours)
    meta = {
        "sha256": file_digest(out, "sha256"),
        "model": describe_model(net),
        "converted_from": {"format": found, "file": os.path.basename(os.fspath(src)), "sha256": file_digest(src)},
    }
    with atomic_open(metadata_path(out)) as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    return meta


def metadata_path(params_path):
    """The JSON file that describes a ``.params`` file: same name, ``.json`` instead of ``.params``."""
    params_path = os.fspath(params_path)
    stem = params_path[: -len(".params")] if params_path.endswith(".params") else params_path
    return stem + ".json"
