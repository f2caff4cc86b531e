import numpy as np
import pytest

from finegrain.eval.detection import average_precision, match_detections, recall_at_false_positives, roc_png


@pytest.fixture
def two_images():
    truth = {"a.jpg": np.array([[0, 0, 10, 10], [20, 0, 30, 10]]), "b.jpg": np.array([[0, 0, 10, 10]])}
    detections = {
        # score order over the set: 0.9 a-TP, 0.8 b-FP (far), 0.7 a-duplicate of the first face → FP,
        # 0.6 b-TP, 0.5 a-TP (second face at IoU 0.6), 0.4 a-FP (IoU 0.25 with the 2nd face)
        "a.jpg": (np.array([[0, 0, 10, 10], [1, 0, 11, 10], [22, 0, 32, 10], [26, 0, 36, 10]]),
                  np.array([0.9, 0.7, 0.5, 0.4])),
        "b.jpg": (np.array([[50, 50, 60, 60], [0, 1, 10, 11]]), np.array([0.8, 0.6])),
    }
    return detections, truth


def test_matching_scans_the_whole_set_by_score(two_images):
    m = match_detections(*two_images)
    assert m.scores.tolist() == [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    assert m.true_positive.tolist() == [True, False, False, True, True, False]
    assert m.num_truth == 3


def test_recall_at_false_positive_counts(two_images):
    m = match_detections(*two_images)
    # cumulative (recall, fp): (1/3,0) (1/3,1) (1/3,2) (2/3,2) (1,2) (1,3)
    assert recall_at_false_positives(m, (0, 1, 2, 3)) == {0: pytest.approx(1 / 3), 1: pytest.approx(1 / 3),
                                                          2: pytest.approx(1.0), 3: pytest.approx(1.0)}


def test_average_precision_by_hand(two_images):
    m = match_detections(*two_images)
    # precision at each recall step: 1/1 at 1/3, 2/4 at 2/3, 3/5 at 1 → monotone: 1, 0.6, 0.6
    assert average_precision(m) == pytest.approx((1 + 0.6 + 0.6) / 3)


def test_a_detection_takes_the_best_unmatched_box_and_images_without_faces_count_as_false():
    truth = {"a.jpg": np.array([[0, 0, 10, 10], [4, 0, 14, 10]]), "empty.jpg": np.zeros((0, 4))}
    detections = {"a.jpg": (np.array([[4, 0, 14, 10], [3, 0, 13, 10]]), np.array([0.9, 0.8])),
                  "empty.jpg": (np.array([[0, 0, 5, 5]]), np.array([0.95]))}
    m = match_detections(detections, truth)
    # 0.95 FP (no faces); 0.9 takes box 2 (IoU 1); 0.8 then takes box 1 (IoU 7/13 = 0.54 ≥ 0.5)
    assert m.true_positive.tolist() == [False, True, True]


def test_no_detections_give_zero_recall_and_ap():
    truth = {"a.jpg": np.array([[0, 0, 10, 10]])}
    m = match_detections({"a.jpg": (np.zeros((0, 4)), np.zeros(0))}, truth)
    assert recall_at_false_positives(m) == {10: 0.0, 50: 0.0, 100: 0.0} and average_precision(m) == 0.0


def test_roc_png_is_written(two_images, tmp_path):
    path = roc_png({"mine": match_detections(*two_images)}, tmp_path / "roc.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
