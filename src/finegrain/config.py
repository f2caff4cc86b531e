"""Training configuration: one dataclass, validated up front, saved beside every checkpoint.

The CLI builds its flags from these fields (``--image-size`` ⇔ ``image_size``), so each validation
error names the flag the user typed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from finegrain.errors import ConfigError


def _help(text: str, **kw: Any) -> Any:
    return field(metadata={"help": text}, **kw)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


_UNITS = {"s": 1, "m": 60, "h": 3600}
TASKS = ("embed", "score", "classify")
IMBALANCE = ("none", "class-balanced", "ldam-drw", "balanced-softmax", "crt", "tau-norm", "auto")
AUTO_IMAGES = 150_000  # the default training length, in images seen (bench/defaults.py)


def parse_duration(text: str, name: str = "--time-budget") -> float:
    """``"90s"``, ``"10m"``, ``"1.5h"`` → seconds; anything else is an error naming the flag."""
    value, unit = str(text).strip()[:-1], str(text).strip()[-1:].lower()
    try:
        seconds = float(value) * _UNITS[unit]
    except (KeyError, ValueError):
        raise ConfigError(f"{name} takes a number and a unit (s, m or h), e.g. 90s, 10m, 1h; not {text!r}") from None
    if not seconds > 0:
        raise ConfigError(f"{name} must be positive, not {text!r}")
    return seconds


def _describe(backbone: dict[str, Any]) -> str:
    """``conv4 (widths 64-64-64-64)``: the name and the options that tell two architectures apart."""
    shown = {k: v for k, v in backbone.items() if k != "name"}
    parts = [f"{k} {'-'.join(map(str, v)) if isinstance(v, list) else v}" for k, v in shown.items()]
    return f"{backbone['name']} ({', '.join(parts)})" if parts else backbone["name"]


# The default architecture per task, from bench/defaults.py (best worst-case ratio to a plain PyTorch loop given
# the same time; bench/README, "Defaults against a plain PyTorch loop"), and bench/longtail.py for classify.
DEFAULT_BACKBONE: dict[str, dict[str, Any]] = {
    # Channels doubling per block (16-32-64-128): worst ratio to the plain loop 1.04 over Omniglot, LFW View 1 and
    # ORL (beating it on all three), against 0.97 for 32-32-32-32, and about 1.6x faster per image.
    "embed": {"backbone": "conv4", "widths": "16,32,64,128"},
    # The plain loop's conv4 shape at 3/4 width (24-48-96-192; 32-64-128-256 trained at 260 images/s in float32,
    # under the 300 asked for, and not every CPU has bf16), with average pooling and no head dropout (resolved
    # below): worst ratio to the plain loop 0.75 over SCUT-FBP5500 and both cross-group sets (float32), against 0.69
    # for 16-32-64-128 with GeM and dropout 0.5. It beats the plain loop on SCUT-FBP5500 and loses Caucasian ->
    # Asian; Asian -> Caucasian moves with the run (won in float32, lost in bf16, bench/README).
    "score": {"backbone": "conv4", "widths": "24,48,96,192"},
    # Channels doubling per block: on LFW's long tail (bench/longtail.py, 12 epochs) mean per-class accuracy 0.267
    # in 109 s against 0.175 in 162 s for 32-32-32-32; a plain loop given the same times reached 0.152 and 0.280.
    # One data set: the 32-d features of 32-32-32-32 are too few for 158 classes.
    "classify": {"backbone": "conv4", "widths": "16,32,64,128"},
}


@dataclass
class TrainConfig:
    data: str = _help("training data: an image folder, a CSV manifest or a '<path> <label>' list")
    out: str = _help("run folder for the checkpoint, model, config, logs and plots", default="runs/latest")
    root: str | None = _help("folder that relative paths in a manifest or list resolve against", default=None)
    task: str = _help("what to learn: embed (metric learning) | score (regression against ratings) | classify "
                      "(a softmax classifier over the training classes)", default="embed")
    recipe: str = _help("score task: direct (Huber regression from scratch) | staged (Siamese pre-training -> "
                        "Net2Net widen -> Huber)", default="direct")
    loss: str = _help("contrastive | siamese | triplet | arcface", default="triplet")
    miner: str = _help("triplet mining: batch-hard | semi-hard | all", default="semi-hard")
    margin: float | None = _help("loss margin (default: a per-loss value that needs no tuning)", default=None)
    margin_start: float | None = _help("margin curriculum: rise linearly from this margin to --margin", default=None)
    scale: float | None = _help("logit scale of the proxy losses (default: 64 for arcface, 20 for normsoftmax)",
                                default=None)
    backbone: str | None = _help(
        "registered backbone: tiny_darknet | resnet | mobilenet_v2 | conv4 | lbp (default: chosen per task "
        "across data sets, see bench/README)", default=None)
    width: float | None = _help("backbone width multiplier (default: the task's default backbone's, else 1)",
                                default=None)
    widths: str | None = _help("channels of each convolution, a comma list (e.g. 16,32,64,128 for conv4); instead "
                               "of --width", default=None)
    activation: str | None = _help("elu | relu | leaky_relu | relu6 (default: the backbone's)", default=None)
    batch_norm: bool | None = _help("batch norm in the backbone (default: the backbone's, on)", default=None)
    stem_stride: int | None = _help("resnet: stride of the first conv; 2 makes 64+ px inputs ~5x cheaper",
                                    default=None)
    lbp_radius: int | None = _help("lbp: neighbour distance of the binary patterns (default 1)", default=None)
    lbp_cell: int | None = _help("lbp: side of the histogram cells in pixels (default 10)", default=None)
    input_norm: str | None = _help(
        "fixed (one mean and scale for every image) | image (each image to zero mean and unit variance: overall "
        "brightness and contrast carry no signal) (default: fixed; with --init, the started-from model's)",
        default=None)
    embedding_size: int = _help("embedding dimension", default=128)
    pooling: str | None = _help("avg | gem (default: avg for --task score, gem otherwise)", default=None)
    image_size: int = _help("images are resized once to this square size", default=64)
    augment: str = _help("augmentation preset: none | flip (mirroring only) | light | heavy", default="light")
    flip: bool = _help("allow horizontal flips (turn off for characters and text)", default=True)
    epochs: int | None = _help("training epochs, at most (early stopping may end sooner) (default: enough for about "
                               "150,000 images, between 10 and 60 epochs)", default=None)
    p: int = _help("classes per P×K batch", default=16)
    k: int = _help("images per class in a P×K batch", default=4)
    batch_size: int | None = _help("score task: images per regression batch (default: p × k)", default=None)
    steps_per_epoch: int | None = _help("batches per epoch (default: one pass over the images)", default=None)
    lr: float = _help("peak learning rate", default=1e-3)
    loss_lr: float | None = _help("learning rate of the loss's own weights (ArcFace centres)", default=None)
    weight_decay: float = _help("AdamW weight decay", default=1e-4)
    optimizer: str = _help("adamw | adam", default="adamw")
    warmup_epochs: float = _help("linear warm-up length before cosine decay", default=1.0)
    grad_clip: float = _help("clip the gradient norm at this value (0: off)", default=5.0)
    val: float = _help("fraction held out to validate: of classes or of images, by --split-by (0: none)",
                       default=0.1)
    split_by: str | None = _help(
        "hold out whole classes (class, open-set) or images (image) (default: class to embed, image to score)",
        default=None)
    plateau_patience: int = _help("epochs without improvement before the plateau hook fires", default=3)
    patience: int = _help("early stopping: stop after this many epochs without a better validation metric "
                          "(0: off); the model keeps the best epoch's weights (to score: the latest epoch within "
                          "one standard error of the best Pearson)", default=5)
    init: str | None = _help("start from another finegrain model's backbone (a run folder or model file, any task)",
                             default=None)
    # 1, not the customary 0.1: starting a SCUT-FBP5500 scorer from the bundled face model, the runs' own
    # validation Pearson was 0.63 at 0.1 and 0.78 at 1 (0.75 from scratch; bench/transfer.py). One data set so far.
    backbone_lr_scale: float = _help("with --init: the backbone's learning rate relative to the head's (below 1: "
                                     "it keeps more of the source model)", default=1.0)
    time_budget: str | None = _help("search a small space of proven settings, then train the best, all within "
                                    "this time: e.g. 90s, 10m, 1h", default=None)
    search_trials: int | None = _help("--time-budget: at most this many search trials (default: as many as fit)",
                                      default=None)
    grow: str | None = _help(
        "Net2Net growth, one step each time training plateaus: e.g. widen:1.5,deepen (default: none to "
        "embed; widen:1.5,deepen in the staged recipe's pre-training)", default=None)
    grow_noise: float = _help("symmetry-breaking noise of Net2Net widening (relative; 0: exact copies)",
                              default=0.05)
    pretrain_epochs: int = _help("staged recipe: Siamese pre-training epochs (stage 1)", default=10)
    widen: float = _help("staged recipe: widen every layer by this factor before fine-tuning (1: skip)",
                         default=2.0)
    bin_width: float = _help("score task: score bins of this width, centred on its multiples (Siamese "
                             "classes and balanced sampling)", default=1.0)
    balance: bool | None = _help("score task: class-balanced sampling (a score bin uniformly, then an image in it) "
                                 "(default: on in the staged recipe, off in the direct one)", default=None)
    huber_delta: float = _help("score task: Huber loss delta", default=1.0)
    head_dropout: float | None = _help("score task: dropout before the regression layer (default: 0 in the direct "
                                       "recipe, 0.5 in the staged one)", default=None)
    head: str | None = _help("classify task: linear | cosine | knn (1-nearest-neighbour over an embedding trained "
                             "by metric learning) (default: linear; cosine with --imbalance ldam-drw)", default=None)
    imbalance: str = _help("classify task, long-tailed classes: none | class-balanced | ldam-drw | balanced-softmax | "
                           "crt | tau-norm | auto (chooses none, crt or tau-norm on the validation split)",
                           default="auto")
    label_smoothing: float = _help("classify task: label smoothing of the cross-entropy", default=0.1)
    mixup: float = _help("classify task: mixup's Beta(a, a) parameter (0: off)", default=0.0)
    cutmix: float = _help("classify task: cutmix's Beta(a, a) parameter (0: off; with --mixup, one of the two per "
                          "batch)", default=0.0)
    faces: bool = _help("photos of people: train on a crop of each image's main face (the bundled detector); the "
                        "model remembers it, and every use of the model crops the same way", default=False)
    seed: int = _help("random seed: the same seed gives the same weights", default=0)
    workers: int = _help("data-loading worker processes", default=1)
    threads: int | None = _help("torch CPU threads (default: all cores)", default=None)
    skip_bad: bool = _help("drop unreadable images with a warning instead of stopping", default=False)
    cache_dir: str | None = _help("decode cache folder (default: $FINEGRAIN_CACHE or ~/.cache/finegrain)", default=None)
    progress: bool = _help("show progress bars", default=True)
    # Where and how many processes train (issue 18); neither changes what a step computes, only where.
    device: str = _help("auto (a CUDA GPU when present, else the CPU) | cpu | cuda | cuda:N | mps", default="auto")
    processes: int = _help("local training processes on torch.distributed (gloo on CPU, NCCL on GPUs); batches "
                           "are sharded and gradients averaged across them", default=1)
    precision: str = _help("training arithmetic: auto (bfloat16 mixed precision where the hardware computes it: "
                           "CUDA GPUs, CPUs with AVX512-BF16 or AMX; float16 on older GPUs; float32 elsewhere) | "
                           "float32", default="auto")

    def validate(self) -> TrainConfig:
        from finegrain.data.augment import PRESETS
        from finegrain.losses import LOSSES, MINERS, PROXY_LOSSES
        from finegrain.models.backbone import ACTIVATIONS
        from finegrain.models.heads import POOLINGS
        from finegrain.models.net2net import parse_growth
        from finegrain.models.registry import (
            backbone_options,
            create_backbone,
            input_norms,
            is_growable,
            list_backbones,
        )

        score = self.task == "score"
        source = self._init_backbone() if self.init is not None else None
        # Task-dependent defaults, resolved here so the saved config says what actually ran.
        if self.backbone is None and source is not None:
            self.backbone = source["name"]
        elif self.backbone is None:
            # The task's default architecture; options the user set (say --width) are kept. --width and --widths
            # are one setting: the user's either replaces the default's either.
            sized = self.width is not None or self.widths is not None
            for name, value in DEFAULT_BACKBONE[self.task if self.task in DEFAULT_BACKBONE else "embed"].items():
                if name in ("width", "widths") and sized:
                    continue
                if name == "backbone" or getattr(self, name) is None:
                    setattr(self, name, value)
        if self.backbone not in list_backbones():
            raise ConfigError(f"--backbone must be one of {', '.join(list_backbones())}, not {self.backbone!r}")
        if self.split_by is None:
            self.split_by = "class" if self.task == "embed" else "image"
        options = backbone_options(self.backbone)
        if source is not None:
            self._check_init(source)
        if self.widths is not None:
            try:  # the backbone knows how many convolutions it has (its other options are checked on their own)
                create_backbone(self.backbone, widths=self._parse_widths())
            except ConfigError as error:
                raise ConfigError(f"--widths {self.widths}: {error}") from None
        if self.input_norm is None:  # with --init, the source's
            self.input_norm = source.get("input_norm", "fixed") if source else "fixed"
        if self.input_norm not in input_norms(self.backbone):
            raise ConfigError(f"--input-norm must be {' or '.join(input_norms(self.backbone))} for --backbone "
                              f"{self.backbone}, not {self.input_norm!r}")
        if self.width is None and self.widths is None and source is None:  # with --init, the source's widths
            self.width = 1.0
        if score and self.recipe == "staged" and not is_growable(self.backbone):
            raise ConfigError(f"--recipe staged pre-trains, grows and widens the backbone, and --backbone "
                              f"{self.backbone} is a fixed descriptor with nothing to grow: use --recipe direct")
        if self.grow is None:
            self.grow = "widen:1.5,deepen" if score and self.recipe == "staged" else ""
        # Plain sampling scored higher for the direct recipe (0.815 against 0.767 Pearson), on SCUT-FBP5500 only so
        # far (bench/README); the staged recipe keeps the balanced sampling its description asks for.
        if self.balance is None:
            self.balance = self.recipe == "staged"
        # A scorer reads its rating from average-pooled features with no dropout, as the plain loop does: with GeM and
        # dropout 0.5, Caucasian -> Asian fell from 0.40 to 0.25 Pearson in a sweep of three seeds (bench/README). The
        # staged recipe keeps the dropout of the paper it follows.
        if self.pooling is None:
            self.pooling = "avg" if score else "gem"
        if self.head_dropout is None:  # only a scorer has this head; other tasks keep recording the old 0.5, unused
            self.head_dropout = 0.0 if score and self.recipe == "direct" else 0.5
        parse_growth(self.grow)
        if self.grow and not is_growable(self.backbone):
            raise ConfigError(f"--grow: --backbone {self.backbone} cannot be grown by Net2Net (no convolutions)")
        for name in ("activation", "batch_norm"):
            if getattr(self, name) is not None and name not in options:
                raise ConfigError(f"{flag(name)} is not an option of --backbone {self.backbone}")
        if score and self.split_by != "image":
            raise ConfigError("--split-by must be image for --task score (scores have no classes to hold out)")
        if self.task == "classify":
            self._validate_classify()
        if self.activation is not None and self.activation not in ACTIVATIONS:
            raise ConfigError(f"--activation must be one of {', '.join(ACTIVATIONS)}, not {self.activation!r}")
        choices = {
            "task": TASKS,
            "recipe": ("staged", "direct"),
            "backbone": tuple(list_backbones()),
            "loss": LOSSES,
            "miner": MINERS,
            "pooling": POOLINGS,
            "augment": PRESETS,
            "optimizer": ("adamw", "adam"),
            "split_by": ("class", "image"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{flag(name)} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        positive = ["embedding_size", "image_size", "epochs", "p", "lr", "width", "bin_width", "huber_delta", "scale"]
        for name in positive:
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ConfigError(f"{flag(name)} must be positive, not {getattr(self, name)}")
        if self.stem_stride is not None and (self.backbone != "resnet" or self.stem_stride not in (1, 2)):
            raise ConfigError(f"--stem-stride is a resnet option and must be 1 or 2, not {self.stem_stride}")
        for name in ("lbp_radius", "lbp_cell"):
            if getattr(self, name) is not None and (self.backbone != "lbp" or getattr(self, name) < 1):
                raise ConfigError(f"{flag(name)} is an lbp option and must be a positive integer, "
                                  f"not {getattr(self, name)}")
        if self.scale is not None and self.loss not in PROXY_LOSSES:
            raise ConfigError(f"--scale is the logit scale of {' and '.join(PROXY_LOSSES)}; --loss {self.loss} "
                              "has none")
        if self.loss == "normsoftmax" and (self.margin is not None or self.margin_start is not None):
            raise ConfigError("--loss normsoftmax has no margin: drop --margin and --margin-start")
        if self.k < 2:
            raise ConfigError(f"--k must be at least 2 (a class needs a positive pair), not {self.k}")
        if self.image_size < 16:
            raise ConfigError(f"--image-size must be at least 16, not {self.image_size}")
        if not 0 <= self.val < 1:
            raise ConfigError(f"--val must be in [0, 1), not {self.val}")
        if self.batch_size is not None and self.batch_size < 2:
            raise ConfigError(f"--batch-size must be at least 2, not {self.batch_size}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ConfigError(f"--steps-per-epoch must be at least 1, not {self.steps_per_epoch}")
        if self.pretrain_epochs < 0 or self.widen < 1 or self.grow_noise < 0:
            raise ConfigError("--pretrain-epochs and --grow-noise must be 0 or more and --widen at least 1")
        if not 0 <= self.head_dropout < 1:
            raise ConfigError(f"--head-dropout must be in [0, 1), not {self.head_dropout}")
        self._validate_devices()
        if self.workers < 0:
            raise ConfigError(f"--workers must be 0 or more, not {self.workers}")
        if self.patience < 0 or self.plateau_patience < 0:
            raise ConfigError("--patience and --plateau-patience must be 0 or more")
        if not 0 <= self.backbone_lr_scale <= 10:
            raise ConfigError(f"--backbone-lr-scale must be between 0 and 10, not {self.backbone_lr_scale}")
        if self.time_budget is not None:
            parse_duration(self.time_budget)
        if self.search_trials is not None and self.search_trials < 1:
            raise ConfigError(f"--search-trials must be at least 1, not {self.search_trials}")
        return self

    def _validate_devices(self) -> None:
        from finegrain.devices import check_device_name

        check_device_name(self.device)
        if self.precision not in ("auto", "float32"):
            raise ConfigError(f"--precision must be auto or float32, not {self.precision!r}")
        if self.processes < 1:
            raise ConfigError(f"--processes must be at least 1, not {self.processes}")
        if self.processes > 1 and self.time_budget is not None:
            raise ConfigError("--time-budget times its trials in one process: drop --processes, or --time-budget")

    def _validate_classify(self) -> None:
        from finegrain.models.classifier import HEADS

        if self.split_by != "image":
            raise ConfigError("--split-by must be image for --task classify (validation needs the training classes)")
        if self.imbalance not in IMBALANCE:
            raise ConfigError(f"--imbalance must be one of {', '.join(IMBALANCE)}, not {self.imbalance!r}")
        if self.head is None:
            self.head = "cosine" if self.imbalance == "ldam-drw" else "linear"
        if self.head not in (*HEADS, "knn"):
            raise ConfigError(f"--head must be one of {', '.join(HEADS)}, knn, not {self.head!r}")
        if self.imbalance == "ldam-drw" and self.head != "cosine":
            raise ConfigError("--imbalance ldam-drw puts its margins on cosine logits: use --head cosine")
        if self.head == "knn" and self.imbalance not in ("auto", "none"):
            raise ConfigError(f"--head knn has no classifier weights for --imbalance {self.imbalance}: use a linear "
                              "or cosine head")
        if self.time_budget is not None:
            raise ConfigError("--time-budget searches embedding and scoring settings; --task classify has no search "
                              "space yet: drop --time-budget")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"--label-smoothing must be in [0, 1), not {self.label_smoothing}")
        if self.mixup < 0 or self.cutmix < 0:
            raise ConfigError("--mixup and --cutmix must be 0 (off) or positive")

    def preprocess(self):
        """How the trained model will see images (a ``Preprocess``: input size, and face cropping with --faces)."""
        from finegrain.detect.main_face import FACE_MARGIN
        from finegrain.encoders.preprocess import Preprocess

        return Preprocess(self.image_size, face_margin=FACE_MARGIN if self.faces else None)

    def epochs_for(self, images: int) -> int:
        """``--epochs``, or by default enough epochs for about ``AUTO_IMAGES`` training images, 10 to 60."""
        if self.epochs is not None:
            return self.epochs
        return int(min(max(round(AUTO_IMAGES / max(images, 1)), 10), 60))

    def backbone_kwargs(self) -> dict[str, Any]:
        """Backbone options from the flags; unset ones are left to the backbone's own defaults."""
        kw: dict[str, Any] = {"width_multiplier": 1.0 if self.width is None else self.width}
        if self.widths is not None:
            kw = {"widths": self._parse_widths()}
        named = {"activation": "activation", "batch_norm": "batch_norm", "stem_stride": "stem_stride",
                 "lbp_radius": "radius", "lbp_cell": "cell", "input_norm": "input_norm"}
        kw |= {option: getattr(self, name) for name, option in named.items() if getattr(self, name) is not None}
        if self.backbone == "lbp":  # its histogram grid is laid out for the training image size
            kw["image_size"] = self.image_size
        return kw

    def _parse_widths(self) -> list[int]:
        if self.width is not None:
            raise ConfigError("--widths sets every layer's channels and --width scales the default ones: give one")
        try:
            widths = [int(w) for w in str(self.widths).split(",")]
        except ValueError:
            widths = []
        if not widths or min(widths) < 1:
            raise ConfigError(f"--widths must be a comma list of positive integers (e.g. 16,32,64,128), "
                              f"not {self.widths!r}")
        return widths

    def _init_backbone(self) -> dict[str, Any]:
        """The backbone architecture of the ``--init`` model (its file's header only is read)."""
        from finegrain.artifact import read_manifest
        from finegrain.encoders import resolve_model_path

        manifest = read_manifest(resolve_model_path(self.init))
        if manifest["kind"] == "meta":
            raise ConfigError(f"--init {self.init} is a combined model of {len(manifest['components'])} networks; "
                              "start from one of them")
        if manifest["kind"] not in ("embedding", "score"):
            raise ConfigError(f"--init {self.init} is a {manifest['kind']} file, not a model")
        return manifest["architecture"]["backbone"]

    def _check_init(self, source: dict[str, Any]) -> None:
        """Backbone flags given with --init must describe the source's backbone (or be left out)."""
        from finegrain.models.registry import create_backbone

        asked = [flag(n) for n in ("activation", "batch_norm", "stem_stride", "lbp_radius", "lbp_cell")
                 if getattr(self, n) is not None] + (["--width"] if self.width is not None else []) + (
                 ["--widths"] if self.widths is not None else [])
        source_norm = source.get("input_norm", "fixed")
        # Resolved to the source's by an earlier validate(), or given: only another value is a different network.
        if self.input_norm not in (None, source_norm):
            asked.append(f"--input-norm {self.input_norm}")
        if self.backbone != source["name"] or asked:
            # Unless given, the source's input_norm: other flags alone must not make it look like another network.
            wanted = create_backbone(self.backbone, **{"input_norm": source_norm, **self.backbone_kwargs()}).config()
            if wanted != source:
                raise ConfigError(f"--init {self.init} has a {_describe(source)} backbone, and --backbone "
                                  f"{self.backbone} {' '.join(asked)} asks for a {_describe(wanted)} one: drop "
                                  "the backbone flags to start from the --init model's")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        from finegrain.utils import atomic_write_text

        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        if "arcface_scale" in raw:  # the name before normsoftmax shared the setting
            raw["scale"] = raw.pop("arcface_scale")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown settings {', '.join(unknown)}")
        return cls(**raw).validate()
