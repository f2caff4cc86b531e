import numpy as np
import pytest
import torch

from finegrain.artifact import read_artifact
from finegrain.boxes import iou_matrix
from finegrain.detect import train as train_module
from finegrain.detect.samples import (
    FaceImage,
    calibration_windows,
    face_window,
    offset_windows,
    positive_windows,
    random_windows,
)
from finegrain.detect.sources import read_face_crops
from finegrain.detect.train import ORDER, DetectorTrainConfig, quarter_turns, train_detector
from finegrain.errors import ConfigError

from .conftest import clutter, draw_face


def test_face_window_is_the_square_on_the_box_centre():
    np.testing.assert_allclose(face_window(np.array([[10, 20, 30, 44]])), [[9, 21, 31, 43]])


def test_crop_box_places_the_face_inside_each_crop(synthetic_detection_data):
    faces = read_face_crops(synthetic_detection_data["crops"], (0.1, 0.05, 0.9, 0.85))
    np.testing.assert_allclose(faces[0].boxes, [[3.6, 1.8, 32.4, 30.6]])
    assert not faces[0].context
    with pytest.raises(ConfigError, match="--crop-box"):
        read_face_crops(synthetic_detection_data["crops"], (0.5, 0, 0.4, 1))


def test_sample_shapes_labels_and_context_rule():
    rng = np.random.default_rng(0)
    framed = FaceImage(np.full((80, 80), 100, np.uint8), np.array([[20.0, 20, 60, 60]]))
    crop = FaceImage(draw_face(36, rng), np.array([[0.0, 0, 36, 36]]), context=False)
    assert positive_windows([framed, crop], 24, 3, rng).shape == (6, 1, 24, 24)
    windows, labels = calibration_windows([framed, crop], 12, 5, rng)
    assert windows.shape == (5, 1, 12, 12) and labels.shape == (5,)  # the context-free crop is left out
    assert labels.min() >= 0 and labels.max() < 45
    assert random_windows([clutter(50, 60, rng)], 12, 7, rng).shape == (7, 1, 12, 12)


def test_offset_negatives_never_overlap_their_face_by_much():
    rng = np.random.default_rng(1)
    grey = np.tile(np.arange(100, dtype=np.uint8), (100, 1))  # x-coordinate as the pixel value
    face = FaceImage(grey, np.array([[30.0, 30, 70, 70]]))
    windows = offset_windows([face] * 50, 12, 1, rng)
    assert 45 <= len(windows) <= 50 and windows.shape[1:] == (1, 12, 12)  # one each, unless no candidate fits
    no_context = FaceImage(grey, np.array([[30.0, 30, 70, 70]]), context=False)
    assert offset_windows([no_context], 12, 1, rng).shape == (0, 1, 12, 12)


def test_offset_window_geometry(monkeypatch):
    from finegrain.detect import samples

    seen = []
    monkeypatch.setattr(samples, "crop_windows", lambda levels, boxes, size: seen.append(boxes) or
                        __import__("torch").zeros(len(boxes), 1, size, size))
    face = FaceImage(np.zeros((100, 100), np.uint8), np.array([[30.0, 30, 70, 70]]))
    offset_windows([face] * 30, 12, 1, np.random.default_rng(2))
    boxes = np.concatenate(seen)
    assert 25 <= len(boxes) <= 30 and (iou_matrix(boxes, face.boxes)[:, 0] < 0.3).all()


def test_quarter_turns_give_every_orientation_of_every_scene():
    scenes = [np.arange(6, dtype=np.uint8).reshape(2, 3), np.arange(12, dtype=np.uint8).reshape(3, 4)]
    turned = quarter_turns(scenes, 4)
    assert len(turned) == 8 and [t.shape for t in turned[:4]] == [(2, 3), (3, 4), (3, 2), (4, 3)]
    np.testing.assert_array_equal(turned[2], [[2, 5], [1, 4], [0, 3]])  # 90 degrees anticlockwise
    np.testing.assert_array_equal(turned[4], scenes[0][::-1, ::-1])  # 180 degrees
    assert all(t.flags.c_contiguous for t in turned) and len(quarter_turns(scenes, 1)) == 2


def test_config_errors_name_the_flag(tmp_path):
    with pytest.raises(ConfigError, match="--epochs"):
        DetectorTrainConfig(out=str(tmp_path / "d.pt"), epochs=0).validate()
    for flag, value in (("mining_turns_48", 5), ("mining_turns_48", 0), ("bootstrap_rounds", -1),
                        ("mining_threshold_48", 1.5), ("bootstrap_threshold", -0.1)):
        with pytest.raises(ConfigError, match="--" + flag.replace("_", "-")):
            DetectorTrainConfig(out=str(tmp_path / "d.pt"), **{flag: value}).validate()
    with pytest.raises(ConfigError, match="--negatives"):
        train_detector([FaceImage(np.zeros((36, 36), np.uint8), np.array([[0.0, 0, 36, 36]]))], [],
                       DetectorTrainConfig(out=str(tmp_path / "d.pt")))


def test_a_killed_run_resumes_at_the_next_net(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    faces = [FaceImage(draw_face(36, rng), np.array([[0.0, 0, 36, 36]])) for _ in range(20)]
    scenes = [clutter(60, 80, rng) for _ in range(3)]
    cfg = DetectorTrainConfig(out=str(tmp_path / "d.pt"), epochs=1, random_negatives=300, hard_negatives=100)
    trained: list[str] = []
    real_fit = train_module.fit

    def fit_then_die(net, x, y, cfg, name):
        if name == ORDER[3]:
            raise KeyboardInterrupt  # killed while training the fourth net
        trained.append(name)
        return real_fit(net, x, y, cfg, name)

    monkeypatch.setattr(train_module, "fit", fit_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_detector(faces, scenes, cfg)
    assert trained == list(ORDER[:3]) and (tmp_path / "d.pt.partial").is_file()

    monkeypatch.setattr(train_module, "fit", lambda net, x, y, cfg, name: trained.append(name) or {})
    train_detector(faces, scenes, cfg, resume=True)
    # the first three were not trained again; the 48-net is retrained once with the cascade's false positives
    assert trained == [*ORDER, "detect48 (bootstrap 1)"]
    assert (tmp_path / "d.pt").is_file() and not (tmp_path / "d.pt.partial").exists()


def test_training_is_reproducible_whatever_the_global_random_state(tmp_path):
    # torch's default generator starts from a random seed in every process: the nets' initial weights must come
    # from --seed, or two runs of the same command train different detectors.
    rng = np.random.default_rng(0)
    faces = [FaceImage(draw_face(36, rng), np.array([[0.0, 0, 36, 36]])) for _ in range(12)]
    scenes = [clutter(60, 80, rng) for _ in range(2)]
    weights = []
    for run, global_seed in enumerate((1, 2)):
        torch.manual_seed(global_seed)
        cfg = DetectorTrainConfig(out=str(tmp_path / f"d{run}.pt"), epochs=1, random_negatives=200, hard_negatives=50)
        weights.append(read_artifact(train_detector(faces, scenes, cfg)).tensors)
    assert weights[0].keys() == weights[1].keys() and {k.split(".")[0] for k in weights[0]} == set(ORDER)
    for key, value in weights[0].items():
        assert torch.equal(value, weights[1][key]), key
