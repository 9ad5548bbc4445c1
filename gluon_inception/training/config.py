"""Training configuration: one dataclass that defaults, recipes and command-line flags fill in turn.

Precedence, lowest first: the defaults below, a recipe (``--recipe NAME`` or a JSON/YAML file;
``--demo`` implies the ``demo`` recipe unless another is named), then the flags given on the
command line. Every field is one flag: ``lr_steps`` is ``--lr-steps``, ``no_wd_bn_bias`` is
``--no-wd-bn-bias``.
"""

import argparse
import dataclasses
import json
import os
from typing import List, Optional

from ..deploy import PRECISIONS
from ..errors import UsageError

#: Learning rate per optimizer when neither a recipe nor ``--lr`` sets one (reference batch 256).
DEFAULT_LR = {"sgd": 0.1, "nag": 0.1, "adam": 0.001}

OPTIMIZERS = ("sgd", "nag", "adam")
LR_SCHEDULES = ("constant", "step", "cosine", "poly")
LR_SCALINGS = ("none", "linear", "sqrt")
FINAL_EVALS = ("auto", "test", "val", "none")

# Keys that say how THIS invocation runs, never taken from a checkpoint's saved config on resume.
RUN_CONTROL_KEYS = ("checkpoints", "prefix", "resume", "start_epoch", "recipe", "verify_data")

RECIPE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipes")


class ConfigError(UsageError):
    """A training option is missing, unknown or contradicts another one."""


def _opt(default, help, group, flag=None, choices=None, metavar=None, const=None):
    return dataclasses.field(
        default=default,
        metadata={"help": help, "group": group, "flag": flag, "choices": choices, "metavar": metavar, "const": const},
    )


