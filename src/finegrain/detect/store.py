"""Detector files: the six nets' weights and architecture, and the cascade settings, in one torch file."""

from __future__ import annotations

from dataclasses import asdict
from importlib import resources
from pathlib import Path

import torch

from finegrain.detect.cascade import Cascade, CascadeSettings
from finegrain.detect.nets import NETS
from finegrain.errors import DataError
from finegrain.utils import torch_save_atomic

FORMAT = "finegrain-face-detector"
VERSION = 1


def bundled_detector_path() -> Path:
    """The detector shipped inside the package (trained by ``scripts/train_default_detector.py``)."""
    return Path(str(resources.files("finegrain.assets").joinpath("face_detector.pt")))


def save_cascade(cascade: Cascade, path: str | Path, **metadata) -> Path:
    # Half precision halves the file; the nets are small and tolerate it (checked by a test against float32).
    weights = {name: {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
               for name, net in cascade.nets.items()}
    payload = {"format": FORMAT, "version": VERSION, "weights": weights,
               "architecture": {name: net.options() for name, net in cascade.nets.items()},
               "settings": asdict(cascade.settings), "metadata": metadata}
    torch_save_atomic(payload, Path(path))
    return Path(path)


def load_cascade(path: str | Path | None = None, **overrides) -> Cascade:
    """Load a detector file (``None``: the bundled default); ``overrides`` change its settings."""
    path = Path(path) if path is not None else bundled_detector_path()
    if not path.is_file():
        raise DataError(f"{path}: detector file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file becomes one clear message
        raise DataError(f"{path}: not a readable detector file ({type(error).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(f"{path}: not a finegrain face detector (no '{FORMAT}' header)")
    if payload.get("version") != VERSION:
        raise DataError(f"{path}: detector format version {payload.get('version')}, this finegrain reads {VERSION}")
    # Files written before nets had options hold fixed-normalisation nets throughout.
    architecture = payload.get("architecture") or {name: {} if name == "detect12" else {"window_contrast": False}
                                                   for name in NETS}
    nets = {}
    for name, cls in NETS.items():
        net = cls(**architecture[name])
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in payload["weights"][name].items()})
        nets[name] = net
    settings = CascadeSettings(**payload["settings"]).replace(**overrides)
    return Cascade(nets, settings)
