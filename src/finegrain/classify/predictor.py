"""``Classifier``: a classification model file -> class probabilities for images.

Linear and cosine heads give the softmax of their logits. A ``--head knn`` model gives, per class, the highest
cosine similarity of the image to that class's training images (so the top class is the nearest neighbour's),
turned into probabilities by a softmax at ``KNN_TEMPERATURE``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from finegrain.artifact import read_artifact
from finegrain.devices import model_device, resolve_device
from finegrain.encoders import SingleEncoder, resolve_model_path
from finegrain.encoders.loader import WrongKindError
from finegrain.errors import Problem
from finegrain.models import ClassifierModel

KNN_TEMPERATURE = 0.05


@dataclass
class Predictions:
    paths: list[Path]
    probabilities: np.ndarray  # N × classes
    problems: list[Problem]


class Classifier:
    def __init__(self, encoder: SingleEncoder, info: dict, gallery: tuple[torch.Tensor, torch.Tensor] | None = None):
        self.encoder, self.info, self.gallery = encoder, info, gallery
        self.classes: list[str] = list(info["classes"])

    @classmethod
    def load(cls, run: str | Path, device: str | torch.device = "cpu") -> Classifier:
        target = device if isinstance(device, torch.device) else resolve_device(device)
        path = resolve_model_path(run)
        artifact = read_artifact(path)
        info = artifact.manifest.get("classifier")
        if not info:
            raise WrongKindError(f"{run} is not a classifier (train one with --task classify): it has no classes "
                                 "to predict")
        # Plain network outputs: a 1-NN gallery was embedded before any normaliser a later `finegrain normalize`
        # may store, and softmax heads read the network, not the embedding.
        encoder = SingleEncoder.from_artifact(artifact.manifest, artifact.tensors, path, tta=(), normalize=False,
                                              path=path).to(target)
        gallery = None
        if info["head"] == "knn":
            gallery = (artifact.tensors["gallery.vectors"], artifact.tensors["gallery.labels"])
        return cls(encoder, info, gallery)

    @property
    def image_size(self) -> int:
        return self.encoder.image_size

    @torch.inference_mode()
    def probabilities(self, images: np.ndarray, batch: int = 256) -> np.ndarray:
        """uint8 images at ``image_size`` (N×S×S×3) → N × classes probabilities."""
        out = [self._batch(images[i:i + batch]) for i in range(0, len(images), batch)]
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)

    def _batch(self, images: np.ndarray) -> np.ndarray:
        if self.gallery is None:
            model: ClassifierModel = self.encoder.model
            logits = model.logits(self.encoder.preprocess.to_tensor(images).to(model_device(model)))
            return torch.softmax(logits.float(), dim=1).cpu().numpy()
        vectors, labels = self.gallery
        similarity = torch.from_numpy(self.encoder.encode_array(images)) @ vectors.T
        best = torch.full((len(images), len(self.classes)), -1.0)
        best = best.scatter_reduce(1, labels.expand(len(images), -1), similarity, reduce="amax")
        return torch.softmax(best / KNN_TEMPERATURE, dim=1).numpy()

    def predict_files(self, paths: Sequence[Path | str], batch: int = 256) -> Predictions:
        """Every readable file's probabilities; the unreadable ones are listed, not raised."""
        done: list[Path] = []
        parts: list[np.ndarray] = []
        problems: list[Problem] = []
        for part in self.encoder.load_paths([Path(p) for p in paths], batch_size=batch):
            done += part.paths
            problems += part.problems
            if len(part.paths):
                parts.append(self.probabilities(part.vectors))
        probabilities = np.concatenate(parts) if parts else np.zeros((0, len(self.classes)), np.float32)
        return Predictions(done, probabilities, problems)

    def top(self, probabilities: np.ndarray, k: int) -> list[list[dict]]:
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        return [[{"class": self.classes[c], "probability": round(float(row[c]), 6)} for c in top]
                for row, top in zip(probabilities, order)]