def _list(default, help, group, metavar):
    field = _opt(None, help, group, metavar=metavar)
    return dataclasses.field(default_factory=lambda: list(default), metadata=field.metadata)


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run needs; see ``gluon-inception train --help`` for each field.

    Examples
    --------
    >>> from gluon_inception.training import TrainConfig
    >>> cfg = TrainConfig(optimizer="adam", epochs=2).finalize()
    >>> cfg.lr
    0.001
    """

    # -- data ------------------------------------------------------------------------------
    data: Optional[str] = _opt(None, "dataset folder written by `gluon-inception prepare`", "data", metavar="DIR")
    demo: bool = _opt(False, "train on the embedded demo dataset (sklearn digits), built on first use", "data")
    demo_root: Optional[str] = _opt(
        None,
        "where the demo dataset is built (default: $MXNET_HOME/datasets/gluon-inception-demo)",
        "data",
        metavar="DIR",
    )
    verify_data: bool = _opt(
        False, "before training, check the record files against the checksums `prepare` recorded", "data"
    )
    image_size: int = _opt(224, "side of the square crop the network sees", "data")
    batch_size: int = _opt(64, "images per rank per step (global batch = this x ranks x --accumulate)", "data")
    augment: str = _opt(
        "inception", "training augmentation preset: inception or chapter", "data", choices=("inception", "chapter")
    )
    mirror: bool = _opt(True, "no random horizontal flips (e.g. for digits or text)", "data", flag="--no-mirror")
    val_resize: Optional[int] = _opt(
        None, "evaluation: shorter side before the centre crop (default: image size / 0.875)", "data"
    )
    data_threads: Optional[int] = _opt(
        None, "decoding threads per rank, each its own stream of the shard; they decide the epoch's order, so a "
        "mid-epoch resume needs the same number (default: the cores this process may use / the ranks on this host)",
        "data",
    )

    # -- model -----------------------------------------------------------------------------
    model: str = _opt("googlenet", "registered model name (gluon_inception.list_models())", "model")
    topology: str = _opt("paper", "GoogLeNet topology", "model", choices=("paper", "gluoncv"))
    aux_logits: bool = _opt(False, "train with the paper's two auxiliary heads", "model")
    aux_weight: float = _opt(0.3, "loss weight of each auxiliary head", "model")
    dropout: float = _opt(0.4, "dropout before the classifier", "model")

    # -- fine-tuning, distillation ---------------------------------------------------------
    pretrained: Optional[str] = _opt(
        None,
        "start from pretrained weights: a registered entry (gluon-inception pretrained list), a weight file, "
        "or a checkpoint (.params or folder); alone, the most accurate entry. The classifier is new "
        "(the dataset's classes) and the data is normalised as the weights expect",
        "transfer",
        metavar="NAME|PATH",
        const="best",
    )
    backbone_lr_mult: float = _opt(
        1.0, "learning-rate multiplier of every parameter but the classifier (and aux heads)", "transfer"
    )
    freeze_backbone: bool = _opt(
        False, "train only the classifier (and aux heads): the backbone is fixed, its BatchNorm in inference mode",
        "transfer",
    )
    teacher: Optional[str] = _opt(
        None,
        "distil from this teacher: a registered pretrained entry or a checkpoint (.params or folder) with the "
        "dataset's classes; it runs in inference mode on every rank",
        "transfer",
        metavar="NAME|PATH",
    )
    distill_temperature: float = _opt(1.0, "distillation: softmax temperature T of teacher and student", "transfer")
    distill_weight: float = _opt(
        0.5, "distillation: loss = (1-w) CE(targets) + w T^2 KL(teacher || student); this is w", "transfer"
    )

    # -- optimisation ----------------------------------------------------------------------
    optimizer: str = _opt("sgd", "sgd (momentum), nag (Nesterov) or adam", "optimisation", choices=OPTIMIZERS)
    lr: Optional[float] = _opt(
        None,
        "learning rate for a global batch of --lr-base-batch images (default: 0.1 for sgd/nag, "
        "0.001 for adam); on resume, a new value sets the rate from the resumed epoch on",
        "optimisation",
    )
    lr_scaling: str = _opt(
        "linear",
        "how the lr follows the global batch B: linear = lr*B/base, sqrt = lr*sqrt(B/base), none = as given",
        "optimisation",
        choices=LR_SCALINGS,
    )
    lr_base_batch: int = _opt(256, "the global batch size --lr refers to", "optimisation")
    accumulate: int = _opt(
        1, "add the gradients of N steps before one allreduce and update (global batch x N)", "optimisation"
    )
    momentum: float = _opt(0.9, "momentum of sgd/nag (beta1 of adam stays 0.9)", "optimisation")
    wd: float = _opt(1e-4, "weight decay", "optimisation")
    no_wd_bn_bias: bool = _opt(False, "no weight decay on BatchNorm gamma/beta and biases", "optimisation")
    epochs: int = _opt(50, "epochs to train in total (counting those before a resume)", "optimisation")
    lr_schedule: str = _opt("step", "learning-rate schedule", "optimisation", choices=LR_SCHEDULES)
    lr_steps: List[float] = _list([], "step: epochs at which the lr drops, e.g. 30,45", "optimisation", "E1,E2,...")
    lr_factor: List[float] = _list(
        [0.1], "step: factor at each drop, one value or one per step, e.g. 0.1 or 0.1,0.5", "optimisation", "F[,F...]"
    )
    lr_step_every: float = _opt(0, "step: also drop every N epochs (the paper: 8 with factor 0.96)", "optimisation")
    warmup_epochs: float = _opt(0, "linear warmup from --warmup-lr over this many epochs", "optimisation")
    warmup_lr: float = _opt(0.0, "learning rate at the start of the warmup (same scaling as --lr)", "optimisation")
    final_lr: float = _opt(0.0, "cosine/poly: learning rate at the end (same scaling as --lr)", "optimisation")
    poly_power: float = _opt(2.0, "poly: power of the polynomial decay", "optimisation")

    # -- regularisation --------------------------------------------------------------------
    label_smoothing: float = _opt(0.0, "label smoothing epsilon (0 = off)", "regularisation")
    mixup: float = _opt(0.0, "mixup alpha (0 = off)", "regularisation")
    mixup_off_epochs: int = _opt(0, "train the last N epochs without mixup", "regularisation")
    ema_decay: float = _opt(
        0.0, "keep an exponential moving average of the weights with this decay, e.g. 0.9998 (0 = off)",
        "regularisation",
    )
    ema_warmup: bool = _opt(
        False, "EMA decay min(decay, (1+n)/(10+n)) after n updates, so early weights fade fast", "regularisation"
    )

    # -- execution -------------------------------------------------------------------------
    precision: str = _opt(
        "float32",
        "float16 = mixed precision with dynamic loss scaling (GPU only); bfloat16 = mixed precision on CPUs "
        "with AVX-512 BF16 or AMX (no loss scaling); weights and checkpoints stay float32. int8 is for "
        "inference (export/evaluate --precision int8)",
        "run",
        choices=PRECISIONS,
    )
    fp16_allreduce: bool = _opt(
        False, "exchange gradients between ranks as float16 (Horovod's fp16 compression): half the traffic", "run"
    )
    hybridize: bool = _opt(
        True, "run imperatively instead of compiling (static_alloc, static_shape)", "run", flag="--no-hybridize"
    )
    seed: int = _opt(0, "random seed (data order, initialisation, dropout, mixup)", "run")

    # -- checkpoints -----------------------------------------------------------------------
    checkpoints: Optional[str] = _opt(
        None, "checkpoint and log folder (default: runs/PREFIX)", "checkpoints", metavar="DIR"
    )
    prefix: str = _opt("googlenet", "checkpoint file prefix: PREFIX-0001.params ...", "checkpoints", metavar="NAME")
    start_epoch: Optional[int] = _opt(
        None, "resume from the checkpoint written after epoch N", "checkpoints", metavar="N"
    )
    resume: bool = _opt(False, "resume from the latest complete checkpoint, if there is one", "checkpoints")
    save_every: int = _opt(1, "write a checkpoint every N epochs (and always after the last)", "checkpoints")
    keep_last: int = _opt(
        0, "keep only the newest K epoch checkpoints (0 = keep all; PREFIX-best is kept)", "checkpoints", metavar="K"
    )
    save_every_minutes: float = _opt(
        0.0,
        "also write a mid-epoch checkpoint every X minutes (fractions allowed; 0 = off); --resume continues "
        "from the exact step. Creating the file DIR/SAVE_NOW asks for one at the next step",
        "checkpoints",
    )
    stop_timeout: float = _opt(
        120.0,
        "after SIGTERM/SIGUSR1/SIGINT, exit at once if the orderly stop (next step, checkpoint) takes longer "
        "than X seconds (0 = wait)",
        "checkpoints",
    )

    # -- logging and evaluation ------------------------------------------------------------
    log_interval: int = _opt(20, "steps between progress updates (and loss checks)", "logging")
    val_every: int = _opt(1, "validate every N epochs (and always after the last)", "logging")
    progress: bool = _opt(True, "no progress bar on rank 0", "logging", flag="--no-progress")
    tensorboard: Optional[str] = _opt(
        None, "write TensorBoard event files here (rank 0; needs pip install tensorboardX)", "logging", metavar="DIR"
    )
    final_eval: str = _opt(
        "auto",
        "after training, evaluate on this split (auto = test if it exists, else val)",
        "logging",
        choices=FINAL_EVALS,
    )

    recipe: Optional[str] = _opt(None, "recipe name or JSON/YAML file (see --list-recipes)", "run", metavar="NAME")

    # ---------------------------------------------------------------------------------------
    def finalize(self):
        """Fill derived defaults and check the combination; returns ``self``.

        Raises
        ------
        ConfigError
            Naming the option that is wrong and what to do instead.
        """
        if self.lr is None:
            self.lr = DEFAULT_LR[self.optimizer]
        if self.checkpoints is None:
            self.checkpoints = os.path.join("runs", self.prefix)
        if isinstance(self.pretrained, bool):  # a recipe's "pretrained": true/false
            self.pretrained = "best" if self.pretrained else None
        self.lr_steps = _as_list(self.lr_steps, float, "lr_steps")
        self.lr_factor = _as_list(self.lr_factor, float, "lr_factor")
        self.validate()
        return self

    def validate(self):
        """Check values and combinations; raise :class:`ConfigError` on the first problem."""
        for name in ("optimizer", "lr_schedule", "lr_scaling", "precision", "final_eval", "topology", "augment"):
            choices = _metadata(name)["choices"]
            if getattr(self, name) not in choices:
                raise ConfigError(
                    "%s must be one of %s, got %r" % (_flag(name), ", ".join(choices), getattr(self, name))
                )
        if self.precision == "int8":
            raise ConfigError(
                "--precision int8 is for inference: train in float32 (or float16 on GPUs, bfloat16 on CPUs with "
                "AVX-512 BF16 or AMX), then gluon-inception export --precision int8 --calib-data REC"
            )
        positive = ("image_size", "batch_size", "epochs", "lr_base_batch", "save_every", "log_interval", "val_every")
        positive += ("accumulate",)
        positive += ("data_threads",) if self.data_threads is not None else ()
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError("%s must be a positive integer, got %r" % (_flag(name), value))
        if not self.lr > 0:
            raise ConfigError("--lr must be > 0, got %r" % self.lr)
        for name in (
            "wd",
            "momentum",
            "warmup_epochs",
            "warmup_lr",
            "final_lr",
            "mixup",
            "aux_weight",
            "lr_step_every",
            "backbone_lr_mult",
            "save_every_minutes",
            "stop_timeout",
        ):
            if getattr(self, name) < 0:
                raise ConfigError("%s must be >= 0, got %r" % (_flag(name), getattr(self, name)))
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError("--label-smoothing must be in [0, 1), got %r" % self.label_smoothing)
        if not 0 <= self.dropout < 1:
            raise ConfigError("--dropout must be in [0, 1), got %r" % self.dropout)
        if not self.distill_temperature > 0:
            raise ConfigError("--distill-temperature must be > 0, got %r" % self.distill_temperature)
        if not 0 <= self.distill_weight <= 1:
            raise ConfigError("--distill-weight must be in [0, 1], got %r" % self.distill_weight)
        if not 0 <= self.ema_decay < 1:
            raise ConfigError("--ema-decay must be in [0, 1) (0 = off), got %r" % self.ema_decay)
        if self.freeze_backbone and not self.pretrained:
            raise ConfigError("--freeze-backbone needs --pretrained NAME|PATH: a random backbone is not worth freezing")
        if self.freeze_backbone and self.backbone_lr_mult != 1.0:
            raise ConfigError("give --freeze-backbone or --backbone-lr-mult, not both (a frozen backbone has no lr)")
        if self.keep_last < 0 or self.mixup_off_epochs < 0:
            raise ConfigError("--keep-last and --mixup-off-epochs must be >= 0")
        if self.lr_schedule == "step":
            if any(f <= 0 for f in self.lr_factor):
                raise ConfigError("--lr-factor values must be > 0, got %s" % self.lr_factor)
            if len(self.lr_factor) not in (1, len(self.lr_steps)):
                raise ConfigError(
                    "--lr-factor takes one value or one per step: %d step(s) (%s) but %d factors (%s)"
                    % (len(self.lr_steps), self.lr_steps, len(self.lr_factor), self.lr_factor)
                )
            if list(self.lr_steps) != sorted(self.lr_steps) or any(s <= 0 for s in self.lr_steps):
                raise ConfigError("--lr-steps must be increasing positive epochs, got %s" % self.lr_steps)
            if self.lr_step_every and self.lr_steps:
                raise ConfigError("give --lr-steps or --lr-step-every, not both")
            if self.lr_step_every and len(self.lr_factor) != 1:
                raise ConfigError("--lr-step-every takes a single --lr-factor")
        elif self.lr_steps or self.lr_step_every:
            raise ConfigError("--lr-steps/--lr-step-every belong to --lr-schedule step, not %r" % self.lr_schedule)
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(
                "--warmup-epochs (%s) must be shorter than --epochs (%s)" % (self.warmup_epochs, self.epochs)
            )
        if self.start_epoch is not None and self.start_epoch < 0:
            raise ConfigError("--start-epoch must be >= 0, got %r" % self.start_epoch)
        if self.start_epoch is not None and self.resume:
            raise ConfigError("give --resume (latest checkpoint) or --start-epoch N, not both")
        if self.data is not None and self.demo:
            raise ConfigError("give --data DIR or --demo, not both")

    def to_dict(self):
        """Plain JSON-able dict of all fields."""
        return dataclasses.asdict(self)

    def updated(self, values, source):
        """A copy with ``values`` (a dict of field names) applied; unknown names raise ConfigError."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                "%s sets unknown option(s) %s; known options: %s"
                % (source, ", ".join(unknown), ", ".join(sorted(known)))
            )
        return dataclasses.replace(self, **values)


