"""Knowledge distillation: a teacher network in inference mode and the loss that follows it.

The loss of one image, with student logits ``s``, teacher logits ``t``, targets ``y`` (labels, or
the smoothed/mixed rows), temperature ``T`` and weight ``w``::

    (1 - w) * CE(s, y) + w * T^2 * KL(softmax(t / T) || softmax(s / T))

GluonCV's distillation loss uses the cross-entropy against ``softmax(t / T)`` in place of the KL
divergence; the two differ by the teacher's entropy, which does not depend on the student, so the
gradients are the same; the KL form is 0 when the student matches the teacher. GluonCV's
``--hard-weight`` is ``1 - w`` here. ``T^2`` keeps the soft term's gradient on the scale of the
hard one as ``T`` grows (Hinton et al. 2015).
"""
import os

import numpy as np

from .._compat import mx
from ..checkpoint import CheckpointError
from ..errors import GluonInceptionError
from ..models.googlenet import GoogLeNet, describe_model
from ..preprocessing import Preprocessing
from ..zoo.registry import get_model
from ..zoo.sources import load_checkpoint_model, load_pretrained_model
from .config import ConfigError


def distillation_loss(student, teacher, hard, temperature, weight):
    """Per-image distillation loss (see the module docstring).

    Parameters
    ----------
    student, teacher : NDArray, shape (N, classes)
        Logits; no gradient flows into ``teacher``.
    hard : NDArray, shape (N,)
        The usual per-image loss of ``student`` against the targets.
    temperature, weight : float
        ``T`` and ``w``.

    Returns
    -------
    NDArray, shape (N,)

    Examples
    --------
    >>> from gluon_inception._compat import mx
    >>> s = mx.nd.array([[2.0, 0.0]])
    >>> float(distillation_loss(s, s, mx.nd.array([0.5]), temperature=4.0, weight=0.5).asscalar())
    0.25
    """
    t = float(temperature)
    log_p_teacher = mx.nd.log_softmax(teacher / t, axis=-1)
    log_p_student = mx.nd.log_softmax(student / t, axis=-1)
    kl = mx.nd.sum(mx.nd.exp(log_p_teacher) * (log_p_teacher - log_p_student), axis=-1)
    return (1.0 - weight) * hard + (weight * t * t) * kl


class Teacher:
    """A network that gives the logits to distil from: inference mode, no gradient, hybridized.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
    preprocessing : Preprocessing
        What the teacher expects; batches normalised with ``data_preprocessing`` are mapped to it
        by a per-channel affine (``scale * x + shift``) before the teacher sees them.
    data_preprocessing : Preprocessing
        How the training batches are normalised.
    ctx : mxnet.Context
    """

    def __init__(self, net, preprocessing, data_preprocessing, ctx):
        for param in net.collect_params().values():
            param.grad_req = "null"
        net.hybridize(static_alloc=True, static_shape=True)
        self.net = net
        scale = np.asarray(data_preprocessing.std) / np.asarray(preprocessing.std)
        shift = (np.asarray(data_preprocessing.mean) - np.asarray(preprocessing.mean)) / np.asarray(preprocessing.std)
        self.adapted = not (np.allclose(scale, 1.0) and np.allclose(shift, 0.0))
        self._scale = mx.nd.array(scale.reshape(1, 3, 1, 1), ctx=ctx)
        self._shift = mx.nd.array(shift.reshape(1, 3, 1, 1), ctx=ctx)

    def __call__(self, x):
        """The teacher's logits for a batch ``x`` normalised as the training data."""
        if self.adapted:
            x = mx.nd.broadcast_add(mx.nd.broadcast_mul(x, self._scale), self._shift)
        with mx.autograd.pause(train_mode=False):
            out = self.net(x)
        return out[0] if isinstance(out, (tuple, list)) else out


def load_teacher(source, classes, class_ids, image_size, ctx):
    """Load the teacher ``--teacher`` names and check that it fits the data (rank 0 calls this).

    Parameters
    ----------
    source : str
        A registered pretrained entry, or a checkpoint (``.params`` file or folder).
    classes : int
        The dataset's number of classes; the teacher must have as many.
    class_ids : list of str or None
        The dataset's class identifiers; when both sides know theirs they must be equal, in order.
    image_size : int
        The training crop; the teacher must accept it.
    ctx : mxnet.Context

    Returns
    -------
    net : GoogLeNet
    info : dict
        ``model`` (:func:`describe_model`, to build the same network on the other ranks),
        ``preprocessing`` (the teacher's, as a dict) and ``source`` (for logs).

    Raises
    ------
    ConfigError
        One line naming ``--teacher`` and what to do.
    """
    try:
        if os.path.exists(source) or os.sep in source or source.endswith((".params", ".json")):
            loaded = load_checkpoint_model(source, ctx=ctx)
        else:
            loaded = load_pretrained_model(source, ctx=ctx)
    except (GluonInceptionError, CheckpointError, ValueError, OSError, mx.base.MXNetError) as err:
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if not isinstance(err, GluonInceptionError):  # the package's own errors already say what to do
            text += " (give a pretrained entry name or a checkpoint of a run on this dataset)"
        raise ConfigError("--teacher %s: %s" % (source, text)) from None
    net = loaded.net
    if not isinstance(net, GoogLeNet):
        raise ConfigError("--teacher %s is a %s: only networks this package builds can teach" % (source, type(net)))
    if net.classes != classes:
        raise ConfigError(
            "--teacher %s has %d classes and the dataset %d: give a teacher trained on these classes"
            % (source, net.classes, classes)
        )
    ids = loaded.class_ids
    if ids is not None and class_ids is not None and list(ids) != list(class_ids):
        differ = next(i for i, (a, b) in enumerate(zip(ids, class_ids)) if a != b)
        raise ConfigError(
            "--teacher %s orders its classes differently from the dataset (class %d is %r there, %r here): "
            "give a teacher trained on this dataset's classes" % (source, differ, ids[differ], class_ids[differ])
        )
    try:
        net.check_input_size(image_size, aux=False)
    except ValueError as err:
        raise ConfigError("--teacher %s cannot run on --image-size %d crops: %s" % (source, image_size, err)) from None
    where = loaded.source
    kind = "checkpoint" if "checkpoint" in where else "pretrained"
    described = "%s %s" % (kind, where[kind])
    info = {"model": describe_model(net), "preprocessing": loaded.preprocessing.to_dict(), "source": described}
    return net, info


def build_like(info, ctx):
    """A network of the architecture ``info["model"]`` describes (random weights until broadcast)."""
    model = dict(info["model"])
    kwargs = {k: model[k] for k in ("classes", "topology", "aux_logits", "dropout") if k in model}
    return get_model(model["name"], ctx=ctx, **kwargs)


def teacher_preprocessing(info):
    """The teacher's :class:`Preprocessing` from :func:`load_teacher`'s ``info``."""
    return Preprocessing.from_dict(info["preprocessing"])
