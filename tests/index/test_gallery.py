"""The gallery store: exact cosine search, generations swapped atomically, removal, paths as ids."""

import json

import numpy as np
import pytest

from finegrain.errors import FinegrainError
from finegrain.index.gallery import GalleryIndex, IndexBinding


def _unit(n, d, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def binding(tmp_path, make_model):
    return IndexBinding.from_model(make_model(tmp_path / "m" / "model.safetensors", embedding_size=8))


def test_search_matches_brute_force_cosine(tmp_path):
    gallery, queries = _unit(500, 16), _unit(7, 16, seed=1)
    index = GalleryIndex(16)
    paths = [tmp_path / f"g{i}.png" for i in range(500)]
    index.add(gallery, paths, [str(i % 5) for i in range(500)])
    hits = index.search(queries, k=10)
    expected = np.argsort(-(queries @ gallery.T), axis=1)[:, :10]
    for row, exp in zip(hits, expected):
        assert [h.path for h in row] == [str(paths[i]) for i in exp]
        sims = [h.similarity for h in row]
        assert sims == sorted(sims, reverse=True)
    assert np.allclose(index.vectors(), gallery)


def test_saves_generations_and_skips_known_paths(tmp_path, binding):
    source = tmp_path / "m" / "model.safetensors"
    vecs = _unit(6, 8)
    paths = [tmp_path / f"img{i}.jpg" for i in range(6)]
    index = GalleryIndex(8, binding=binding)
    assert index.add(vecs[:4], paths[:4], ["a"] * 4) == 4
    index.save(tmp_path / "idx", source)
    # A second pass repeats two known paths (one of them relative to another folder): only two are new.
    assert index.add(vecs[2:], paths[2:], ["b"] * 4) == 2
    index.save(tmp_path / "idx", source)
    loaded = GalleryIndex.load(tmp_path / "idx")
    assert len(loaded) == 6 and [m["path"] for m in loaded.meta] == [str(p) for p in paths]
    assert [m["label"] for m in loaded.meta] == ["a"] * 4 + ["b"] * 2
    assert loaded.search(vecs[5:6], k=1)[0][0].path == str(paths[5])
    # Only the current generation and the bound model remain.
    names = sorted(p.name for p in (tmp_path / "idx").iterdir())
    assert names == ["gen-000002", "index.json", binding.model_file]
    info = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert info["count"] == 6 and info["encoder"]["fingerprint"] == binding.fingerprint


def test_a_stale_generation_is_ignored_and_cleaned(tmp_path, binding):
    index = GalleryIndex(8, binding=binding)
    index.add(_unit(3, 8), [tmp_path / f"{i}.jpg" for i in range(3)])
    index.save(tmp_path / "idx", tmp_path / "m" / "model.safetensors")
    # A save killed after writing generation 2 but before switching to it leaves it behind.
    (tmp_path / "idx" / "gen-000002").mkdir()
    (tmp_path / "idx" / "gen-000002" / "meta.jsonl").write_text("{}\n")
    assert len(GalleryIndex.load(tmp_path / "idx")) == 3
    again = GalleryIndex.load(tmp_path / "idx")
    again.add(_unit(1, 8, seed=4), [tmp_path / "new.jpg"])
    again.save(tmp_path / "idx")
    assert len(GalleryIndex.load(tmp_path / "idx")) == 4


def test_remove_paths_and_folders(tmp_path):
    index = GalleryIndex(8)
    paths = [tmp_path / "a" / "1.jpg", tmp_path / "a" / "2.jpg", tmp_path / "b" / "1.jpg", tmp_path / "ab.jpg"]
    vecs = _unit(4, 8)
    index.add(vecs, paths, ["x", "x", "y", None])
    removed, unmatched = index.remove([tmp_path / "a", tmp_path / "zzz.jpg"])
    assert removed == 2 and unmatched == [str(tmp_path / "zzz.jpg")]
    assert [m["path"] for m in index.meta] == [str(paths[2]), str(paths[3])]  # "ab.jpg" is not under "a/"
    assert np.allclose(index.vectors(), vecs[2:])
    assert index.search(vecs[3:4], k=1)[0][0].path == str(paths[3])


def test_dimension_mismatch_missing_and_old_indexes_are_clear_errors(tmp_path):
    index = GalleryIndex(8)
    with pytest.raises(FinegrainError, match="embedding size 4"):
        index.add(_unit(2, 4), ["a", "b"])
    with pytest.raises(FinegrainError, match="not a finegrain index"):
        GalleryIndex.load(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"dim": 8, "count": 0, "tta": []}))
    with pytest.raises(FinegrainError, match="finegrain convert"):
        GalleryIndex.load(tmp_path)
    with pytest.raises(FinegrainError, match="binding"):
        GalleryIndex(8).save(tmp_path / "new")
