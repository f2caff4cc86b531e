"""Score images with a trained scoring model (``--task score``): batched, no gradients, streaming."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from finegrain.errors import FinegrainError
from finegrain.infer.embedder import Embedder
from finegrain.models import ScoringModel


class Scorer(Embedder):
    """An ``Embedder`` whose model outputs one number per image: ``score_array`` / ``score_paths``."""

    @classmethod
    def load(cls, run: Path | str, batch_size: int = 256) -> Scorer:
        scorer = super().load(run, batch_size)
        if not isinstance(scorer.model, ScoringModel):
            raise FinegrainError(f"{run}: this is an embedding model; scoring needs a model trained with --task score")
        return scorer  # type: ignore[return-value]

    def score_array(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Scores (float32, one per image) of uint8 images already resized to ``image_size``."""
        return self.embed_array(images).reshape(-1)

    def score_paths(self, paths: Sequence[Path]) -> tuple[list[Path], np.ndarray, list]:
        """(scored paths, their scores, problems with the others) for image files."""
        good, scores, problems = [], [], []
        for g, s, p in self.embed_paths([Path(x) for x in paths]):
            good += g
            scores.append(s.reshape(-1))
            problems += p
        return good, (np.concatenate(scores) if scores else np.zeros(0, np.float32)), problems
