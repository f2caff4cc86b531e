import numpy as np
import pytest

from finegrain.boxes import drop_nested, iou_matrix, nms, paired_iou, scale_boxes, square


def brute_iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def brute_nms(boxes, scores, threshold):
    """The textbook loop: take the best remaining box, drop everything overlapping it too much, repeat."""
    remaining = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    keep = []
    while remaining:
        best = remaining.pop(0)
        keep.append(best)
        remaining = [i for i in remaining if brute_iou(boxes[best], boxes[i]) <= threshold]
    return keep


def random_boxes(rng, n):
    xy = rng.uniform(0, 100, (n, 2))
    wh = rng.uniform(5, 40, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def test_iou_matrix_matches_hand_computed_cases():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    expected = np.array([[1, 50 / 150, 0], [1, 50 / 150, 0]])
    np.testing.assert_allclose(iou_matrix(a, b), expected)


@pytest.mark.parametrize("seed", range(5))
def test_iou_matrix_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    a, b = random_boxes(rng, 30), random_boxes(rng, 20)
    expected = np.array([[brute_iou(x, y) for y in b] for x in a])
    np.testing.assert_allclose(iou_matrix(a, b), expected, atol=1e-12)


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7, 1.0])
@pytest.mark.parametrize("seed", range(4))
def test_nms_matches_brute_force(threshold, seed):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 200)
    scores = rng.random(200)
    scores[:10] = scores[10:20]  # ties must break the same way (lower index first)
    assert nms(boxes, scores, threshold).tolist() == brute_nms(boxes, scores, threshold)


def test_paired_iou_is_the_diagonal_of_the_matrix():
    rng = np.random.default_rng(9)
    a, b = random_boxes(rng, 25), random_boxes(rng, 25)
    np.testing.assert_allclose(paired_iou(a, b), np.diag(iou_matrix(a, b)))


def test_nms_keeps_the_best_of_a_cluster_and_separate_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]])
    assert nms(boxes, np.array([0.5, 0.9, 0.1]), 0.5).tolist() == [1, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_square_and_scale_keep_the_centre():
    box = np.array([[10, 20, 30, 60]])
    np.testing.assert_allclose(square(box), [[0, 20, 40, 60]])
    np.testing.assert_allclose(scale_boxes(box, 2), [[0, 0, 40, 80]])


def test_nested_boxes_of_one_face_leave_one():
    boxes = np.array([[10, 10, 90, 90], [30, 30, 70, 70], [200, 200, 260, 260]], np.float64)
    assert drop_nested(boxes, np.array([0.8, 0.9, 0.7])) == [1, 2]  # the inner one scored higher
