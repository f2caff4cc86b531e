"""Few-shot episodes: reproducible, leak-free sampling; accuracy against hand-computed cases; the command end to end."""

import json

import numpy as np
import pytest

from finegrain.cli.fewshot import fewshot_command as cmd_fewshot
from finegrain.errors import ConfigError, DataError
from finegrain.fewshot.episodes import Episode, episode_accuracy, sample_episodes

# 8 classes: class c has 3 + c images (3..10), interleaved so indices are not grouped by class.
LABELS = np.array([c for c in range(8) for _ in range(3 + c)])[np.random.default_rng(1).permutation(52)]


def _as_lists(episodes: list[Episode]) -> list[list[list[int]]]:
    return [[e.support.tolist(), e.support_classes.tolist(), e.queries.tolist(), e.answers.tolist()]
            for e in episodes]


def test_same_seed_same_episodes_different_seed_different():
    a = sample_episodes(LABELS, ways=5, shots=2, queries=1, episodes=20, seed=7)
    b = sample_episodes(LABELS, ways=5, shots=2, queries=1, episodes=20, seed=7)
    c = sample_episodes(LABELS, ways=5, shots=2, queries=1, episodes=20, seed=8)
    assert _as_lists(a) == _as_lists(b)
    assert _as_lists(a) != _as_lists(c)


@pytest.mark.parametrize(("ways", "shots", "queries"), [(5, 1, 1), (4, 2, 3), (2, 5, 2)])
def test_no_class_leaks(ways, shots, queries):
    for ep in sample_episodes(LABELS, ways, shots, queries, episodes=50, seed=0):
        assert ep.support.shape == ep.support_classes.shape == (ways * shots,)
        assert ep.queries.shape == ep.answers.shape == (ways * queries,)
        assert len(set(ep.support_classes.tolist())) == ways == ep.ways
        assert set(ep.answers.tolist()) == set(ep.support_classes.tolist())
        assert not set(ep.support.tolist()) & set(ep.queries.tolist())
        assert len(set(ep.support.tolist())) == ways * shots and len(set(ep.queries.tolist())) == ways * queries
        # The recorded class ids are the images' true labels.
        assert (LABELS[ep.support] == ep.support_classes).all() and (LABELS[ep.queries] == ep.answers).all()


def test_ineligible_classes_are_never_sampled():
    # shots + queries = 7: only classes 4..7 (7..10 images) qualify.
    seen = set()
    for ep in sample_episodes(LABELS, ways=3, shots=4, queries=3, episodes=200, seed=0):
        seen |= set(ep.support_classes.tolist())
    assert seen == {4, 5, 6, 7}


def test_string_labels_work():
    labels = np.array(["cat", "dog", "owl"] * 4)
    ep = sample_episodes(labels, ways=3, shots=2, queries=2, episodes=1, seed=0)[0]
    assert sorted(set(ep.answers.tolist())) == ["cat", "dog", "owl"]


def test_too_few_classes_is_a_clear_error():
    with pytest.raises(DataError, match=r"need 5 classes with at least 9 images each, but only 2 of the 8 classes"):
        sample_episodes(LABELS, ways=5, shots=5, queries=4, episodes=10, seed=0)
    with pytest.raises(ConfigError, match="--ways"):
        sample_episodes(LABELS, ways=1, shots=1, queries=1, episodes=10, seed=0)
    with pytest.raises(ConfigError, match="--shots"):
        sample_episodes(LABELS, ways=2, shots=0, queries=1, episodes=10, seed=0)


def _unit(*angles_deg: float) -> np.ndarray:
    a = np.radians(angles_deg)
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def test_accuracy_by_hand_nearest_and_prototype():
    # Two classes on the unit circle: class 0's shots at 0° and 100° (prototype at 50°), class 1's at
    # 60° and 70° (prototype at 65°). Query A (class 0) at 55°: its nearest image is class 1's at 60°
    # (wrong), its nearest prototype class 0's at 50° (right). Query B (class 1) at 68° is right both ways.
    emb = _unit(0, 100, 60, 70, 55, 68)
    ep = Episode(support=np.array([0, 1, 2, 3]), support_classes=np.array([0, 0, 1, 1]),
                 queries=np.array([4, 5]), answers=np.array([0, 1]))
    assert episode_accuracy(emb, [ep], mode="nearest") == {"accuracy": 0.5, "ci95": 0.0, "episodes": 1}
    assert episode_accuracy(emb, [ep], mode="prototype") == {"accuracy": 1.0, "ci95": 0.0, "episodes": 1}
    # With a second episode asking only query B (accuracy 1.0): mean 0.75, std 0.25, interval 1.96·0.25/√2.
    only_b = Episode(ep.support, ep.support_classes, np.array([5, 5]), np.array([1, 1]))
    result = episode_accuracy(emb, [ep, only_b], mode="nearest")
    assert result["accuracy"] == pytest.approx(0.75) and result["episodes"] == 2
    assert result["ci95"] == pytest.approx(1.96 * 0.25 / np.sqrt(2))


