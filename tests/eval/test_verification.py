"""10-fold threshold selection against brute force; pair-file parsing; ROC summaries."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from finegrain.errors import DataError
from finegrain.eval.verification import (
    accuracy_at,
    best_threshold,
    kfold_verification,
    pair_distances,
    roc_summary,
    validation_threshold,
)
from finegrain.verification.pairs import read_pairs, resolve_images


def brute_force_threshold(d: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """Every midpoint between sorted distances (and both ends), accuracy by a plain loop; smallest wins ties."""
    values = sorted(set(d.tolist()))
    candidates = [values[0] - 1e-6] + [(a + b) / 2 for a, b in itertools.pairwise(values)] + [values[-1] + 1e-6]
    best_t, best_acc = None, -1.0
    for t in candidates:
        acc = sum((di <= t) == si for di, si in zip(d, same)) / len(d)
        if acc > best_acc:
            best_t, best_acc = t, acc
    return best_t, best_acc


@pytest.mark.parametrize("seed", range(6))
def test_best_threshold_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    same = rng.random(120) < 0.5
    # Overlapping classes, and rounded so that ties between distances occur.
    d = np.round(np.where(same, rng.normal(0.8, 0.25, 120), rng.normal(1.2, 0.25, 120)), 1 + seed % 3)
    t, acc = best_threshold(d, same)
    bt, bacc = brute_force_threshold(d, same)
    assert acc == pytest.approx(bacc)
    assert t == pytest.approx(bt)
    assert accuracy_at(d, same, t) == pytest.approx(acc)


def test_kfold_equals_brute_force_per_fold():
    rng = np.random.default_rng(7)
    same = np.tile(np.repeat([True, False], 30), 10)
    folds = np.repeat(np.arange(10), 60)
    d = np.where(same, rng.normal(0.9, 0.3, 600), rng.normal(1.3, 0.3, 600))
    report = kfold_verification(d, same, folds)
    expected = []
    for f in range(10):
        train, test = folds != f, folds == f
        t, _ = brute_force_threshold(d[train], same[train])
        assert report["thresholds"][f] == pytest.approx(t)
        expected.append(np.mean((d[test] <= t) == same[test]))
    assert report["fold_accuracies"] == pytest.approx(expected)
    assert report["accuracy"] == pytest.approx(np.mean(expected))
    assert report["standard_error"] == pytest.approx(np.std(expected, ddof=1) / np.sqrt(10))


def test_separable_pairs_are_all_right():
    same = np.array([True] * 5 + [False] * 5)
    d = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 1.0, 1.1, 1.2, 1.3, 1.4])
    t, acc = best_threshold(d, same)
    assert acc == 1.0 and 0.5 < t < 1.0
    summary = roc_summary(d, same)
    assert summary["roc_auc"] == 1.0 and summary["tar_at_far_0.001"] == 1.0


def test_tar_at_far_hand_computed():
    # 4 matched pairs, 4 mismatched; the closest mismatched pair (0.25) beats two matched ones.
    same = np.array([True, True, True, True, False, False, False, False])
    d = np.array([0.1, 0.2, 0.3, 0.4, 0.25, 0.9, 1.0, 1.1])
    s = roc_summary(d, same, fars=(0.0, 0.25))
    assert s["tar_at_far_0"] == 0.5  # accept only d ≤ 0.2: 2 of 4 matched, no false accept
    assert s["tar_at_far_0.25"] == 1.0
    assert s["roc_auc"] == pytest.approx(14 / 16)


def test_pair_distances():
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    d = pair_distances(emb, np.array([[0, 1], [0, 2]]))
    assert d == pytest.approx([np.sqrt(2), 0.0])


def write_lfw(root, names=("Ann_A", "Bob_B", "Cy_C"), per=3):
    for n in names:
        (root / n).mkdir(parents=True)
        for i in range(1, per + 1):
            (root / n / f"{n}_{i:04d}.jpg").write_bytes(b"x")


def test_read_pairs_both_forms_and_folds(tmp_path):
    f = tmp_path / "pairs.txt"
    f.write_text("2\t1\nAnn_A\t1\t2\nAnn_A\t1\tBob_B\t3\nCy_C 2 3\nBob_B 1 Cy_C 1\n")
    ps = read_pairs(f)
    assert ps.num_folds == 2 and list(ps.folds) == [0, 0, 1, 1]
    assert list(ps.same) == [True, False, True, False]
    assert ps.pairs[1].name_b == "Bob_B" and ps.pairs[1].index_b == 3
    assert ps.fold_names(0) == {"Ann_A", "Bob_B"}
    write_lfw(tmp_path / "img")
    paths, index = resolve_images(ps, tmp_path / "img")
    assert len(paths) == 7  # Ann_A 1 used twice
    assert index[0, 0] == index[1, 0]
    assert paths[index[3, 1]].name == "Cy_C_0001.jpg"


def test_read_pairs_single_set_header(tmp_path):
    f = tmp_path / "dev.txt"
    f.write_text("1\nAnn_A 1 2\nAnn_A 1 Bob_B 1\n")
    assert read_pairs(f).num_folds == 1


@pytest.mark.parametrize("body, where, words", [
    ("Ann_A 1\nAnn_A 1 Bob_B 1\n", ":2", "expected 'name i j'"),
    ("Ann_A 1 two\nAnn_A 1 Bob_B 1\n", ":2", "not a number"),
    ("Ann_A 1 2\nAnn_A 0 Bob_B 1\n", ":3", "start at 1"),
    ("Ann_A 1 Bob_B 2\nAnn_A 1 2\n", ":2", "expected a matched"),
])
def test_read_pairs_bad_lines_name_the_line(tmp_path, body, where, words):
    f = tmp_path / "pairs.txt"
    f.write_text("1\n" + body)
    with pytest.raises(DataError) as e:
        read_pairs(f)
    text = str(e.value) + " ".join(str(p) for p in e.value.problems)
    assert f"pairs.txt{where}" in text and words in text


def test_read_pairs_bad_header_and_count(tmp_path):
    f = tmp_path / "pairs.txt"
    f.write_text("ten 300\n")
    with pytest.raises(DataError, match=":1: the header"):
        read_pairs(f)
    f.write_text("2 1\nAnn_A 1 2\nAnn_A 1 Bob_B 1\n")
    with pytest.raises(DataError, match="promises 2 fold"):
        read_pairs(f)


def test_missing_images_are_listed(tmp_path):
    f = tmp_path / "pairs.txt"
    f.write_text("1\nAnn_A 1 9\nAnn_A 1 Zed_Z 1\n")
    write_lfw(tmp_path / "img")
    with pytest.raises(DataError) as e:
        resolve_images(read_pairs(f), tmp_path / "img")
    names = " ".join(str(p.path) for p in e.value.problems)
    assert "Ann_A_0009" in names and "Zed_Z_0001" in names


def test_validation_threshold_is_balanced_and_separates_clusters():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 8))
    labels = np.repeat(np.arange(5), 6)
    emb = centres[labels] + rng.normal(0, 0.01, (30, 8))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    out = validation_threshold(emb, labels)
    assert out["accuracy"] == 1.0 and out["pairs"] == 2 * 5 * 15  # 75 matched pairs, as many mismatched
    assert validation_threshold(emb[:3], np.zeros(3)) is None  # no mismatched pair


def test_validation_threshold_on_a_large_set_samples_pairs_instead_of_building_all_of_them():
    """200,000 images have 2·10¹⁰ pairs: enumerating them (as before) cannot fit in memory. Sampled pairs
    are matched or mismatched as drawn, and the threshold still separates well-separated clusters."""
    import time

    rng = np.random.default_rng(1)
    n, classes = 200_000, 5_000
    labels = rng.integers(0, classes, n)
    centres = rng.normal(size=(classes, 16))
    emb = centres[labels] + rng.normal(0, 0.01, (n, 16))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    started = time.perf_counter()
    out = validation_threshold(emb, labels, max_pairs=5_000)
    assert time.perf_counter() - started < 10
    assert out["pairs"] == 10_000 and out["accuracy"] > 0.99
    # Skewed classes: one class holds nearly everything, and the few others are still drawn as mismatches.
    skewed = np.zeros(50_000, np.int64)
    skewed[:3] = [1, 2, 2]
    out = validation_threshold(rng.normal(size=(50_000, 4)), skewed, max_pairs=1_000)
    assert out["pairs"] == 2_000
    assert validation_threshold(emb[:3000], np.zeros(3000)) is None  # one class: no mismatched pair
