import numpy as np
import pytest

from finegrain.data.records import Record
from finegrain.data.sources import read_folder
from finegrain.data.validate import prepare
from finegrain.errors import ConfigError, DataError

from .conftest import write_image


def test_strict_reports_every_bad_file_once(bad_tree, cache_dir):
    records = read_folder(bad_tree.root)
    with pytest.raises(DataError) as err:
        prepare(records, 32, cache_dir=cache_dir)
    message = str(err.value)
    assert message.startswith(f"{len(bad_tree.broken)} of {len(records)} input images cannot be used")
    assert "--skip-bad" in message
    assert sorted(p.path.name for p in err.value.problems) == sorted(bad_tree.broken)
    for name, reason in bad_tree.broken.items():
        line = next(line for line in message.splitlines() if name in line)
        assert reason in line, (name, line)
    for name in bad_tree.convertible:
        assert name not in message


def test_skip_bad_keeps_good_and_drops_single_image_class(bad_tree, cache_dir):
    data = prepare(read_folder(bad_tree.root), 32, cache_dir=cache_dir, skip_bad=True, progress=False)
    names = sorted(r.path.name for r in data.records)
    expected = sorted(
        [f"cat{i}.jpg" for i in range(3)] + [f"dog{i}.png" for i in range(3)] + bad_tree.convertible
    )
    assert names == expected
    assert data.classes == ["cat", "dog", "odd"]
    assert data.images.paths == [r.path for r in data.records]
    assert [data.classes[k] for k in data.labels] == [r.label for r in data.records]
    assert data.labels.dtype == np.int64 and data.scores is None
    stack = data.images.array()
    assert stack.shape == (len(expected), 32, 32, 3) and stack.dtype == np.uint8
    assert any(n.startswith("skipped 5 bad images") and "empty.jpg (empty file)" in n for n in data.notes)
    assert "dropped 1 class with fewer than 2 images: lonely" in data.notes


def test_min_per_class_and_too_few_classes(tmp_path, cache_dir):
    records = [
        Record(write_image(tmp_path / c / f"{i}.png", seed=i), label=c) for c in "ab" for i in range(3)
    ]
    records.append(Record(write_image(tmp_path / "c" / "0.png"), label="c"))
    data = prepare(records, 16, cache_dir=cache_dir, min_per_class=2)
    assert data.classes == ["a", "b"] and len(data.records) == 6
    with pytest.raises(DataError, match="need at least 2 classes with 4 or more images"):
        prepare(records, 16, cache_dir=cache_dir, min_per_class=4)


def test_score_task(tmp_path, cache_dir):
    paths = [write_image(tmp_path / f"{i}.png", seed=i) for i in range(4)]
    records = [Record(p, score=float(i) / 2) for i, p in enumerate(paths)]
    data = prepare(records, 16, cache_dir=cache_dir, task="score")
    assert data.scores.dtype == np.float32 and data.scores.tolist() == [0.0, 0.5, 1.0, 1.5]
    assert data.labels is None and data.classes == []

    records[1] = Record(paths[1])  # no score
    records.append(Record(tmp_path / "gone.png", score=1.0))
    records.append(Record(tmp_path / "gone2.png"))
    with pytest.raises(DataError) as err:
        prepare(records, 16, cache_dir=cache_dir, task="score")
    assert [(p.path.name, p.reason) for p in err.value.problems] == [
        ("1.png", "no score (or not finite)"),
        ("gone.png", "file not found"),
        ("gone2.png", "no score (or not finite); file not found"),
    ]
    kept = prepare(records, 16, cache_dir=cache_dir, task="score", skip_bad=True)
    assert [r.path.name for r in kept.records] == ["0.png", "2.png", "3.png"]
    assert kept.scores.tolist() == [0.0, 1.0, 1.5]


def test_task_without_targets_is_one_sentence(tmp_path, cache_dir):
    records = [Record(write_image(tmp_path / f"{i}.png"), label="x") for i in range(3)]
    with pytest.raises(DataError) as err:
        prepare(records, 16, cache_dir=cache_dir, task="score")
    assert str(err.value) == "task 'score' needs scores, but none of the 3 inputs has one"
    with pytest.raises(ConfigError, match="--task"):
        prepare(records, 16, cache_dir=cache_dir, task="classify")


def test_subset_relabels_classes(tmp_path, cache_dir):
    records = [
        Record(write_image(tmp_path / c / f"{i}.png", seed=i), label=c) for c in "abc" for i in range(2)
    ]
    data = prepare(records, 16, cache_dir=cache_dir)
    part = data.subset([2, 3, 4, 5])  # classes b and c
    assert part.classes == ["b", "c"] and part.labels.tolist() == [0, 0, 1, 1]
    assert part.images.paths == [r.path for r in part.records] == [r.path for r in records[2:]]
    kept = data.subset([4, 5], relabel=False)
    assert kept.classes == ["a", "b", "c"] and kept.labels.tolist() == [2, 2]
