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


@dataclass
class TrainConfig:
    data: str = _help("training data: an image folder, a CSV manifest or a '<path> <label>' list")
    out: str = _help("run folder for the checkpoint, model, config, logs and plots", default="runs/latest")
    root: str | None = _help("folder that relative paths in a manifest or list resolve against", default=None)
    task: str = _help("what to learn: embed (metric learning) | score (regression against ratings)", default="embed")
    recipe: str = _help("score task: staged (Siamese pre-training -> Net2Net widen -> Huber) | direct",
                        default="staged")
    loss: str = _help("contrastive | siamese | triplet | arcface", default="triplet")
    miner: str = _help("triplet mining: batch-hard | semi-hard | all", default="semi-hard")
    margin: float | None = _help("loss margin (default: a per-loss value that needs no tuning)", default=None)
    margin_start: float | None = _help("margin curriculum: rise linearly from this margin to --margin", default=None)
    arcface_scale: float = _help("ArcFace logit scale", default=64.0)
    backbone: str | None = _help(
        "registered backbone: tiny_darknet | resnet | mobilenet_v2 | conv4 | lbp (default: resnet to embed, "
        "tiny_darknet to score)", default=None)
    width: float = _help("backbone width multiplier", default=1.0)
    activation: str | None = _help("elu | relu | leaky_relu | relu6 (default: the backbone's; elu to score)",
                                   default=None)
    batch_norm: bool | None = _help("batch norm in the backbone (default: the backbone's; off to score)",
                                    default=None)
    stem_stride: int | None = _help("resnet: stride of the first conv; 2 makes 64+ px inputs ~5x cheaper",
                                    default=None)
    lbp_radius: int | None = _help("lbp: neighbour distance of the binary patterns (default 1)", default=None)
    lbp_cell: int | None = _help("lbp: side of the histogram cells in pixels (default 10)", default=None)
    embedding_size: int = _help("embedding dimension", default=128)
    pooling: str = _help("avg | gem", default="gem")
    image_size: int = _help("images are resized once to this square size", default=64)
    augment: str = _help("augmentation preset: none | light | heavy", default="light")
    flip: bool = _help("allow horizontal flips (turn off for characters and text)", default=True)
    epochs: int = _help("training epochs", default=20)
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
    balance: bool = _help("score task: class-balanced sampling (a score bin uniformly, then an image in it)",
                          default=True)
    huber_delta: float = _help("score task: Huber loss delta", default=1.0)
    head_dropout: float = _help("score task: dropout before the regression layer", default=0.5)
    seed: int = _help("random seed: the same seed gives the same weights", default=0)
    workers: int = _help("data-loading worker processes", default=1)
    threads: int | None = _help("torch CPU threads (default: all cores)", default=None)
    skip_bad: bool = _help("drop unreadable images with a warning instead of stopping", default=False)
    cache_dir: str | None = _help("decode cache folder (default: $FINEGRAIN_CACHE or ~/.cache/finegrain)", default=None)
    progress: bool = _help("show progress bars", default=True)

    def validate(self) -> TrainConfig:
        from finegrain.data.augment import PRESETS
        from finegrain.losses import LOSSES, MINERS
        from finegrain.models.backbone import ACTIVATIONS
        from finegrain.models.heads import POOLINGS
        from finegrain.models.net2net import parse_growth
        from finegrain.models.registry import backbone_options, is_growable, list_backbones

        score = self.task == "score"
        # Task-dependent defaults, resolved here so the saved config says what actually ran.
        if self.backbone is None:
            self.backbone = "tiny_darknet" if score else "resnet"
        if self.backbone not in list_backbones():
            raise ConfigError(f"--backbone must be one of {', '.join(list_backbones())}, not {self.backbone!r}")
        if self.split_by is None:
            self.split_by = "image" if score else "class"
        options = backbone_options(self.backbone)
        if score and self.activation is None and "activation" in options:
            self.activation = "elu"
        if score and self.batch_norm is None and "batch_norm" in options:
            self.batch_norm = False
        if score and self.recipe == "staged" and not is_growable(self.backbone):
            raise ConfigError(f"--recipe staged pre-trains, grows and widens the backbone, and --backbone "
                              f"{self.backbone} is a fixed descriptor with nothing to grow: use --recipe direct")
        if self.grow is None:
            self.grow = "widen:1.5,deepen" if score and self.recipe == "staged" else ""
        parse_growth(self.grow)
        if self.grow and not is_growable(self.backbone):
            raise ConfigError(f"--grow: --backbone {self.backbone} cannot be grown by Net2Net (no convolutions)")
        for name in ("activation", "batch_norm"):
            if getattr(self, name) is not None and name not in options:
                raise ConfigError(f"{flag(name)} is not an option of --backbone {self.backbone}")
        if score and self.split_by != "image":
            raise ConfigError("--split-by must be image for --task score (scores have no classes to hold out)")
        if self.activation is not None and self.activation not in ACTIVATIONS:
            raise ConfigError(f"--activation must be one of {', '.join(ACTIVATIONS)}, not {self.activation!r}")
        choices = {
            "task": ("embed", "score"),
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
        positive = ["embedding_size", "image_size", "epochs", "p", "lr", "width", "bin_width", "huber_delta"]
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{flag(name)} must be positive, not {getattr(self, name)}")
        if self.stem_stride is not None and (self.backbone != "resnet" or self.stem_stride not in (1, 2)):
            raise ConfigError(f"--stem-stride is a resnet option and must be 1 or 2, not {self.stem_stride}")
        for name in ("lbp_radius", "lbp_cell"):
            if getattr(self, name) is not None and (self.backbone != "lbp" or getattr(self, name) < 1):
                raise ConfigError(f"{flag(name)} is an lbp option and must be a positive integer, "
                                  f"not {getattr(self, name)}")
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
        if self.workers < 0:
            raise ConfigError(f"--workers must be 0 or more, not {self.workers}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        from finegrain.utils import atomic_write_text

        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown settings {', '.join(unknown)}")
        return cls(**raw).validate()
