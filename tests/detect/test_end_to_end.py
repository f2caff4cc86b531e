"""Train a small cascade on synthetic faces with the CLI, then detect, crop, draw and evaluate with it."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from finegrain.boxes import iou_matrix
from finegrain.cli import main
from finegrain.detect.faces import FaceDetector

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(synthetic_detection_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("detector") / "faces.safetensors"
    d = synthetic_detection_data
    code = main(["detector", "train", "--out", str(out), "--faces", str(d["crops"]), "--negatives", str(d["negatives"]),
                 "--epochs", "4", "--random-negatives", "8000", "--hard-negatives", "4000"])
    assert code == 0 and out.is_file()
    return out


def test_the_trained_cascade_finds_every_pasted_face(trained, synthetic_detection_data):
    detector = FaceDetector.load(trained, threshold=0.5)
    lines = synthetic_detection_data["annotations"].read_text().split("\n")
    truth = np.array([[float(v) for v in line.split()[1:]] for line in lines if line.startswith("scene0.png")])
    image = cv2.imread(str(synthetic_detection_data["scenes"] / "scene0.png"))
    faces = detector.detect(image[..., ::-1], crop_size=64)
    boxes = np.array([f.box for f in faces]).reshape(-1, 4)
    assert (iou_matrix(truth, boxes).max(axis=1) >= 0.5).all(), (truth, boxes)
    assert len(faces) <= len(truth) + 2
    assert all(f.crop.shape == (64, 64, 3) for f in faces)


def test_detect_cli_writes_crops_drawings_and_json(trained, synthetic_detection_data, tmp_path, capsys):
    scenes = synthetic_detection_data["scenes"]
    code = main(["detect", str(scenes / "scene1.png"), "--detector", str(trained), "--json",
                 "--crops", str(tmp_path / "crops"), "--size", "48", "--draw", str(tmp_path / "drawn")])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report[0]["path"].endswith("scene1.png") and len(report[0]["faces"]) >= 3
    crops = sorted((tmp_path / "crops").glob("scene1_face*.png"))
    assert len(crops) == len(report[0]["faces"]) and cv2.imread(str(crops[0])).shape == (48, 48, 3)
    assert (tmp_path / "drawn" / "scene1_faces.png").is_file()


def test_two_inputs_with_one_file_name_never_write_one_file(trained, synthetic_detection_data, tmp_path, capsys):
    """a/x.png and b/x.png: crops and drawings are named by the path relative to the inputs' common folder."""
    import shutil

    scenes = synthetic_detection_data["scenes"]
    for folder, scene in (("a", "scene1.png"), ("b", "scene2.png")):
        (tmp_path / "in" / folder).mkdir(parents=True)
        shutil.copy(scenes / scene, tmp_path / "in" / folder / "x.png")
    code = main(["detect", str(tmp_path / "in" / "a" / "x.png"), str(tmp_path / "in" / "b" / "x.png"), "--detector",
                 str(trained), "--json", "--crops", str(tmp_path / "crops"), "--draw", str(tmp_path / "drawn")])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    written = [face["crop"] for entry in report for face in entry["faces"]]
    assert len(written) == len(set(written)) == sum(len(e["faces"]) for e in report) >= 2
    assert {p.parent.name for p in map(Path, written)} == {"a", "b"} and all(Path(w).is_file() for w in written)
    assert (tmp_path / "drawn" / "a" / "x_faces.png").is_file() and (tmp_path / "drawn" / "b" / "x_faces.png").is_file()


def test_output_names_are_distinct_relative_paths(tmp_path):
    from finegrain.utils import output_names

    a, b, c, d = (tmp_path / n for n in ("a/x.jpg", "b/x.jpg", "b/x.png", "a/y.jpg"))
    names = output_names([a, b, c, d, a])
    assert names == {a: Path("a/x"), b: Path("b/x.jpg"), c: Path("b/x.png"), d: Path("a/y")}
    assert output_names([a]) == {a: Path("x")}


def test_detector_eval_cli_reports_recall_ap_fps_and_roc(trained, synthetic_detection_data, tmp_path, capsys):
    d = synthetic_detection_data
    code = main(["detector", "eval", str(trained), "--annotations", str(d["annotations"]), "--images",
                 str(d["scenes"]), "--out", str(tmp_path)])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["faces"] == 12 and metrics["recall_at_10_fp"] >= 0.9 and metrics["average_precision"] >= 0.8
    assert metrics["vga_fps"] > 0 and (tmp_path / "roc.png").is_file()


def test_bad_inputs_are_one_line_errors(trained, synthetic_detection_data, tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    good = synthetic_detection_data["scenes"] / "scene2.png"
    assert main(["detect", str(good), str(broken), "--detector", str(trained)]) == 2
    captured = capsys.readouterr()
    assert "scene2.png: " in captured.out and "broken.jpg" in captured.err and "Traceback" not in captured.err
    assert main(["detect", str(good), "--detector", str(tmp_path / "none.pt")]) == 2
    assert "detector file not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["detector", "train", "--out", str(tmp_path / "x.pt"), "--faces", str(tmp_path / "empty")]) == 2
    assert "no images" in capsys.readouterr().err