def _metadata(name):
    return {f.name: f.metadata for f in dataclasses.fields(TrainConfig)}[name]


def _flag(name):
    return _metadata(name)["flag"] or "--" + name.replace("_", "-")


def _as_list(value, kind, name):
    if value is None:
        return []
    if isinstance(value, str):
        value = [v for v in value.replace(" ", "").split(",") if v]
    if not isinstance(value, (list, tuple)):
        value = [value]
    try:
        return [kind(v) for v in value]
    except (TypeError, ValueError) as err:
        raise ConfigError("%s must be a comma-separated list of numbers, got %r" % (_flag(name), value)) from err


# -- recipes -------------------------------------------------------------------------------
def list_recipes():
    """Names and one-line descriptions of the recipes shipped with the package.

    Returns
    -------
    dict
        ``{name: description}``, sorted by name.

    Examples
    --------
    >>> from gluon_inception.training import list_recipes
    >>> [name for name in list_recipes() if name.startswith("chapter")]
    ['chapter-adam', 'chapter-sgd-1e-2', 'chapter-sgd-1e-3']
    """
    out = {}
    for fname in sorted(os.listdir(RECIPE_DIR)):
        name, ext = os.path.splitext(fname)
        if ext in (".json", ".yaml", ".yml"):
            out[name] = _read_recipe_file(os.path.join(RECIPE_DIR, fname)).get("description", "")
    return out


