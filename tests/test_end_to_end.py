"""End to end on real data: the bundled Omniglot subset through train → eval → oneshot → index → search."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from finegrain.cli import main
from finegrain.demo import extract_bundle


@pytest.fixture(scope="module")
def omniglot(tmp_path_factory):
    """40 characters of 4 alphabets (800 images) and 5 of the official one-shot runs."""
    bundle = extract_bundle()
    root = tmp_path_factory.mktemp("omniglot")
    alphabets = sorted(p for p in (bundle / "background").iterdir() if p.is_dir())[:4]
    for alphabet in alphabets:
        for character in sorted(alphabet.iterdir())[:10]:
            shutil.copytree(character, root / "train" / alphabet.name / character.name)
    for run in sorted((bundle / "runs").iterdir())[:5]:
        shutil.copytree(run, root / "runs" / run.name)
    return root


@pytest.fixture(scope="module")
def trained(omniglot, tmp_path_factory):
    run = tmp_path_factory.mktemp("run") / "omniglot"
    code = main(["train", str(omniglot / "train"), "--out", str(run), "--backbone", "conv4", "--image-size", "28",
                 "--embedding-size", "64", "--loss", "triplet", "--miner", "semi-hard", "--epochs", "4",
                 "--p", "16", "--k", "4", "--no-flip", "--val", "0.25", "--lr", "0.002", "--no-progress"])
    assert code == 0
    return run


@pytest.mark.slow
def test_training_learns_and_writes_a_complete_run(trained):
    for name in ("config.yaml", "checkpoint.safetensors", "model.safetensors", "metrics.jsonl", "curve.png"):
        assert (trained / name).exists(), name
    history = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == 4
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    # 10 held-out characters: chance precision@1 is about 1/10.
    assert history[-1]["val_precision_at_1"] > 0.4


@pytest.mark.slow
def test_oneshot_beats_chance_by_far(trained, omniglot, capsys):
    assert main(["oneshot", str(trained), str(omniglot / "runs")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["runs"] == 5 and result["ways"] == 20
    assert result["accuracy"] > 0.3  # chance is 0.05


@pytest.mark.slow
def test_eval_prints_metrics_and_writes_grid(trained, omniglot, tmp_path, capsys):
    assert main(["eval", str(trained), str(omniglot / "train"), "--out", str(tmp_path)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    for key in ("precision_at_1", "r_precision", "map_at_r", "recall_at_1", "recall_at_5", "recall_at_10",
                "recall_at_20", "map_at_20"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["recall_at_20"] >= metrics["recall_at_5"] >= metrics["recall_at_1"]
    assert metrics["images"] == 800 and metrics["classes"] == 40
    import cv2

    grid = cv2.imread(str(tmp_path / "retrieval_grid.png"))
    assert grid is not None and grid.shape[0] >= 96 * 8


@pytest.mark.slow
def test_index_then_search_finds_the_query_itself(trained, omniglot, tmp_path, capsys):
    alphabets = sorted((omniglot / "train").iterdir())
    index = tmp_path / "gallery.idx"
    assert main(["index", str(trained), str(alphabets[0]), "--out", str(index)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["added"] == 200 and first["total"] == 200
    # Adding a second alphabet extends the index; the first one's images are not added twice.
    assert main(["index", str(trained), str(omniglot / "train"), "--out", str(index)]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["added"] == 600 and second["total"] == 800

    query = sorted((alphabets[1]).rglob("*.png"))[3]
    assert main(["search", str(index), str(query), "-k", "5", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)[0]["hits"]
    assert len(hits) == 5
    assert hits[0]["path"] == str(query) and hits[0]["similarity"] == pytest.approx(1.0, abs=1e-4)
    sims = np.array([h["similarity"] for h in hits])
    assert np.all(np.diff(sims) <= 1e-6)


@pytest.mark.slow
def test_verify_two_images_with_the_threshold_calibrated_on_the_validation_split(trained, omniglot, capsys):
    character = sorted((omniglot / "train").rglob("character*"))[0]
    a, b = sorted(character.glob("*.png"))[:2]
    assert main(["verify", str(trained), str(a), str(b), "--json"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert 0 < same["threshold"] < 2 and same["same"] == (same["distance"] <= same["threshold"])
    assert main(["verify", str(trained), str(a), str(a), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["same"] is True


@pytest.mark.slow
def test_fewshot_and_identification_beat_chance(trained, omniglot, tmp_path, capsys):
    assert main(["fewshot", str(trained), str(omniglot / "train"), "--ways", "5", "--episodes", "200", "--json"]) == 0
    episodes = json.loads(capsys.readouterr().out)["episodes"][0]
    assert episodes["ways"] == 5 and episodes["accuracy"] > 0.5  # chance is 0.2
    gallery, probes = tmp_path / "gallery.txt", tmp_path / "probes.txt"
    rows = [(p, p.parent.name) for p in sorted((omniglot / "train").rglob("*.png"))]
    gallery.write_text("".join(f"{p} {c}\n" for i, (p, c) in enumerate(rows) if i % 20 < 5))
    probes.write_text("".join(f"{p} {c}\n" for i, (p, c) in enumerate(rows) if i % 20 >= 15))
    assert main(["identification", str(trained), "--gallery", str(gallery), "--probes", str(probes),
                 "--out", str(tmp_path / "id")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rank_1"] > 0.3 and report["rank_5"] >= report["rank_1"]  # 40 identities: chance 0.025
    assert (tmp_path / "id" / "cmc.png").stat().st_size > 0


@pytest.mark.slow
def test_index_remembers_its_tta_and_explain_needs_a_spatial_map(trained, omniglot, tmp_path, capsys):
    alphabet = sorted((omniglot / "train").iterdir())[0]
    index = tmp_path / "tta.idx"
    assert main(["index", str(trained), str(alphabet), "--out", str(index), "--tta", "crops"]) == 0
    capsys.readouterr()
    query = sorted(alphabet.rglob("*.png"))[7]
    assert main(["search", str(index), str(query), "-k", "1", "--json"]) == 0
    hit = json.loads(capsys.readouterr().out)[0]["hits"][0]
    assert hit["path"] == str(query.resolve()) and hit["similarity"] == pytest.approx(1.0, abs=1e-4)
    assert main(["index", str(trained), str(omniglot / "train"), "--out", str(index), "--tta", "none"]) == 2
    assert "same --tta" in capsys.readouterr().err
    # Without --tta an extension embeds as the index did.
    second = sorted((omniglot / "train").iterdir())[1]
    assert main(["index", str(trained), str(second), "--out", str(index)]) == 0
    assert json.loads(capsys.readouterr().out)["tta"] == ["crops"]
    # conv4 on 28 px characters ends in a 1x1 feature map: nothing to localise, and explain says so.
    other = sorted(alphabet.rglob("*.png"))[8]
    assert main(["explain", str(trained), str(query), str(other), "--out", str(tmp_path / "pair.png")]) == 2
    assert "1x1" in capsys.readouterr().err and not (tmp_path / "pair.png").exists()
