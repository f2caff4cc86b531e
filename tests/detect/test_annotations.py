import json

import numpy as np
import pytest

from finegrain.detect.annotations import read_annotations
from finegrain.errors import DataError


def test_box_list_groups_boxes_by_image(tmp_path):
    path = tmp_path / "boxes.txt"
    path.write_text("# image x1 y1 x2 y2\na.jpg 1 2 11 12\n\nb.jpg 0 0 5 5\na.jpg 20 20 30 35\n")
    boxes = read_annotations(path)
    np.testing.assert_array_equal(boxes["a.jpg"], [[1, 2, 11, 12], [20, 20, 30, 35]])
    assert boxes["b.jpg"].shape == (1, 4)


def test_box_list_names_every_bad_line(tmp_path):
    path = tmp_path / "boxes.txt"
    path.write_text("a.jpg 1 2 11 12\nb.jpg 1 2 3\nc.jpg 5 5 1 1\nd.jpg x 0 1 1\n")
    with pytest.raises(DataError) as error:
        read_annotations(path)
    message = str(error.value)
    assert "3 bad line(s)" in message
    assert f"{path}:2" in message and f"{path}:3" in message and f"{path}:4" in message


def test_coco_boxes_are_converted_from_xywh(tmp_path):
    coco = {"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "none.jpg"}],
            "categories": [{"id": 7, "name": "face"}, {"id": 8, "name": "car"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 20, 30, 40]},
                            {"id": 2, "image_id": 1, "category_id": 8, "bbox": [0, 0, 5, 5]}]}
    path = tmp_path / "faces.json"
    path.write_text(json.dumps(coco))
    boxes = read_annotations(path)
    assert boxes["a.jpg"].tolist() == [[10, 20, 40, 60], [0, 0, 5, 5]]
    assert boxes["none.jpg"].shape == (0, 4)  # an image with no faces is kept: its detections are false


def test_malformed_coco_and_missing_file_are_clear_errors(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"images": [{"id": 1}]}))
    with pytest.raises(DataError, match="not a COCO annotation file"):
        read_annotations(path)
    with pytest.raises(DataError, match="not found"):
        read_annotations(tmp_path / "missing.txt")
