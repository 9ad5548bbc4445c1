"""The data of a training run: a prepared dataset read through per-rank record iterators."""
from ..errors import UsageError
from ..preprocessing import Preprocessing
from .dataset import load_dataset
from .demo import default_demo_root, prepare_demo
from .pipeline import build_train_iter, build_val_iter


class DatasetSource:
    """A prepared dataset as a training run reads it: every split sharded evenly over the ranks.

    A stand-in with the same attributes and methods (``num_classes``, ``classes``, ``preprocessing``,
    ``describe()``, ``train_iter(epoch)``, ``eval_iter(split)``, ``has_split(name)``) can be
    passed to :meth:`gluon_inception.training.engine.Training.open_data` instead, e.g. in-memory data;
    one whose training batches are uint8 also needs ``device_augment``, the block the training
    step applies to them.

    Training batches are uint8 by default (``on_device``): the training step casts, jitters and
    normalises them on its device with :attr:`device_augment`. Evaluation batches stay float32,
    normalised by the iterator, so that every consumer of :func:`build_val_iter` reads them as is.

    Parameters
    ----------
    info : DatasetInfo
    batch_size : int
        Images per rank and step.
    image_size : int
        Side of the square crops the network sees.
    augment : {"inception", "chapter"}
        Training augmentation preset; ``"chapter"`` also leaves the std at 1 (mean subtraction only).
    mirror : bool
        Random horizontal flips while training.
    val_resize : int, optional
        Shorter side before the evaluation centre crop; default ``image_size / 0.875``.
    seed : int
        The order of epoch ``e`` depends only on ``(seed, e)``; so do its crops and flips when each
        rank decodes with one thread (see :func:`build_train_iter`), and the device-side jitter,
        drawn from ``mx.random`` which the training loop seeds per epoch and rank.
    num_threads : int, optional
        Decoding threads per rank.
    dist : gluon_inception.dist.Dist, optional
        The ranks that share the data; default one process.
    on_device : bool
        uint8 training batches, finished on the training device by :attr:`device_augment`
        (False: float32 batches finished by the iterator's threads).
    """

    def __init__(self, info, batch_size, image_size, augment="inception", mirror=True, val_resize=None, seed=0,
                 num_threads=None, dist=None, on_device=True):  # fmt: skip
        if info.num_classes < 2:
            raise UsageError(
                "%s has %d class (%s): a classifier needs at least two to learn anything; prepare a folder with "
                "one sub-folder per class, two or more" % (info.root, info.num_classes, ", ".join(info.classes))
            )
        self.info, self.batch_size, self.dist, self.num_threads = info, batch_size, dist, num_threads
        self.on_device = bool(on_device)
        self._device_augment = None
        self.augment, self.mirror, self.val_resize, self.seed = augment, mirror, val_resize, seed
        self.classes = list(info.classes)
        self.num_classes = info.num_classes
        self.data_shape = (3, image_size, image_size)
        self._eval_iters = {}
        self.mean = tuple(info.mean)
        self.std = (1.0, 1.0, 1.0) if augment == "chapter" else tuple(info.std)

    @classmethod
    def open(cls, root=None, demo=False, dist=None, **options):
        """The source of the prepared folder ``root``, or with ``demo`` of the demo dataset.

        The demo dataset is built first (in ``root``, default :func:`default_demo_root`) by each
        host's first rank while the other ranks wait. ``options`` are the constructor's.
        """
        if demo:
            root = root or default_demo_root()
            if dist is None or dist.local_rank == 0:
                prepare_demo(root)
            if dist is not None:
                dist.barrier("demo_ready")
        return cls(load_dataset(root), dist=dist, **options)

    @property
    def demo(self):
        """True for the embedded demo dataset."""
        return "demo" in self.info.meta

    def has_split(self, name):
        """True when the dataset has split ``name``."""
        return self.info.has_split(name)

    def train_iter(self, epoch):
        """A fresh training iterator whose order depends only on (seed, epoch)."""
        overrides = {} if self.mirror else {"rand_mirror": False}
        it = build_train_iter(self.info.split("train"), self.batch_size, data_shape=self.data_shape,
                              preset=self.augment, mean=self.mean, std=self.std, dist=self.dist,
                              seed=self.seed * 10007 + epoch, num_threads=self.num_threads, on_device=self.on_device,
                              **overrides)
        if it.device_augment is not None:
            # One block for the whole run (each epoch's iterator is configured the same way).
            if self._device_augment is None:
                self._device_augment = it.device_augment
                self._device_augment.hybridize(static_alloc=True, static_shape=True)
            it.device_augment = self._device_augment
        return it

    @property
    def device_augment(self):
        """The block that turns uint8 training batches into network input on their device.

        Set by the first :meth:`train_iter`; None with ``on_device=False`` (float batches).
        """
        return self._device_augment

    def eval_iter(self, split):
        """The (cached) evaluation iterator of ``split``, reset to its start."""
        if split not in self._eval_iters:
            self._eval_iters[split] = build_val_iter(self.info.split(split), self.batch_size,
                                                     preprocessing=self.preprocessing, dist=self.dist,
                                                     num_threads=self.num_threads)
        it = self._eval_iters[split]
        it.reset()
        return it

    @property
    def preprocessing(self):
        """How evaluation turns an image into input; checkpoints store it."""
        return Preprocessing(self.mean, self.std, self.data_shape[-1], self.val_resize)

    def describe(self):
        """What a checkpoint records about the data besides its :attr:`preprocessing`."""
        return {"root": self.info.root, "classes": self.classes, "num_classes": self.num_classes, "demo": self.demo}
