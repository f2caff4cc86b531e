"""Several gallery indexes searched as one: each shard is searched, and the top-k are merged by similarity.

Shards must hold one model's vectors made one way (fingerprint and TTA), so a query is embedded once and
its similarities compare across shards. An item in two shards is reported once, at its best similarity.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np

from finegrain.errors import ConfigError
from finegrain.index.gallery import GalleryIndex, Hit


def search_shards(shards: Sequence[GalleryIndex], queries: np.ndarray, k: int = 20, nprobe: int | None = None,
                  ef_search: int | None = None) -> list[list[Hit]]:
    """Top-``k`` over all shards for each query (``nprobe``/``ef_search`` apply to the shards of those types)."""
    types = {s.kind for s in shards}
    if nprobe is not None and not types & {"ivf", "ivfpq"}:
        raise ConfigError(f"--nprobe applies to ivf and ivfpq indexes; this one is {'/'.join(sorted(types))}")
    if ef_search is not None and "hnsw" not in types:
        raise ConfigError(f"--ef-search applies to hnsw indexes; this one is {'/'.join(sorted(types))}")
    per_shard = [s.search(queries, k, nprobe=nprobe, ef_search=ef_search) for s in shards]
    if len(shards) == 1:
        return per_shard[0]
    merged = []
    for rows in zip(*per_shard):
        best: dict[str, Hit] = {}
        for hit in (h for row in rows for h in row):
            if hit.path not in best or hit.similarity > best[hit.path].similarity:
                best[hit.path] = hit
        merged.append(heapq.nlargest(k, best.values(), key=lambda h: h.similarity))
    return merged
