import numpy as np
import pytest

from finegrain.errors import FinegrainError
from finegrain.index.gallery import GalleryIndex, build_index


def _unit(n, d, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_search_matches_brute_force_cosine():
    gallery, queries = _unit(500, 16), _unit(7, 16, seed=1)
    index = GalleryIndex(16)
    index.add(gallery, [f"g{i}.png" for i in range(500)], [str(i % 5) for i in range(500)])
    hits = index.search(queries, k=10)
    expected = np.argsort(-(queries @ gallery.T), axis=1)[:, :10]
    for row, exp in zip(hits, expected):
        assert [h.path for h in row] == [f"g{i}.png" for i in exp]
        sims = [h.similarity for h in row]
        assert sims == sorted(sims, reverse=True)


def test_incremental_add_persists_and_skips_known_paths(tmp_path):
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    vecs = _unit(6, 8)
    paths = [f"img{i}.jpg" for i in range(6)]
    batches = [(paths[:4], vecs[:4], ["a"] * 4)]
    _, added = build_index(iter(batches), tmp_path / "idx", 8, model)
    assert added == 4
    # The second run repeats two known paths: only the two new ones are added.
    _, added = build_index(iter([(paths[2:], vecs[2:], ["b"] * 4)]), tmp_path / "idx", 8, model)
    assert added == 2
    loaded = GalleryIndex.load(tmp_path / "idx")
    assert len(loaded) == 6 and [m["path"] for m in loaded.meta] == paths
    assert (tmp_path / "idx" / "model.pt").read_bytes() == b"weights"
    assert loaded.search(vecs[5:6], k=1)[0][0].path == "img5.jpg"


def test_dimension_mismatch_and_missing_index_are_clear_errors(tmp_path):
    index = GalleryIndex(8)
    with pytest.raises(FinegrainError, match="embedding size 4"):
        index.add(_unit(2, 4), ["a", "b"])
    with pytest.raises(FinegrainError, match="not a finegrain index"):
        GalleryIndex.load(tmp_path)
