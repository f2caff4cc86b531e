"""Train the cascade stage by stage: 12-net, calibration nets, then 24- and 48-nets on the hard negatives the
earlier stages let through. Each finished net is checkpointed, so a killed run resumes at the next net.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from finegrain.artifact import read_artifact, write_artifact
from finegrain.detect import samples
from finegrain.detect.cascade import Cascade, CascadeSettings
from finegrain.detect.nets import NETS
from finegrain.detect.samples import FaceImage
from finegrain.detect.store import load_net_weights, net_tensors, save_cascade
from finegrain.errors import ConfigError
from finegrain.utils import progress_bar, seed_everything

ORDER = ("detect12", "calibrate12", "calibrate24", "calibrate48", "detect24", "detect48")


@dataclass
class DetectorTrainConfig:
    out: str
    epochs: int = 5
    batch_size: int = 256
    lr: float = 2e-3
    positives_per_face: int = 2
    calibration_per_face: int = 3
    random_negatives: int = 150_000  # for the 12-net; later nets get a quarter as many beside their hard negatives
    hard_negatives: int = 100_000  # at most, per later stage
    min_face_mining: float = 16.0
    # The 48-net ranks the final detections and finds few hard negatives in upright scenes: it mines each scene
    # in this many quarter turns (each also mirrored), at a 12-net threshold near the shipped ones (windows the
    # 12-net rejects never reach it), then retrains with the whole cascade's remaining false positives added.
    mining_turns_48: int = 4
    mining_threshold_48: float = 0.8
    bootstrap_rounds: int = 1
    bootstrap_threshold: float = 0.3
    seed: int = 0
    settings: dict = field(default_factory=dict)

    def validate(self) -> DetectorTrainConfig:
        for name in ("epochs", "batch_size", "positives_per_face", "calibration_per_face", "mining_turns_48"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: must be at least 1, got {getattr(self, name)}")
        if self.mining_turns_48 > 4:
            raise ConfigError(f"--mining-turns-48: at most 4 quarter turns, got {self.mining_turns_48}")
        if self.bootstrap_rounds < 0:
            raise ConfigError(f"--bootstrap-rounds: must be at least 0, got {self.bootstrap_rounds}")
        for name in ("mining_threshold_48", "bootstrap_threshold"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"--{name.replace('_', '-')}: must be between 0 and 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"--lr: must be positive, got {self.lr}")
        CascadeSettings().replace(**self.settings)
        return self


def fit(net: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: DetectorTrainConfig, name: str) -> dict[str, float]:
    """Adam with cosine decay; 5% held out to report accuracy. ``x`` is uint8 windows, ``y`` class labels."""
    g = torch.Generator().manual_seed(cfg.seed)
    order = torch.randperm(len(x), generator=g)
    held = order[: max(1, len(x) // 20)]
    train = order[len(held):]
    weights = None
    if not name.startswith("calibrate"):  # weigh faces and non-faces equally whatever their counts
        counts = torch.bincount(y[train], minlength=2).float()
        weights = counts.sum() / (2 * counts.clamp(min=1))
    optimiser = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    steps = cfg.epochs * ((len(train) + cfg.batch_size - 1) // cfg.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, cfg.lr, total_steps=steps, pct_start=0.15)
    net.train()
    bar = progress_bar(total=steps, desc=f"training {name}", unit="step")
    for _ in range(cfg.epochs):
        for batch in train[torch.randperm(len(train), generator=g)].split(cfg.batch_size):
            logits = net(x[batch].float())
            loss = F.cross_entropy(logits.reshape(len(batch), -1), y[batch], weight=weights)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    net.eval()
    with torch.inference_mode():
        predicted = torch.cat([net(x[b].float()).reshape(len(b), -1).argmax(1) for b in held.split(1024)])
    accuracy = float((predicted == y[held]).float().mean())
    print(f"{name}: {len(train)} windows, held-out accuracy {accuracy:.4f}", flush=True)
    return {"windows": len(x), "held_out_accuracy": accuracy}


def _u8(x: torch.Tensor) -> torch.Tensor:
    return x.round().clamp(0, 255).to(torch.uint8)


def quarter_turns(scenes: list[np.ndarray], turns: int) -> list[np.ndarray]:
    """Every scene turned by 0, 90, … degrees (``turns`` orientations): more non-face clutter from the same photos."""
    return [np.ascontiguousarray(np.rot90(scene, k)) for k in range(turns) for scene in scenes]


def _mine(cascade: Cascade, scenes: list[np.ndarray], stages: int, cfg: DetectorTrainConfig,
          **settings_overrides) -> list[np.ndarray]:
    """Windows of the non-face scenes that the first ``stages`` stages pass: every one is a mistake.

    Mining looks for smaller faces and with a laxer 24-net than detection does, and in mirrored scenes too, so
    the next stage sees more of the mistakes it will have to reject.
    """
    lax = min(0.1, cascade.settings.threshold_24)
    settings = cascade.settings.replace(min_face=cfg.min_face_mining, threshold_24=lax, **settings_overrides)
    mining = Cascade(dict(cascade.nets), settings)
    mirrored = [np.ascontiguousarray(s[:, ::-1]) for s in scenes]
    found = progress_bar(mining.detect_many(scenes + mirrored, stages=stages), total=2 * len(scenes),
                         desc=f"mining stage {stages}")
    boxes = [d.boxes for d in found]
    width = np.array([s.shape[1] for s in scenes], dtype=np.float64)
    unmirrored = [np.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], axis=1) if len(b) else b
                  for w, b in zip(width, boxes[len(scenes):])]
    return [np.concatenate([a, b]) for a, b in zip(boxes[: len(scenes)], unmirrored)]


def _subset(hard: list[np.ndarray], cap: int, rng: np.random.Generator) -> list[np.ndarray]:
    """At most about ``cap`` of the mined windows, a random subset spread over the scenes."""
    total = sum(len(b) for b in hard)
    if total <= cap:
        return hard
    keep = rng.random(total) < cap / total
    splits = np.cumsum([len(b) for b in hard])[:-1]
    return [b[k] for b, k in zip(hard, np.split(keep, splits))]


def _data(name: str, cascade: Cascade, faces: list[FaceImage], scenes: list[np.ndarray], cfg: DetectorTrainConfig,
          rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    size = int(name[-2:])
    if name.startswith("calibrate"):
        x, y = samples.calibration_windows(faces, size, cfg.calibration_per_face, rng)
        return _u8(x), y
    positives = samples.positive_windows(faces, size, cfg.positives_per_face, rng)
    if size == 12:
        negatives = samples.random_windows(scenes, size, cfg.random_negatives, rng)
    elif size == 24:
        hard = _subset(_mine(cascade, scenes, 1, cfg), cfg.hard_negatives, rng)
    else:
        scenes = quarter_turns(scenes, cfg.mining_turns_48)
        hard = _mine(cascade, scenes, 2, cfg, threshold_12=cfg.mining_threshold_48)
        hard = _subset(hard, cfg.hard_negatives, rng)
    if size > 12:
        print(f"{name}: {sum(len(b) for b in hard)} hard negatives from {len(scenes)} scenes", flush=True)
        negatives = [samples.cut(scenes, hard, size, rng),
                     samples.random_windows(scenes, size, cfg.random_negatives // 4, rng)]
        if size == 48:  # the last stage also learns to reject windows that hold only part of a face
            negatives.append(samples.offset_windows(faces, size, 1, rng))
        negatives = torch.cat(negatives)
    x = torch.cat([_u8(positives), _u8(negatives)])
    y = torch.cat([torch.ones(len(positives), dtype=torch.long), torch.zeros(len(negatives), dtype=torch.long)])
    return x, y


def _bootstrap_negatives(cascade: Cascade, scenes: list[np.ndarray], cfg: DetectorTrainConfig,
                         rng: np.random.Generator) -> torch.Tensor:
    """The whole cascade's false positives on the turned scenes, in two photometric draws: the windows the
    trained 48-net still scores as faces."""
    turned = quarter_turns(scenes, cfg.mining_turns_48)
    hard = _mine(cascade, turned, 3, cfg, threshold_12=cfg.mining_threshold_48, threshold_48=cfg.bootstrap_threshold)
    print(f"detect48: {sum(len(b) for b in hard)} false positives of the whole cascade", flush=True)
    return torch.cat([_u8(samples.cut(turned, hard, 48, rng)) for _ in range(2)])


def train_detector(faces: list[FaceImage], scenes: list[np.ndarray], cfg: DetectorTrainConfig,
                   resume: bool = False) -> Path:
    """Train all six nets and write the detector to ``cfg.out`` (a partial file beside it after each net)."""
    cfg.validate()
    if not faces:
        raise ConfigError("no faces to train on: give --faces and/or --annotations with --images")
    if not scenes:
        raise ConfigError("no non-face images: give --negatives")
    out = Path(cfg.out)
    partial = out.with_name(out.name + ".partial")
    seed_everything(cfg.seed)  # the nets' initial weights: torch's own start seed differs in every process
    cascade = Cascade(settings=CascadeSettings().replace(**cfg.settings))
    report: dict[str, dict] = {}
    if resume and partial.is_file():
        state = read_artifact(partial, kinds=("checkpoint",))
        for name in state.manifest["done"]:
            cascade.nets[name] = NETS[name](**state.manifest["architecture"][name])
            load_net_weights(cascade.nets[name], state.tensors, name)
            report[name] = state.manifest["report"][name]
        print(f"resuming: {', '.join(state.manifest['done'])} already trained", flush=True)
    for step, name in enumerate(ORDER):
        if name in report:
            continue
        seed_everything(cfg.seed + step)
        rng = np.random.default_rng(cfg.seed + step)
        x, y = _data(name, cascade, faces, scenes, cfg, rng)
        report[name] = fit(cascade.nets[name], x, y, cfg, name)
        cascade.eval()
        for round_ in range(cfg.bootstrap_rounds if name == "detect48" else 0):
            extra = _bootstrap_negatives(cascade, scenes, cfg, rng)
            x, y = torch.cat([x, extra]), torch.cat([y, torch.zeros(len(extra), dtype=torch.long)])
            seed_everything(cfg.seed + step + 100 * (round_ + 1))
            cascade.nets[name] = NETS[name](**cascade.nets[name].options())  # retrained from scratch
            report[name] = fit(cascade.nets[name], x, y, cfg, f"{name} (bootstrap {round_ + 1})")
            cascade.eval()
        done = {n: cascade.nets[n] for n in report}
        write_artifact(partial, {"kind": "checkpoint", "done": list(report), "report": report,
                                 "architecture": {n: net.options() for n, net in done.items()}}, net_tensors(done))
    save_cascade(cascade, out, training=asdict(cfg), report=report, faces=len(faces), scenes=len(scenes))
    partial.unlink(missing_ok=True)
    return out
