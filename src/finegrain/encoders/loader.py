"""``load_encoder``: the one way from a run folder or model file to an encoder."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import torch

from finegrain.artifact import LegacyFileError, read_artifact
from finegrain.devices import resolve_device
from finegrain.encoders.encoder import Encoder, SingleEncoder
from finegrain.encoders.meta import MetaEncoder
from finegrain.encoders.tta import parse_tta
from finegrain.errors import FinegrainError

MODEL_FILE = "model.safetensors"
LEGACY_MODEL_FILE = "model.pt"
MODEL_KINDS = ("embedding", "score", "meta")


class WrongKindError(FinegrainError):
    """A model of the wrong kind for what was asked (scores where embeddings are needed, or the reverse)."""


# Models shipped inside the package, usable by name wherever a run folder or model file is taken.
BUNDLED_MODELS = {"face": "face_model.safetensors"}  # scripts/make_face_model.py


def bundled_model_path(name: str) -> Path:
    return Path(str(resources.files("finegrain.assets").joinpath(BUNDLED_MODELS[name])))


def resolve_model_path(run: Path | str) -> Path:
    """A run folder's model file, the file itself, or a bundled model's name (``face``) when no such path exists."""
    path = Path(run)
    if str(run) in BUNDLED_MODELS and not path.exists():
        path = bundled_model_path(str(run))
        if not path.exists():
            raise FinegrainError(f"the bundled {run!r} model is missing from this installation ({path}); rebuild it "
                                 "with scripts/make_face_model.py")
        return path
    if path.is_dir():
        if not (path / MODEL_FILE).exists() and (path / LEGACY_MODEL_FILE).exists():
            raise LegacyFileError(f"{path / LEGACY_MODEL_FILE} is a torch pickle from finegrain 0.1 and is not loaded "
                                  f"as it is; convert it once with 'finegrain convert {path}'")
        path = path / MODEL_FILE
    if not path.exists():
        raise FinegrainError(f"{run}: no trained model here (expected a run folder with {MODEL_FILE}, or a model file)")
    return path


def load_encoder(run: Path | str, need: str | None = None, tta: str | Sequence[str] | None = None,
                 normalize: bool = True, batch_size: int = 256, device: str | torch.device = "cpu") -> Encoder:
    """The encoder of a run folder or model file (a combined model too).

    ``need``: ``"embedding"`` or ``"score"``; any other kind of model is a ``WrongKindError`` naming both.
    ``tta``: ``None`` uses the model's default (usually none); ``"none"`` or ``""`` turns it off.
    ``normalize=False`` ignores a stored feature normaliser (to fit a new one, or compare).
    ``device``: where the network computes (``--device``: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or a
    ``torch.device``); a GPU this machine lacks is a ``DeviceError`` before the file is read.
    """
    target = device if isinstance(device, torch.device) else resolve_device(device)
    path = resolve_model_path(run)
    artifact = read_artifact(path)
    if artifact.kind not in MODEL_KINDS:
        raise WrongKindError(f"{path} is a {artifact.kind} file, not a model (an embedding, scoring or combined "
                             "model made by 'finegrain train' or 'finegrain combine')")
    chosen = None if tta is None else parse_tta(tta)
    build = MetaEncoder if artifact.kind == "meta" else SingleEncoder
    encoder = build.from_artifact(artifact.manifest, artifact.tensors, path, tta=chosen, normalize=normalize,
                                  batch_size=batch_size, path=path)
    check_output(encoder, need, run)
    return encoder.to(target) if target.type != "cpu" else encoder


def check_output(encoder: Encoder, need: str | None, where: object) -> None:
    if need is None or encoder.output == need:
        return
    if need == "embedding":
        raise WrongKindError(f"{where} is a scoring model (trained with --task score): it gives one score per image, "
                             "and this needs embeddings (a model trained with --task embed)")
    raise WrongKindError(f"{where} is an embedding model: it gives embeddings, and this needs scores "
                         "(a model trained with --task score)")
