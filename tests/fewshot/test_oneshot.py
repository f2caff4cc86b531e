"""One-shot runs: parsing of the official format, and accuracy against a known answer."""

import zipfile

import cv2
import numpy as np
import pytest

from finegrain.errors import DataError
from finegrain.fewshot.oneshot import oneshot_accuracy, read_runs


def _png(value: int) -> bytes:
    return cv2.imencode(".png", np.full((20, 20), value, np.uint8))[1].tobytes()


@pytest.fixture
def runs_zip(tmp_path):
    """Two 3-way runs; each class is a grey level, so a pixel-mean 'embedding' solves them."""
    path = tmp_path / "all_runs.zip"
    with zipfile.ZipFile(path, "w") as z:
        for r in (1, 2):
            lines = []
            for c, grey in enumerate((30, 120, 220), 1):
                # In run 2 test item (c % 3) + 1 shows class c: the answers are not the identity.
                item = c if r == 1 else (c % 3) + 1
                z.writestr(f"run0{r}/training/class0{c}.png", _png(grey))
                z.writestr(f"run0{r}/test/item0{item}.png", _png(grey + 5))
                lines.append(f"run0{r}/test/item0{item}.png run0{r}/training/class0{c}.png")
            z.writestr(f"run0{r}/class_labels.txt", "\n".join(lines) + "\n")
    return path


def _grey_embedding(images: np.ndarray) -> np.ndarray:
    mean = images.reshape(len(images), -1).mean(axis=1) / 255.0
    angle = mean * np.pi / 2  # grey level → angle on the unit circle
    return np.stack([np.cos(angle), np.sin(angle)], axis=1)


def test_reads_runs_from_zip_and_folder(runs_zip, tmp_path):
    runs = read_runs(runs_zip, image_size=16)
    assert [r.name for r in runs] == ["run01", "run02"]
    assert runs[0].train[0].shape == (16, 16, 3)
    folder = tmp_path / "extracted"
    zipfile.ZipFile(runs_zip).extractall(folder)
    assert [r.answers.tolist() for r in read_runs(folder, 16)] == [r.answers.tolist() for r in runs]


def test_accuracy_uses_class_labels(runs_zip):
    runs = read_runs(runs_zip, image_size=16)
    result = oneshot_accuracy(runs, _grey_embedding)
    # The grey embedding finds each test image's class; scoring must follow class_labels.txt.
    assert result["accuracy"] == pytest.approx(1.0)
    assert result["ways"] == 3 and result["runs"] == 2
    # A constant embedding always answers the first training image: 1 of 3 right per run.
    constant = oneshot_accuracy(runs, lambda x: np.tile([1.0, 0.0], (len(x), 1)))
    assert constant["accuracy"] == pytest.approx(1 / 3)


def test_bad_runs_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_runs(tmp_path / "missing.zip", 16)
    (tmp_path / "run01").mkdir()
    (tmp_path / "run01" / "class_labels.txt").write_text("only-one-field\n")
    with pytest.raises(DataError, match="class_labels.txt:1"):
        read_runs(tmp_path, 16)
