"""Detector files: the six nets' weights and architecture, and the cascade settings, in one artifact."""

from __future__ import annotations

from dataclasses import asdict
from importlib import resources
from pathlib import Path

import torch

from finegrain.artifact import read_artifact, tensors_under, write_artifact
from finegrain.detect.cascade import Cascade, CascadeSettings
from finegrain.detect.nets import NETS
from finegrain.errors import DataError

BUNDLED = "face_detector.safetensors"


def bundled_detector_path() -> Path:
    """The detector shipped inside the package (trained by ``scripts/train_default_detector.py``)."""
    return Path(str(resources.files("finegrain.assets").joinpath(BUNDLED)))


def net_tensors(nets: dict, half: bool = False) -> dict[str, torch.Tensor]:
    """Every net's weights under ``<net>.``; half precision halves a detector file (a test checks it is harmless)."""
    return {f"{name}.{k}": v.half() if half and v.is_floating_point() else v
            for name, net in nets.items() for k, v in net.state_dict().items()}


def load_net_weights(net: torch.nn.Module, tensors: dict[str, torch.Tensor], name: str) -> None:
    net.load_state_dict({k: v.float() if v.is_floating_point() else v
                         for k, v in tensors_under(tensors, name).items()})


def save_cascade(cascade: Cascade, path: str | Path, **metadata) -> Path:
    manifest = {"kind": "detector", "architecture": {name: net.options() for name, net in cascade.nets.items()},
                "settings": asdict(cascade.settings), "metadata": metadata}
    return write_artifact(path, manifest, net_tensors(cascade.nets, half=True))


def load_cascade(path: str | Path | None = None, **overrides) -> Cascade:
    """Load a detector file (``None``: the bundled default); ``overrides`` change its settings."""
    path = Path(path) if path is not None else bundled_detector_path()
    if not path.is_file():
        raise DataError(f"{path}: detector file not found")
    artifact = read_artifact(path, kinds=("detector",))
    nets = {}
    for name, cls in NETS.items():
        nets[name] = cls(**artifact.manifest["architecture"][name])
        load_net_weights(nets[name], artifact.tensors, name)
    settings = CascadeSettings(**artifact.manifest["settings"]).replace(**overrides)
    return Cascade(nets, settings)
