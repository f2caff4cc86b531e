"""Retrieval metrics on top of pytorch-metric-learning's AccuracyCalculator (faiss k-NN).

Adds what PML lacks: recall@k (a query counts as found when any of its top k shares its label)
and MAP@k for a fixed k (the whale-fluke top-20 task), computed from the same k-NN labels.
"""

from __future__ import annotations

import numpy as np
import torch
from pytorch_metric_learning.utils import accuracy_calculator as ac

RECALL_KS = (1, 5, 10, 20)
MAP_K = 20


def _not_lone(knn_labels, query_labels, not_lone_query_mask):
    return ac.try_getting_not_lone_labels(knn_labels, query_labels, not_lone_query_mask)


class RetrievalCalculator(ac.AccuracyCalculator):
    """AccuracyCalculator plus recall_at_{1,5,10,20} and map_at_20."""

    def requires_knn(self):
        return super().requires_knn() + [f"recall_at_{k}" for k in RECALL_KS] + [f"map_at_{MAP_K}"]

    def determine_k(self, bin_counts, num_reference_embeddings, ref_includes_query):
        # Enough neighbours for R-precision (the largest class) and for the fixed-k metrics.
        k = max(int(torch.max(bin_counts).item()) - int(ref_includes_query), max(RECALL_KS), MAP_K)
        return min(k, num_reference_embeddings - int(ref_includes_query))

    def _recall(self, k, knn_labels, query_labels, not_lone_query_mask, **kwargs):
        knn_labels, query_labels = _not_lone(knn_labels, query_labels, not_lone_query_mask)
        if knn_labels is None:
            return float("nan")
        hit = (knn_labels[:, :k] == query_labels[:, None]).any(dim=1)
        return hit.float().mean().item()

    def calculate_recall_at_1(self, **kwargs):
        return self._recall(1, **kwargs)

    def calculate_recall_at_5(self, **kwargs):
        return self._recall(5, **kwargs)

    def calculate_recall_at_10(self, **kwargs):
        return self._recall(10, **kwargs)

    def calculate_recall_at_20(self, **kwargs):
        return self._recall(20, **kwargs)

    def calculate_map_at_20(self, knn_labels, query_labels, not_lone_query_mask, ref_includes_query,
                            label_counts, **kwargs):
        knn_labels, query_labels = _not_lone(knn_labels, query_labels, not_lone_query_mask)
        if knn_labels is None:
            return float("nan")
        return ac.mean_average_precision(
            knn_labels[:, :MAP_K], query_labels[:, None], ref_includes_query, label_counts,
            False, False, ac.EQUALITY,
        )


NAMES = {
    "precision_at_1": "precision_at_1",
    "r_precision": "r_precision",
    "mean_average_precision_at_r": "map_at_r",
    **{f"recall_at_{k}": f"recall_at_{k}" for k in RECALL_KS},
    f"map_at_{MAP_K}": f"map_at_{MAP_K}",
}


def retrieval_metrics(
    embeddings: np.ndarray,
    labels: np.ndarray,
    reference: np.ndarray | None = None,
    reference_labels: np.ndarray | None = None,
) -> dict[str, float]:
    """Leave-one-out retrieval within ``embeddings`` (or queries against a separate reference set)."""
    calc = RetrievalCalculator(include=tuple(NAMES), device=torch.device("cpu"))
    q = torch.as_tensor(np.ascontiguousarray(embeddings, dtype=np.float32))
    ql = torch.as_tensor(np.asarray(labels))
    if reference is None:
        raw = calc.get_accuracy(q, ql)
    else:
        r = torch.as_tensor(np.ascontiguousarray(reference, dtype=np.float32))
        raw = calc.get_accuracy(q, ql, r, torch.as_tensor(np.asarray(reference_labels)))
    return {NAMES[k]: float(v) for k, v in raw.items()}
