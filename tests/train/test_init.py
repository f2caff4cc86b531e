"""--init: start from another finegrain model's backbone (any task), with a smaller backbone learning rate."""

from __future__ import annotations

import json

import pytest
import torch

from finegrain.artifact import read_artifact
from finegrain.cli import main
from finegrain.models import load_model

FAST = ["--image-size", "32", "--threads", "1", "--workers", "0", "--no-progress", "--val", "0"]


@pytest.fixture
def source(tmp_path, make_model):
    return make_model(tmp_path / "face-id" / "model.safetensors", seed=3)  # conv4, widths 8


def _first_conv(path):
    model, _ = load_model(path)
    return next(m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d)).weight


def test_a_scorer_starts_from_an_embedding_models_backbone(tmp_path, source, score_list, capsys):
    out = tmp_path / "scorer"
    assert main(["train", str(score_list), "--task", "score", "--recipe", "direct", "--init", str(source.parent),
                 "--out", str(out), "--epochs", "1", "--backbone-lr-scale", "0", *FAST]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["epochs"] == 1
    trained, manifest = load_model(out / "model.safetensors")
    assert manifest["kind"] == "score" and manifest["architecture"]["backbone"] == load_model(source)[0].config()[
        "backbone"]
    # With a zero backbone learning rate the backbone is exactly the source's: copied, first layer and all.
    assert torch.equal(_first_conv(out / "model.safetensors"), _first_conv(source))


def test_the_backbone_learns_at_a_scaled_rate(tmp_path, source, class_folder):
    runs = {}
    for scale in ("0", "1"):
        out = tmp_path / f"scale-{scale}"
        assert main(["train", str(class_folder), "--init", str(source), "--out", str(out), "--epochs", "1",
                     "--backbone-lr-scale", scale, "--p", "4", *FAST]) == 0
        runs[scale] = out
    assert torch.equal(_first_conv(runs["0"] / "model.safetensors"), _first_conv(source))
    assert not torch.equal(_first_conv(runs["1"] / "model.safetensors"), _first_conv(source))
    heads = [read_artifact(runs[s] / "model.safetensors").sub("model")["head.fc.weight"] for s in ("0", "1")]
    assert heads[0].shape == heads[1].shape  # a new head either way


def test_an_incompatible_backbone_or_a_non_model_is_refused_in_one_line(tmp_path, source, class_folder, capsys):
    argv = ["train", str(class_folder), "--init", str(source), "--out", str(tmp_path / "x"), "--epochs", "1", *FAST]
    assert main([*argv, "--backbone", "resnet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "conv4 (widths 8-8-8-8" in err and "resnet (" in err and len(err.splitlines()) == 1
    assert main([*argv, "--width", "2"]) == 2
    assert "conv4 (widths 128-128-128-128" in capsys.readouterr().err  # --width multiplies conv4's own widths
    # The source standardises no image; a scorer that would is another network, though the weights would load.
    assert main([*argv, "--task", "score", "--input-norm", "image"]) == 2
    err = capsys.readouterr().err.strip()
    assert "input_norm image" in err and "conv4 (widths 8-8-8-8" in err and len(err.splitlines()) == 1
    (tmp_path / "notes.txt").write_text("not a model")
    assert main(["train", str(class_folder), "--init", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err.strip()
    assert "notes.txt" in err and len(err.splitlines()) == 1
    from finegrain.detect.store import bundled_detector_path

    assert main(["train", str(class_folder), "--init", str(bundled_detector_path()), "--out", str(tmp_path / "z")]) == 2
    assert "detector file, not a model" in capsys.readouterr().err


def test_a_standardising_source_passes_its_input_norm_on(tmp_path, make_model, score_list):
    source = make_model(tmp_path / "std" / "model.safetensors", input_norm="image")
    for flags in ([], ["--widths", "8,8,8,8"]):  # flags that match the source are not another network
        out = tmp_path / f"scorer{len(flags)}"
        assert main(["train", str(score_list), "--task", "score", "--recipe", "direct", "--init", str(source),
                     "--out", str(out), "--epochs", "1", *flags, *FAST]) == 0
        assert load_model(out / "model.safetensors")[0].config()["backbone"]["input_norm"] == "image"


def test_init_face_loads_the_bundled_face_model(tmp_path, class_folder):
    """``--init face``: the backbone of the face model shipped in the package, copied exactly."""
    from finegrain.encoders.loader import bundled_model_path

    bundled = bundled_model_path("face")
    assert bundled.is_file(), "the bundled face model is missing: scripts/make_face_model.py rebuilds it"
    out = tmp_path / "cls"
    assert main(["train", str(class_folder), "--task", "classify", "--init", "face", "--out", str(out),
                 "--epochs", "1", "--backbone-lr-scale", "0", "--threads", "1", "--workers", "0", "--no-progress",
                 "--val", "0"]) == 0
    assert torch.equal(_first_conv(out / "model.safetensors"), _first_conv(bundled))
    assert load_model(out / "model.safetensors")[1]["architecture"]["kind"] == "classifier"


def test_a_model_command_takes_the_bundled_face_model_by_name(class_folder, capsys):
    a, b = sorted(class_folder.rglob("*.png"))[:2]
    assert main(["verify", "face", str(a), str(b), "--json"]) == 0
    assert "same" in json.loads(capsys.readouterr().out)
