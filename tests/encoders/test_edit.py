"""Changing model files: normalising drops what depended on the old embeddings and says so; a wrong kind
is refused before anything is written."""

from __future__ import annotations

import json

import numpy as np

from finegrain.artifact import read_manifest
from finegrain.cli import main
from finegrain.encoders import load_encoder
from finegrain.encoders.edit import store_threshold


def test_normalising_drops_a_threshold_fitted_before_and_says_so(tiny_model, class_folder, capsys):
    store_threshold(tiny_model, "verification", {"threshold": 0.7, "fitted_on": "validation split", "tta": []})
    a, b = sorted(class_folder.rglob("*.png"))[:2]
    assert main(["verify", str(tiny_model), str(a), str(b), "--json"]) == 0
    capsys.readouterr()
    assert main(["normalize", str(tiny_model), str(class_folder), "--method", "center"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dropped_thresholds"] == ["verification"] and "--save-threshold" in summary["note"]
    manifest = read_manifest(tiny_model)
    assert manifest["thresholds"] == {} and manifest["normalizer"]["method"] == "center"
    assert main(["verify", str(tiny_model), str(a), str(b)]) == 2
    assert "no verification threshold" in capsys.readouterr().err


def test_normalising_a_scorer_is_refused_and_leaves_it_untouched(tmp_path, make_model, class_folder, capsys, images):
    scorer = make_model(tmp_path / "scorer" / "model.safetensors", kind="score")
    before = scorer.read_bytes()
    assert main(["normalize", str(scorer.parent), str(class_folder)]) == 2
    assert "scoring model" in capsys.readouterr().err
    assert scorer.read_bytes() == before
    assert load_encoder(scorer, need="score").encode_array(images).shape == (12,)


def test_a_normaliser_fitted_with_tta_becomes_the_default(tiny_model, class_folder, capsys, images):
    assert main(["normalize", str(tiny_model), str(class_folder), "--method", "whiten", "--dim", "6",
                 "--tta", "flip"]) == 0
    assert json.loads(capsys.readouterr().out)["tta"] == ["flip"]
    encoder = load_encoder(tiny_model)
    assert encoder.tta == ("flip",) and encoder.output_size == 6
    assert np.allclose(np.linalg.norm(encoder.encode_array(images), axis=1), 1, atol=1e-5)
