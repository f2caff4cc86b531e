import json

import cv2
import numpy as np
import pytest

from finegrain.errors import DataError
from finegrain.eval.identification import (
    cmc_curve,
    cmc_png,
    identification_report,
    identity_ranks,
    rank_k_accuracy,
)

# Three probes against a five-image gallery of identities a, a, b, c, d.
GALLERY = ["a", "a", "b", "c", "d"]
PROBES = ["a", "b", "c"]
SIMILARITY = np.array([
    [0.2, 0.9, 0.1, 0.3, 0.0],  # a: its best "a" (0.9) is first             -> rank 1
    [0.8, 0.7, 0.6, 0.1, 0.0],  # b: two "a" images (0.8, 0.7) come first     -> rank 3
    [0.5, 0.4, 0.3, 0.2, 0.9],  # c: d, a, a, b come first                    -> rank 5
])


def test_cmc_and_rank_k_against_hand_computed_case():
    assert identity_ranks(SIMILARITY, PROBES, GALLERY).tolist() == [1, 3, 5]
    np.testing.assert_allclose(cmc_curve(SIMILARITY, PROBES, GALLERY, max_rank=6),
                               [1 / 3, 1 / 3, 2 / 3, 2 / 3, 1, 1])
    assert rank_k_accuracy(SIMILARITY, PROBES, GALLERY, k=1) == pytest.approx(1 / 3)
    assert rank_k_accuracy(SIMILARITY, PROBES, GALLERY, k=3) == pytest.approx(2 / 3)
    report = identification_report(SIMILARITY, PROBES, GALLERY)
    assert report["rank_1"] == pytest.approx(1 / 3) and report["rank_5"] == 1.0 and report["rank_10"] == 1.0
    assert len(report["cmc"]) == 20 and report["cmc"][2] == pytest.approx(2 / 3)
    assert report["probes"] == 3 and report["probes_evaluated"] == 3 and report["probes_absent"] == 0
    assert report["gallery_images"] == 5 and report["gallery_identities"] == 4
    json.dumps(report)  # plain Python values only


def _brute_force_ranks(similarity, probe_labels, gallery_labels):
    ranks = []
    for row, label in zip(similarity, probe_labels):
        if label not in gallery_labels:
            ranks.append(0)
            continue
        order = np.argsort(-row, kind="stable")
        ranks.append(next(pos for pos, j in enumerate(order, 1) if gallery_labels[j] == label))
    return np.array(ranks)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cmc_matches_a_brute_force_loop_on_random_data(seed, monkeypatch):
    import finegrain.eval.identification as ident

    rng = np.random.default_rng(seed)
    gallery = [f"id{i}" for i in rng.integers(0, 40, size=300)]
    probes = [f"id{i}" for i in rng.integers(0, 45, size=120)]  # ids 40-44 are never in the gallery
    similarity = rng.normal(size=(120, 300)).astype(np.float32)
    expected = _brute_force_ranks(similarity, probes, gallery)
    monkeypatch.setattr(ident, "_CHUNK_ELEMENTS", 7 * 300)  # several chunks, the last one partial
    ranks = identity_ranks(similarity, probes, gallery)
    np.testing.assert_array_equal(ranks, expected)
    present = expected[expected > 0]
    cmc = cmc_curve(similarity, probes, gallery, max_rank=30)
    np.testing.assert_allclose(cmc, [(present <= r).mean() for r in range(1, 31)])
    for k in (1, 5, 10):
        assert rank_k_accuracy(similarity, probes, gallery, k) == pytest.approx((present <= k).mean())
    assert identification_report(similarity, probes, gallery)["probes_absent"] == int((expected == 0).sum())


def test_absent_identities_are_excluded_and_counted():
    probes = ["a", "zed", "b", None]
    similarity = np.vstack([SIMILARITY[:2], [[0.9, 0.9, 0.9, 0.9, 0.9]], [[0.1] * 5]])[[0, 2, 1, 3]]
    report = identification_report(similarity, probes, GALLERY)
    assert report["probes"] == 4 and report["probes_absent"] == 2 and report["probes_evaluated"] == 2
    assert report["rank_1"] == pytest.approx(0.5)  # a at rank 1, b at rank 3; the absent ones are not misses
    assert report["cmc"][2] == 1.0
    with pytest.raises(DataError, match="no probe's identity is in the gallery"):
        identification_report(similarity[1:2], ["zed"], GALLERY)


def test_ties_count_against_the_probe_and_distractors_never_match():
    # A collapsed model (all similarities equal) must not look perfect.
    assert identity_ranks(np.ones((2, 4)), ["a", "b"], ["a", "b", "c", "d"]).tolist() == [4, 4]
    # An unlabelled (None) distractor outranks the right identity but never counts as a match.
    assert identity_ranks(np.array([[0.9, 0.5]]), ["a"], [None, "a"]).tolist() == [2]
    assert identification_report(np.array([[0.9, 0.5]]), ["a"], [None, "a"])["gallery_unlabelled"] == 1


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(DataError, match="shape"):
        identity_ranks(np.zeros((2, 3)), ["a"], ["a", "b", "c"])


def test_cmc_png_is_written(tmp_path):
    path = cmc_png(np.linspace(0.6, 1.0, 20), tmp_path / "out" / "cmc.png", title="test")
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 300 and image.std() > 10
    assert [p.name for p in path.parent.iterdir()] == ["cmc.png"]  # no temporary file left behind
