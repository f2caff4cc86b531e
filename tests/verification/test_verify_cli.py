"""``verify``, ``normalize`` and ``combine`` end to end through the CLI, on a tiny LFW-format set."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from finegrain.artifact import read_manifest
from finegrain.cli import main
from finegrain.encoders import load_encoder


@pytest.fixture
def lfw(tmp_path):
    """Five people, four noisy views of each one's pattern, and a 2-fold pair file."""
    rng = np.random.default_rng(0)
    root = tmp_path / "lfw"
    for p in range(5):
        name = f"Person_{p}"
        (root / name).mkdir(parents=True)
        pattern = cv2.GaussianBlur(rng.random((32, 32, 3)).astype(np.float32), (7, 7), 0)
        for i in range(1, 5):
            img = np.clip(pattern + rng.normal(0, 0.03, pattern.shape), 0, 1)
            cv2.imwrite(str(root / name / f"{name}_{i:04d}.jpg"), (img * 255).astype(np.uint8))
    lines = ["2\t3"]
    for fold in range(2):
        people = [f"Person_{(fold * 2 + j) % 5}" for j in range(3)]
        lines += [f"{n}\t1\t{2 + fold}" for n in people]
        lines += [f"{people[j]}\t{1 + fold}\t{people[(j + 1) % 3]}\t3" for j in range(3)]
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_verify_pairs_then_one_pair(lfw, tiny_model, capsys):
    out = lfw / "report"
    argv = ["verify", str(tiny_model), "--pairs", str(lfw / "pairs.txt"), "--root", str(lfw / "lfw"),
            "--out", str(out), "--save-threshold", "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["pairs"] == 12 and report["folds"] == 2 and len(report["thresholds"]) == 2
    assert 0 <= report["accuracy"] <= 1 and (out / "roc.png").stat().st_size > 0
    stored = read_manifest(tiny_model)["thresholds"]["verification"]
    assert stored["threshold"] == pytest.approx(report["threshold_all_pairs"])
    assert stored["fitted_on"] == str(lfw / "pairs.txt") and stored["tta"] == []

    a, b = lfw / "lfw/Person_0/Person_0_0001.jpg", lfw / "lfw/Person_0/Person_0_0002.jpg"
    assert main(["verify", str(tiny_model), str(a), str(b), "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["threshold"] == pytest.approx(report["threshold_all_pairs"])
    assert one["same"] == (one["distance"] <= one["threshold"])
    assert main(["verify", str(tiny_model), str(a), str(a), "--threshold", "0.0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["same"] is True  # an image is always itself


def test_verify_errors_are_one_line(lfw, tiny_model, capsys):
    a = lfw / "lfw/Person_0/Person_0_0001.jpg"
    assert main(["verify", str(tiny_model), str(a), str(a)]) == 2
    assert "no verification threshold" in capsys.readouterr().err
    assert main(["verify", str(tiny_model), str(a)]) == 2
    assert "two images" in capsys.readouterr().err
    (lfw / "bad.txt").write_text("1\nPerson_0 1 x\nPerson_0 1 Person_1 1\n")
    assert main(["verify", str(tiny_model), "--pairs", str(lfw / "bad.txt"), "--root", str(lfw / "lfw")]) == 2
    err = capsys.readouterr().err
    assert "bad.txt:2" in err and "Traceback" not in err


def test_normalize_stores_whitening_and_combine_uses_it(lfw, tiny_model, make_model, tmp_path, capsys):
    assert main(["normalize", str(tiny_model), str(lfw / "lfw"), "--method", "whiten", "--dim", "8"]) == 0
    assert json.loads(capsys.readouterr().out)["embedding_size"] == 8
    whitened = load_encoder(tiny_model)
    assert whitened.output_size == 8 and whitened.normalizer.method == "whiten"
    other = make_model(tmp_path / "other.pt", size=40, seed=3)
    assert main(["combine", str(tiny_model), str(other), "--out", str(tmp_path / "meta")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["embedding_size"] == 8 + 16 and summary["image_size"] == 40
    # The meta-model is usable wherever a model is: verify on the pair file.
    argv = ["verify", str(tmp_path / "meta"), "--pairs", str(lfw / "pairs.txt"), "--root", str(lfw / "lfw"),
            "--out", str(tmp_path / "r"), "--tta", "flip", "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["tta"] == ["flip"]
