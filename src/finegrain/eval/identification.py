"""Identification metrics ("who is this?"): identity ranks and CMC curves for gallery/probe evaluation.

Retrieval metrics (``retrieval.py``) ask whether similar images come back; identification asks whether
the *identity* of a probe is found. A probe's rank is the position, in the gallery sorted by similarity,
of the first gallery image with the probe's label; the CMC curve gives, for each r, the fraction of
probes found within rank r (so cmc[0] is rank-1 accuracy). Probes whose identity is not in the gallery
cannot be found at any rank; they are left out of the curve and counted, rather than counted as misses,
so that an open-set probe list does not silently lower the closed-set numbers.

Gallery labels may be None: such images are distractors (they can push the right identity down the
ranking, as in MegaFace-style evaluations) but never count as a match.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np

from finegrain.errors import DataError
from finegrain.utils import atomic_write

REPORT_RANKS = (1, 5, 10)
DEFAULT_MAX_RANK = 20
# Similarity rows handled at a time: bounds the Q×G temporaries to ~4M entries (tens of MB).
_CHUNK_ELEMENTS = 4_000_000

Label = Hashable


def identity_codes(gallery_labels: Sequence[Label | None]) -> tuple[dict[Label, int], np.ndarray]:
    """Integer code per gallery identity (in order of first appearance); -1 for unlabelled gallery items."""
    ids: dict[Label, int] = {}
    codes = np.empty(len(gallery_labels), dtype=np.int64)
    for i, label in enumerate(gallery_labels):
        codes[i] = -1 if label is None else ids.setdefault(label, len(ids))
    return ids, codes


def _check_shape(similarity: np.ndarray, n_probes: int, n_gallery: int) -> np.ndarray:
    similarity = np.asarray(similarity)
    if similarity.ndim != 2 or similarity.shape != (n_probes, n_gallery):
        raise DataError(f"similarity matrix of shape {similarity.shape} for {n_probes} probes "
                        f"and {n_gallery} gallery items")
    return similarity


def identity_ranks(similarity: np.ndarray, probe_labels: Sequence[Label | None],
                   gallery_labels: Sequence[Label | None]) -> np.ndarray:
    """1-based rank of each probe's first correct gallery item; 0 where the identity is absent from the gallery.

    Ties count against the probe: an impostor exactly as similar as the best correct item ranks above
    it. A collapsed model (every similarity equal) therefore scores 0, not a perfect rank-1.
    Computed as 1 + the number of impostors at least as similar as the best correct item, which equals
    the position in the sorted gallery without sorting; rows are processed in chunks to bound memory.
    """
    similarity = _check_shape(similarity, len(probe_labels), len(gallery_labels))
    ids, gallery = identity_codes(gallery_labels)
    probes = np.array([-1 if label is None else ids.get(label, -1) for label in probe_labels], dtype=np.int64)
    ranks = np.zeros(len(probes), dtype=np.int64)
    step = max(1, _CHUNK_ELEMENTS // max(1, len(gallery)))
    for start in range(0, len(probes), step):
        rows = slice(start, start + step)
        sim, codes = similarity[rows], probes[rows]
        correct = gallery[None, :] == codes[:, None]  # Q×G: gallery item has the probe's identity
        best = np.where(correct, sim, -np.inf).max(axis=1, initial=-np.inf)
        impostors = ((sim >= best[:, None]) & ~correct).sum(axis=1)
        ranks[rows] = np.where(codes >= 0, impostors + 1, 0)
    return ranks


def cmc_from_ranks(ranks: np.ndarray, max_rank: int = DEFAULT_MAX_RANK) -> np.ndarray:
    """CMC over the probes present in the gallery (rank > 0): cmc[r-1] = fraction found within rank r."""
    if max_rank < 1:
        raise DataError(f"max_rank must be at least 1, got {max_rank}")
    present = np.asarray(ranks)[np.asarray(ranks) > 0]
    if len(present) == 0:
        raise DataError("no probe's identity is in the gallery, so identification cannot be measured")
    found_at = np.bincount(np.minimum(present, max_rank + 1), minlength=max_rank + 2)[1 : max_rank + 1]
    return np.cumsum(found_at) / len(present)


def cmc_curve(similarity: np.ndarray, probe_labels: Sequence[Label | None], gallery_labels: Sequence[Label | None],
              max_rank: int = DEFAULT_MAX_RANK) -> np.ndarray:
    """Cumulative match characteristic, length ``max_rank``, over probes whose identity is in the gallery."""
    return cmc_from_ranks(identity_ranks(similarity, probe_labels, gallery_labels), max_rank)


def rank_k_accuracy(similarity: np.ndarray, probe_labels: Sequence[Label | None],
                    gallery_labels: Sequence[Label | None], k: int = 1) -> float:
    """Fraction of probes (with an identity in the gallery) whose identity appears within the top ``k``."""
    return float(cmc_curve(similarity, probe_labels, gallery_labels, max_rank=k)[k - 1])


def report_from_ranks(ranks: np.ndarray, gallery_labels: Sequence[Label | None],
                      max_rank: int = DEFAULT_MAX_RANK) -> dict:
    """The identification summary from precomputed ranks (see ``identification_report``)."""
    ranks = np.asarray(ranks)
    cmc = cmc_from_ranks(ranks, max(max_rank, *REPORT_RANKS))
    ids, _ = identity_codes(gallery_labels)
    return {
        **{f"rank_{k}": float(cmc[k - 1]) for k in REPORT_RANKS},
        "cmc": [float(v) for v in cmc],
        "probes": len(ranks),
        "probes_evaluated": int((ranks > 0).sum()),
        "probes_absent": int((ranks == 0).sum()),  # identity not in the gallery: excluded from the curve
        "gallery_images": len(gallery_labels),
        "gallery_identities": len(ids),
        "gallery_unlabelled": sum(label is None for label in gallery_labels),
    }


def identification_report(similarity: np.ndarray, probe_labels: Sequence[Label | None],
                          gallery_labels: Sequence[Label | None], max_rank: int = DEFAULT_MAX_RANK) -> dict:
    """rank_1, rank_5, rank_10, the CMC list (at least 10 long) and the probe/gallery counts.

    ``probes_absent`` counts the probes whose identity has no gallery image; the rates are over the others.
    """
    return report_from_ranks(identity_ranks(similarity, probe_labels, gallery_labels), gallery_labels, max_rank)


def cmc_png(cmc: Sequence[float] | np.ndarray, path: Path | str, title: str = "") -> Path:
    """Plot the CMC curve (rank 1..len(cmc)) with rank-1/5/10 marked; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    cmc = np.asarray(cmc, dtype=np.float64)
    ranks = np.arange(1, len(cmc) + 1)
    fig, ax = plt.subplots(figsize=(5, 4), dpi=110)
    ax.plot(ranks, cmc, marker="o", ms=3, lw=1.5)
    for k in REPORT_RANKS:
        if k <= len(cmc):
            ax.annotate(f"{cmc[k - 1]:.3f}", (k, cmc[k - 1]), textcoords="offset points", xytext=(4, -12), fontsize=8)
    ax.set_xlim(0.5, len(cmc) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # ranks are whole numbers
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("rank")
    ax.set_ylabel("identification rate")
    ax.grid(alpha=0.3)
    ax.set_title(f"{title}{' - ' if title else ''}CMC: rank-1 {cmc[0]:.3f}", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return path
