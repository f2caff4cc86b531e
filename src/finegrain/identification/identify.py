"""Who is this? Each image's nearest identity in a labelled gallery index, or "unknown"."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from finegrain.errors import ConfigError, DataError, FinegrainError, Problem
from finegrain.identification.nearest import Identification, nearest_identity
from finegrain.index.build import index_encoder

DEFAULT_THRESHOLD = 0.5
DEFAULT_ALTERNATIVES = 3


def identify(index: Path | str, paths: Sequence[Path], threshold: float = DEFAULT_THRESHOLD,
             alternatives: int = DEFAULT_ALTERNATIVES, batch_size: int = 256,
             problems: list[Problem] | None = None, device: str = "cpu") -> Iterator[tuple[Path, Identification]]:
    """Yield (path, answer) per readable image, embedded exactly as the index's gallery was (its model,
    TTA and normaliser); unreadable images are appended to ``problems`` (an error when it is None)."""
    if not -1.0 <= threshold <= 1.0:
        raise ConfigError(f"--threshold is a cosine similarity between -1 and 1, got {threshold}")
    if alternatives < 0:
        raise ConfigError(f"-k: the number of alternative identities must be 0 or more, got {alternatives}")
    gallery, encoder = index_encoder(index, batch_size=batch_size, device=device)
    labels = gallery.labels
    if all(label is None for label in labels):
        raise FinegrainError(f"{index}: the index has no labels (it was built from unlabelled images), so it cannot "
                             "name anyone; rebuild it from a labelled folder, manifest or list with 'finegrain index'")
    vectors = gallery.vectors()
    bad: list[Problem] = []
    for part in encoder.encode_paths(paths):
        bad += part.problems
        yield from zip(part.paths, nearest_identity(part.vectors @ vectors.T, labels, threshold, alternatives))
    if problems is not None:
        problems += bad
    elif bad:
        raise DataError(f"{len(bad)} image(s) could not be read", bad)
