"""The faiss index types a gallery can use: how each is made, trained, searched, stored and memory-mapped.

- ``flat``: exact inner product over every vector. Best up to a few hundred thousand vectors.
- ``ivf``: vectors grouped into ``nlist`` k-means lists; a search scans the ``nprobe`` nearest lists,
  exactly. Needs training (on a sample), about the flat index's memory.
- ``ivfpq``: the same lists, each vector compressed to ``m`` bytes (product quantisation, 32 at 128-d), plus
  the full vectors to re-rank the best ``k_factor``·k candidates exactly. Memory-mapped, only the codes and
  the re-ranked rows are read: a gallery larger than RAM searches. Needs more vectors to train (256 codes per
  sub-vector); PQ scores alone put the true best first only ~3/4 of the time, hence the re-ranking.
- ``hnsw``: a navigable small-world graph over the full vectors; a search visits ``ef_search``
  candidates. No training, the fastest search, the slowest build, and removal rebuilds the graph.
"""

from __future__ import annotations

import math

import faiss
import numpy as np

from finegrain.errors import ConfigError

INDEX_TYPES = ("flat", "ivf", "ivfpq", "hnsw")
# Below these sizes training is refused: k-means wants >= 39 points per list (faiss warns below), and
# product quantisation learns 256 codes per sub-vector, so it needs 39 * 256 vectors.
MIN_TRAIN = {"ivf": 1_000, "ivfpq": 10_000}
HNSW_M = 32  # graph degree: 32 is faiss's usual choice for ~1M 128-d vectors at recall >= 0.95
EF_CONSTRUCTION = 40
DEFAULT_EF_SEARCH = 128  # bench/index_scale.py at 1M: recall@10 0.90 at 64, 0.95 at 128 (0.56 ms)
TRAIN_PER_LIST = 64  # sample size per list: well above faiss's 39 minimum, under its 256 maximum
K_FACTOR = 4  # ivfpq re-ranks 4·k PQ candidates with the full vectors,
MIN_CANDIDATES = 64  # and never fewer than 64: with k=1, 4 candidates miss the true best 8% of the time


def check_type(kind: str) -> str:
    if kind not in INDEX_TYPES:
        raise ConfigError(f"unknown --index-type {kind!r}; choose one of {', '.join(INDEX_TYPES)}")
    return kind


def needs_training(kind: str) -> bool:
    return kind in MIN_TRAIN


def nlist_for(n: int) -> int:
    """~4·sqrt(n) lists, but never fewer than 39 training vectors per list."""
    return max(1, min(round(4 * math.sqrt(n)), n // 39))


def default_nprobe(nlist: int) -> int:
    # Lists scanned per query: bench/index_scale.py measured recall@10 >= 0.95 at 1M vectors with this.
    return max(1, min(nlist, round(nlist / 64)))


def pq_bytes(dim: int) -> int:
    """Sub-vectors for PQ: the largest divisor of ``dim`` that leaves >= 4 dimensions each (32 bytes at 128-d)."""
    return max(m for m in range(1, dim // 4 + 1) if dim % m == 0) if dim >= 4 else 1


def create(kind: str, dim: int, n: int = 0) -> tuple[faiss.Index, dict]:
    """A new, empty index sized for ``n`` vectors, and the parameters to record in ``index.json``."""
    check_type(kind)
    ip = faiss.METRIC_INNER_PRODUCT  # the gallery holds unit vectors: inner product is cosine similarity
    if kind == "flat":
        return faiss.IndexFlatIP(dim), {}
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, ip)
        index.hnsw.efConstruction = EF_CONSTRUCTION
        index.hnsw.efSearch = DEFAULT_EF_SEARCH  # stored in the file: the default for searches
        return index, {"m": HNSW_M, "ef_construction": EF_CONSTRUCTION, "ef_search": DEFAULT_EF_SEARCH}
    nlist = nlist_for(n)
    spec = f"IVF{nlist},Flat" if kind == "ivf" else f"IVF{nlist},PQ{pq_bytes(dim)},RFlat"
    index = faiss.index_factory(dim, spec, ip)
    faiss.extract_index_ivf(index).nprobe = default_nprobe(nlist)
    params = {"nlist": nlist, "nprobe": default_nprobe(nlist)}
    if kind == "ivfpq":
        # index_factory turns on polysemous training (code reordering for Hamming filtering, unused here):
        # it made training ~7x slower.
        faiss.downcast_index(faiss.extract_index_ivf(index)).do_polysemous_training = False
        index.k_factor = K_FACTOR
        params.update(pq_bytes=pq_bytes(dim), k_factor=K_FACTOR)
    return index, params


def check_trainable(kind: str, n: int, where: str) -> None:
    if needs_training(kind) and n < MIN_TRAIN[kind]:
        raise ConfigError(f"{where}: --index-type {kind} needs at least {MIN_TRAIN[kind]:,} vectors to train its "
                          f"lists, and would hold {n:,}; use --index-type flat (exact, fast at this size)")


def search_params(kind: str, k: int, nprobe: int | None, ef_search: int | None,
                  stored: dict) -> faiss.SearchParameters | None:
    """Per-search parameters (faiss SearchParameters: the stored index is not changed, so threads can share it)."""
    if nprobe is not None and nprobe < 1 or ef_search is not None and ef_search < 1:
        raise ConfigError("--nprobe and --ef-search must be at least 1")
    ivf = faiss.SearchParametersIVF(nprobe=nprobe) if nprobe is not None else None
    if kind == "ivfpq":  # the refine wrapper's parameters carry the IVF ones
        k_factor = max(stored.get("k_factor", K_FACTOR), MIN_CANDIDATES / k)
        return faiss.IndexRefineSearchParameters(k_factor=k_factor, base_index_params=ivf)
    if kind == "ivf":
        return ivf
    if kind == "hnsw" and ef_search is not None:
        return faiss.SearchParametersHNSW(efSearch=ef_search)
    return None


def read(path: str, kind: str, mmap: bool) -> faiss.Index:
    """Read an index file; with ``mmap`` its bulk stays in the page cache instead of the process's memory.

    Every type maps with faiss 1.15's ``IO_FLAG_MMAP_IFC``: the vectors of ``flat``, ``hnsw`` (graph included)
    and ivfpq's re-ranking copy, and the inverted lists of ``ivf`` and ``ivfpq`` (measured: the process's
    anonymous memory does not grow on load). The older ``IO_FLAG_MMAP`` maps only inverted lists, not flat
    or hnsw, and fails combined with it. A mapped index is read-only: adding to it aborts the process, so
    callers never map for writing.
    """
    return faiss.read_index(path, faiss.IO_FLAG_MMAP_IFC) if mmap else faiss.read_index(path)


def remove_rows(index: faiss.Index, kind: str, drop: np.ndarray, dim: int) -> faiss.Index:
    """Remove rows ``drop`` (sorted) so the remaining vectors keep metadata order, ids 0..n-1."""
    if kind == "flat":
        index.remove_ids(drop)  # IndexFlat compacts its ids itself
        return index
    # IVF keeps survivors' old ids and a graph cannot drop nodes: re-add the survivors instead. Every type
    # here stores exact vectors (ivfpq in its re-ranking copy), and reset() keeps what training learned.
    vectors = np.empty((index.ntotal, dim), np.float32)
    index.reconstruct_n(0, index.ntotal, vectors)
    index.reset()
    index.add(vectors[np.setdiff1d(np.arange(len(vectors)), drop)])
    return index
