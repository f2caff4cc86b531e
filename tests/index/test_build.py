"""Indexes bound to their model: extend, refuse another model, re-embed, flat folders, remove, info, kill safety."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from finegrain.cli import main
from finegrain.encoders import load_encoder
from finegrain.index.build import index_gallery, search_index
from finegrain.index.gallery import GalleryIndex


@pytest.fixture
def models(tmp_path, make_model):
    return make_model(tmp_path / "a" / "model.safetensors", seed=1), make_model(tmp_path / "b" / "model.safetensors",
                                                                                seed=2)


def _self_hits(index, folder) -> list[float]:
    """Each indexed image searched for itself: its top hit must be itself, at similarity 1."""
    paths = sorted(folder.rglob("*.png"))
    results = search_index(index, paths, k=1)
    return [r["hits"][0]["similarity"] if r["hits"][0]["path"] == str(p.resolve()) else -1.0
            for r, p in zip(results, paths)]


def test_another_model_is_refused_and_reembed_rebuilds(class_folder, tmp_path, models, capsys):
    model_a, model_b = models
    index = tmp_path / "idx"
    first = sorted(class_folder.iterdir())[:3]
    for folder in first:
        index_gallery(model_a, folder, index, progress=False)
    assert len(GalleryIndex.load(index)) == 18
    # Adding with another model would mix two embedding spaces: refused, and the index is left as it was.
    assert main(["index", str(model_b), str(class_folder), "--out", str(index)]) == 2
    err = capsys.readouterr().err
    assert "--reembed" in err and "fingerprint" in err and len(err.strip().splitlines()) == 1
    assert len(GalleryIndex.load(index)) == 18
    # --reembed rebuilds everything with the new model: the old items and the new ones.
    assert main(["index", str(model_b), str(class_folder), "--out", str(index), "--reembed"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["reembedded"] == 18 and summary["total"] == 36
    rebuilt = GalleryIndex.load(index)
    assert rebuilt.binding.fingerprint == load_encoder(model_b).fingerprint
    assert np.allclose(_self_hits(index, class_folder), 1.0, atol=1e-5)
    assert [p.name for p in index.iterdir() if p.name.startswith("model-")] == [rebuilt.binding.model_file]


def test_a_flat_folder_indexes_with_the_path_as_id(tmp_path, class_folder, models, capsys):
    flat = tmp_path / "photos"
    flat.mkdir()
    for p in sorted(class_folder.rglob("*.png"))[:8]:
        shutil.copy(p, flat / f"{p.parent.name}-{p.name}")
    assert main(["index", str(models[0]), str(flat), "--out", str(tmp_path / "idx")]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 8
    index = GalleryIndex.load(tmp_path / "idx")
    assert all(m["label"] is None for m in index.meta)
    assert np.allclose(_self_hits(tmp_path / "idx", flat), 1.0, atol=1e-5)


def test_integer_class_ids_in_a_list_are_labels(tmp_path, class_folder, models, capsys):
    """A '<path> 3' list is a list of class ids for an index or an embedding model's eval, never scores."""
    listing = tmp_path / "ids.txt"
    listing.write_text("".join(f"{p} {i // 6}\n" for i, p in enumerate(sorted(class_folder.rglob("*.png")))))
    index_gallery(models[0], listing, tmp_path / "idx", progress=False)
    assert GalleryIndex.load(tmp_path / "idx").label_counts() == {str(c): 6 for c in range(6)}
    assert main(["eval", str(models[0]), str(listing), "--out", str(tmp_path / "ev")]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["classes"] == 6 and "precision_at_1" in metrics


def test_remove_and_info(tmp_path, class_folder, models, capsys):
    index = tmp_path / "idx"
    assert main(["index", str(models[0]), str(class_folder), "--out", str(index), "--tta", "flip"]) == 0
    capsys.readouterr()
    gone = class_folder / "class01"
    assert main(["index", "--out", str(index), "--remove", str(gone), str(class_folder / "class02" / "0.png")]) == 0
    assert json.loads(capsys.readouterr().out) == {"index": str(index), "removed": 7, "total": 29}
    assert main(["index", "--info", str(index)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["size"] == 29 and info["tta"] == ["flip"] and info["identities"] == 5
    assert info["largest_identities"]["class02"] == 5 and "class01" not in info["largest_identities"]
    assert info["model"]["fingerprint"] == load_encoder(models[0]).fingerprint
    # Removing what is not there changes nothing and says which path.
    assert main(["index", "--out", str(index), "--remove", str(gone)]) == 2
    assert "class01" in capsys.readouterr().err and len(GalleryIndex.load(index)) == 29
    assert main(["index", "--out", str(index)]) == 2
    assert "RUN GALLERY" in capsys.readouterr().err


def _pending(index) -> int:
    state = index / ".pending" / "journal.json"
    return json.loads(state.read_text())["count"] if state.exists() else 0


@pytest.mark.slow
def test_sigkill_while_indexing_resumes_where_it_stopped(tmp_path, class_folder_factory, models):
    """Real SIGKILLs of `finegrain index` (checkpointing every 3 images), each a moment after a checkpoint, so
    some land mid-write: the journal keeps every checkpointed image, nothing half-built is ever searchable, and a
    rerun embeds only the rest and completes with every image exactly once."""
    gallery = class_folder_factory(tmp_path / "gallery", classes=30, per_class=10, size=48)
    index = tmp_path / "idx"
    cmd = [sys.executable, "-m", "finegrain.cli", "index", str(models[0]), str(gallery), "--out", str(index),
           "--save-every", "3", "--batch-size", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rng = np.random.default_rng(0)
    counts = []
    for _ in range(4):
        before = _pending(index)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.time() + 120
        while _pending(index) <= before and proc.poll() is None and time.time() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.02))
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        assert not GalleryIndex.exists(index)  # the searchable index switches once, at the end
        counts.append(_pending(index))
    assert counts == sorted(counts) and 0 < counts[-1] < 300  # progress is kept from kill to kill
    summary = json.loads(subprocess.run(cmd, check=True, capture_output=True, env=env).stdout)
    assert summary["resumed"] == counts[-1] and summary["added"] == summary["total"] == 300
    final = GalleryIndex.load(index)
    assert len(final) == 300 and len({m["path"] for m in final.meta}) == 300
    assert {m["path"] for m in final.meta} == {str(p.resolve()) for p in gallery.rglob("*.png")}
    assert np.allclose(_self_hits(index, gallery), 1.0, atol=1e-5)  # each image's vector is its own
    assert sorted(p.name for p in index.iterdir() if p.name.startswith(("gen-", ".gen-", ".pending"))) == [
        f"gen-{final.generation:06d}"]
