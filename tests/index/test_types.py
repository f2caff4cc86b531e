"""Index types (flat, ivf, ivfpq, hnsw): agreement with exact search, persistence memory-mapped, removal,
shards searched as one, the streaming journal, and one-line refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from finegrain.cli import main
from finegrain.errors import ConfigError, FinegrainError
from finegrain.index.gallery import GalleryError, GalleryIndex, IndexBinding
from finegrain.index.journal import Journal
from finegrain.index.shards import search_shards
from finegrain.index.stream import append_parts, finish, open_journal

N, D = 10_000, 16  # ivfpq's training minimum


def _clustered(n: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around 100 centres, like embeddings of 100 identities."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(100, D))[rng.integers(0, 100, n)] + 0.3 * rng.normal(size=(n, D))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    gallery = _clustered(N)
    rng = np.random.default_rng(1)  # queries: new images of gallery items (a gallery item plus noise)
    queries = gallery[rng.integers(0, N, 200)] + 0.1 * rng.normal(size=(200, D)).astype(np.float32)
    return gallery, queries / np.linalg.norm(queries, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def binding(tmp_path_factory, make_model):
    model = make_model(tmp_path_factory.mktemp("m") / "model.safetensors", embedding_size=D)
    return model, IndexBinding.from_model(model)


def _paths(n: int, start: int = 0) -> list[str]:
    return [f"/gallery/{i:06d}.png" for i in range(start, start + n)]


def _build(out, kind, vectors, binding, save_every=2_500) -> GalleryIndex:
    """Through the streaming path `finegrain index` uses: journal, checkpoints, training, one save."""
    model, bound = binding
    index = GalleryIndex(D, binding=bound, kind=kind)
    journal = open_journal(out, index, rebuild=False)
    paths = _paths(len(vectors))
    parts = ((vectors[s:s + 1000], paths[s:s + 1000], [None] * 1000) for s in range(0, len(vectors), 1000))
    append_parts(journal, parts, save_every)
    return finish(out, index, journal, model)


@pytest.mark.parametrize("kind", ["ivf", "ivfpq", "hnsw"])
def test_index_types_agree_with_flat_search(tmp_path, data, binding, kind):
    gallery, queries = data
    flat = _build(tmp_path / "flat", "flat", gallery, binding)
    exact = [row[0].path for row in flat.search(queries, k=10)]
    built = _build(tmp_path / kind, kind, gallery, binding)
    loaded = GalleryIndex.load(tmp_path / kind, mmap=True)
    assert loaded.kind == kind and loaded.read_only and len(loaded) == N
    assert json.loads((tmp_path / kind / "index.json").read_text())["index"]["type"] == kind
    for index in (built, loaded):
        top1 = [row[0].path for row in index.search(queries, k=10)]
        assert np.mean([a == b for a, b in zip(top1, exact)]) >= 0.95
    if kind != "hnsw":  # more lists scanned: at least as close to exact
        assert np.mean([r[0].path == e for r, e in zip(loaded.search(queries, 10, nprobe=64), exact)]) >= 0.98
    with pytest.raises(FinegrainError, match="memory-mapped"):
        loaded.add(gallery[:1], ["/new.png"])
    # Removal keeps metadata order: every survivor is still found as its own nearest neighbour.
    drop = [f"/gallery/{i:06d}.png" for i in range(0, N, 7)]
    assert built.remove(drop) == (len(drop), [])
    keep = [i for i in range(N) if i % 7][:300]
    found = [row[0].path for row in built.search(gallery[keep], k=1)]
    assert np.mean([f == f"/gallery/{i:06d}.png" for f, i in zip(found, keep)]) >= 0.98
    assert np.allclose(built.vectors()[:5], gallery[keep[:5]], atol=1e-6)


def test_shards_search_as_one_gallery(tmp_path, data, binding):
    gallery, queries = data
    whole = _build(tmp_path / "whole", "flat", gallery[:4000], binding)
    a = _build(tmp_path / "a", "flat", gallery[:2000], binding)
    b = GalleryIndex(D, binding=binding[1], kind="hnsw")
    b.add(gallery[2000:4000], _paths(2000, 2000), resolved=True)
    merged = search_shards([a, b], queries, k=5)
    expected = whole.search(queries, k=5)
    agree = [[h.path for h in m] == [h.path for h in e] for m, e in zip(merged, expected)]
    assert np.mean(agree) >= 0.95 and all(len(m) == 5 for m in merged)
    assert all([h.similarity for h in m] == sorted((h.similarity for h in m), reverse=True) for m in merged)
    with pytest.raises(ConfigError, match="--nprobe applies to ivf"):
        search_shards([a, b], queries, k=5, nprobe=4)


def test_too_small_to_train_is_refused_in_one_line(tmp_path, data, binding):
    with pytest.raises(ConfigError) as err:
        _build(tmp_path / "idx", "ivfpq", data[0][:500], binding)
    assert "at least 10,000" in str(err.value) and "--index-type flat" in str(err.value)
    assert "\n" not in str(err.value)


def test_journal_cuts_rows_after_its_checkpoint_and_knows_when_it_is_spent(tmp_path, data):
    settings = {"fingerprint": "f", "tta": [], "rebuild": False}
    journal = Journal.open(tmp_path, settings, D, generation=0)
    journal.append(data[0][:10], _paths(10), [None] * 10)
    journal.checkpoint()
    journal.append(data[0][10:15], _paths(5, 10), [None] * 5)  # written, never checkpointed: a kill here
    with open(tmp_path / ".pending" / "meta.jsonl", "a") as f:
        f.write('{"path": "/half')  # and a half-written line
    resumed = Journal.open(tmp_path, settings, D, generation=0)
    assert len(resumed) == 10 and [m["path"] for m in resumed.meta()] == _paths(10)
    assert np.array_equal(resumed.vectors(), data[0][:10])
    with pytest.raises(GalleryError, match="other settings"):
        Journal.open(tmp_path, {**settings, "fingerprint": "g"}, D, generation=0)
    resumed.checkpoint(finished=1)  # killed after the save that switched to generation 1: spent
    assert len(Journal.open(tmp_path, settings, D, generation=1)) == 0


def test_cli_refuses_an_unknown_type_and_a_type_change(tmp_path, class_folder, make_model, capsys):
    model = make_model(tmp_path / "m" / "model.safetensors")
    out = tmp_path / "idx"
    assert main(["index", str(model), str(class_folder), "--out", str(out), "--index-type", "annoy"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown --index-type 'annoy'" in err and "flat, ivf, ivfpq, hnsw" in err and "\n" not in err
    assert not out.exists()
    assert main(["index", str(model), str(class_folder), "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["index_type"] == "flat"
    assert main(["index", str(model), str(class_folder), "--out", str(out), "--index-type", "hnsw"]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a flat index and keeps its type" in err and "--reembed" in err and "\n" not in err
    assert main(["index", str(model), str(class_folder), "--out", str(out), "--index-type", "hnsw", "--reembed"]) == 0
    assert json.loads(capsys.readouterr().out)["index_type"] == "hnsw"
    image = str(next(class_folder.rglob("*.png")))
    assert main(["search", str(out), image, "--nprobe", "4"]) == 2
    assert "--nprobe applies to ivf" in capsys.readouterr().err
    assert main(["search", str(out), image, "--shard", str(out), "-k", "3", "--ef-search", "16", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)[0]["hits"]
    assert len(hits) == 3 and hits[0]["path"] == str(next(class_folder.rglob("*.png")).resolve())
    assert main(["index", str(model), str(class_folder), "--out", str(tmp_path / "small"), "--index-type", "ivf"]) == 2
    assert "needs at least 1,000 vectors" in capsys.readouterr().err