def load_recipe(name_or_path):
    """Load a recipe by name (shipped) or path (a JSON or YAML file of your own).

    A recipe file holds ``{"description": "...", "settings": {field: value, ...}}``.

    Parameters
    ----------
    name_or_path : str
        A shipped recipe (see :func:`list_recipes`) or the path of a recipe file.

    Returns
    -------
    dict
        The ``settings``: field names of :class:`TrainConfig` and their values.

    Raises
    ------
    ConfigError
        When neither a shipped recipe nor a file of that name exists, or the file is malformed.

    Examples
    --------
    >>> from gluon_inception.training import load_recipe
    >>> settings = load_recipe("chapter-adam")
    >>> settings["optimizer"], settings["lr"], settings["lr_steps"], settings["epochs"]
    ('adam', 0.001, [30, 45], 50)
    """
    path = name_or_path
    if not os.path.isfile(path):
        for ext in (".json", ".yaml", ".yml"):
            candidate = os.path.join(RECIPE_DIR, name_or_path + ext)
            if os.path.isfile(candidate):
                path = candidate
                break
        else:
            raise ConfigError(
                "no recipe %r: shipped recipes are %s (or give the path of a JSON/YAML file)"
                % (name_or_path, ", ".join(list_recipes()))
            )
    recipe = _read_recipe_file(path)
    settings = recipe.get("settings")
    if not isinstance(settings, dict):
        raise ConfigError('recipe %s has no "settings" object' % path)
    return dict(settings)