def test_prototype_follows_episode_class_order():
    # Classes listed out of sorted order (7 before 2) must still map prototypes to the right class.
    emb = _unit(0, 10, 90, 80, 5, 85)
    ep = Episode(support=np.array([0, 1, 2, 3]), support_classes=np.array([7, 7, 2, 2]),
                 queries=np.array([4, 5]), answers=np.array([7, 2]))
    assert episode_accuracy(emb, [ep], mode="prototype")["accuracy"] == 1.0
    assert episode_accuracy(emb, [ep], mode="nearest")["accuracy"] == 1.0


def test_perfectly_separated_classes_score_one():
    rng = np.random.default_rng(0)
    centres = np.eye(8, 16)  # eight orthogonal directions
    emb = centres[LABELS] + rng.normal(0, 0.05, (len(LABELS), 16))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    episodes = sample_episodes(LABELS, ways=5, shots=2, queries=1, episodes=100, seed=3)
    for mode in ("nearest", "prototype"):
        assert episode_accuracy(emb, episodes, mode=mode) == {"accuracy": 1.0, "ci95": 0.0, "episodes": 100}
    with pytest.raises(ConfigError, match="--mode"):
        episode_accuracy(emb, episodes, mode="knn")


@pytest.fixture
def tiny_model(tmp_path, make_model):
    return make_model(tmp_path / "model.safetensors")


def test_fewshot_command_end_to_end(tiny_model, class_folder, capsys):
    # class_folder: 6 classes × 6 images. Untrained, so only the shape of the report is checked.
    assert cmd_fewshot(str(tiny_model), str(class_folder), ways="5,3", shots="1,2", episodes=30, as_json=True) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["data"]["images"] == 36 and report["data"]["classes"] == 6
    assert [(r["ways"], r["shots"]) for r in report["episodes"]] == [(5, 1), (5, 2), (3, 1), (3, 2)]
    for r in report["episodes"]:
        assert 0.0 <= r["accuracy"] <= 1.0 and r["episodes"] == 30 and r["ci95"] >= 0
    # Same seed, same numbers; the table form prints every setting.
    cmd_fewshot(str(tiny_model), str(class_folder), ways="5,3", shots="1,2", episodes=30, as_json=True)
    assert json.loads(capsys.readouterr().out) == report
    assert cmd_fewshot(str(tiny_model), str(class_folder), ways="5", episodes=10) == 0
    table = capsys.readouterr().out
    assert "36 images, 6 classes" in table and "accuracy" in table


def test_fewshot_command_errors(tiny_model, class_folder, tmp_path):
    with pytest.raises(ConfigError, match="DATA.*--runs"):
        cmd_fewshot(str(tiny_model))
    with pytest.raises(DataError, match="only 6 of the 6 classes"):  # default 20-way needs 20 classes
        cmd_fewshot(str(tiny_model), str(class_folder))
    with pytest.raises(ConfigError, match="--ways"):
        cmd_fewshot(str(tiny_model), str(class_folder), ways="five")
    bad = class_folder / "class00" / "broken.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match="could not be read") as info:
        cmd_fewshot(str(tiny_model), str(class_folder), ways="3", episodes=5)
    assert "broken.png" in str(info.value)


def test_fewshot_command_with_official_runs(tiny_model, class_folder, tmp_path, capsys):
    import zipfile

    import cv2

    runs_zip = tmp_path / "all_runs.zip"
    with zipfile.ZipFile(runs_zip, "w") as z:
        lines = []
        for c in range(3):
            png = cv2.imencode(".png", np.full((20, 20), 40 + 80 * c, np.uint8))[1].tobytes()
            z.writestr(f"run01/training/class0{c}.png", png)
            z.writestr(f"run01/test/item0{c}.png", png)
            lines.append(f"run01/test/item0{c}.png run01/training/class0{c}.png")
        z.writestr("run01/class_labels.txt", "\n".join(lines) + "\n")
    assert cmd_fewshot(str(tiny_model), runs=str(runs_zip), as_json=True) == 0
    report = json.loads(capsys.readouterr().out)
    assert "episodes" not in report and report["official_runs"]["ways"] == 3 and report["official_runs"]["runs"] == 1
    assert cmd_fewshot(str(tiny_model), str(class_folder), runs=str(runs_zip), ways="3", episodes=5) == 0
    table = capsys.readouterr().out
    assert "official runs" in table and "3-way 1-shot over 1 runs" in table