def _read_recipe_file(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        if path.endswith((".yaml", ".yml")):
            import yaml

            recipe = yaml.safe_load(text)
        else:
            recipe = json.loads(text)
    except Exception as err:  # json.JSONDecodeError or yaml.YAMLError
        raise ConfigError(
            "recipe %s is not valid %s: %s" % (path, "YAML" if path.endswith("ml") else "JSON", err)
        ) from err
    if not isinstance(recipe, dict):
        raise ConfigError('recipe %s must hold an object with "settings"' % path)
    return recipe


# -- command line --------------------------------------------------------------------------
_GROUP_TITLES = {
    "data": "data",
    "model": "model",
    "optimisation": "optimisation and learning-rate schedule",
    "transfer": "fine-tuning and distillation",
    "regularisation": "regularisation",
    "run": "execution",
    "checkpoints": "checkpoints and resuming",
    "logging": "logging and evaluation",
}


def add_arguments(parser):
    """Add one flag per :class:`TrainConfig` field to an :class:`argparse.ArgumentParser`.

    Flags have no argparse defaults (``SUPPRESS``), so :func:`config_from_args` can tell what the
    user typed from what the defaults and the recipe say.
    """
    groups = {key: parser.add_argument_group(title) for key, title in _GROUP_TITLES.items()}
    defaults = TrainConfig()
    for field in dataclasses.fields(TrainConfig):
        meta = field.metadata
        flag = meta["flag"] or "--" + field.name.replace("_", "-")
        default = getattr(defaults, field.name)
        help_text = meta["help"]
        if field.type is bool or isinstance(default, bool):
            action = "store_false" if default else "store_true"
            groups[meta["group"]].add_argument(
                flag, dest=field.name, action=action, default=argparse.SUPPRESS, help=help_text
            )
            continue
        if default not in (None, []) and field.name != "checkpoints":
            shown = ",".join(map(str, default)) if isinstance(default, list) else default
            help_text += " (default: %s)" % shown
        kind = _arg_type(field)
        optional_value = {"nargs": "?", "const": meta["const"]} if meta.get("const") is not None else {}
        groups[meta["group"]].add_argument(
            flag,
            dest=field.name,
            type=kind,
            choices=meta["choices"],
            default=argparse.SUPPRESS,
            metavar=meta["metavar"] or {int: "N", float: "X"}.get(kind),
            help=help_text,
            **optional_value,
        )
    parser.add_argument("--list-recipes", action="store_true", default=False, help="list the shipped recipes and exit")


def _arg_type(field):
    name = field.name
    if name in ("lr_steps", "lr_factor"):
        return str
    kind = {int: int, float: float, str: str}
    for t, conv in kind.items():
        if field.type is t or field.type == Optional[t]:
            return conv
    default = TrainConfig.__dataclass_fields__[name].default
    return type(default) if default is not None else str


def config_from_args(args):
    """Build the :class:`TrainConfig` of a parsed command line: defaults < recipe < flags.

    ``--demo`` applies the ``demo`` recipe when no ``--recipe`` is given. The returned config
    carries ``explicit``: the set of fields this command line (flags or its recipe) set, which
    resuming uses to decide what overrides the checkpoint's saved config.

    Returns
    -------
    TrainConfig
        Finalized (derived defaults filled, combination checked).
    """
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    cfg = TrainConfig()
    explicit = set(given)
    recipe = given.get("recipe") or ("demo" if given.get("demo") else None)
    if recipe:
        settings = load_recipe(recipe)
        cfg = cfg.updated(settings, "recipe %r" % recipe)
        cfg.recipe = recipe
        explicit |= set(settings)
    cfg = cfg.updated(given, "the command line")
    cfg.finalize()
    cfg.explicit = explicit
    return cfg


def merge_for_resume(saved, cfg):
    """The config of a resumed run: the checkpoint's saved config, with what this command set.

    Parameters
    ----------
    saved : dict
        ``meta["config"]`` of the checkpoint.
    cfg : TrainConfig
        This invocation's config; its ``explicit`` fields win, and the run-control fields
        (checkpoint folder, prefix, resume/start-epoch) always come from it.
    """
    explicit = set(getattr(cfg, "explicit", set())) | set(RUN_CONTROL_KEYS)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    if "dtype" in saved and "precision" not in saved:  # a checkpoint written before --dtype became --precision
        saved = dict(saved, precision=saved["dtype"])
    values = {k: v for k, v in saved.items() if k in known and k not in explicit}
    merged = dataclasses.replace(cfg, **values).finalize()
    merged.explicit = set(getattr(cfg, "explicit", set()))
    return merged
