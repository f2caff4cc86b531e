from collections import Counter
from pathlib import Path

import pytest

from finegrain.data.records import Record
from finegrain.data.split import split_positions, split_records
from finegrain.errors import ConfigError, DataError


def labelled(n_classes: int = 20, per_class: int = 6) -> list[Record]:
    return [Record(Path(f"c{c}/{i}.jpg"), label=f"c{c}") for c in range(n_classes) for i in range(per_class)]


def as_names(parts):
    return {k: [str(r.path) for r in v] for k, v in parts.items()}


def test_by_class_is_deterministic_and_disjoint():
    records = labelled()
    parts = split_records(records, by="class", val=0.2, test=0.1, seed=3)
    assert as_names(parts) == as_names(split_records(records, by="class", val=0.2, test=0.1, seed=3))
    assert as_names(parts) != as_names(split_records(records, by="class", val=0.2, test=0.1, seed=4))
    classes = {k: {r.label for r in v} for k, v in parts.items()}
    assert (len(classes["train"]), len(classes["val"]), len(classes["test"])) == (14, 4, 2)
    assert not classes["train"] & classes["val"] and not classes["train"] & classes["test"]
    assert not classes["val"] & classes["test"]
    assert sum(len(v) for v in parts.values()) == len(records)


def test_by_class_keeps_a_training_class():
    parts = split_records(labelled(n_classes=2), by="class", val=0.5, test=0.4)
    assert len({r.label for r in parts["train"]}) == 1 and parts["val"] and not parts["test"]


def test_by_image_stratified():
    records = labelled(per_class=5) + [Record(Path("solo.jpg"), label="solo")]
    parts = split_records(records, by="image", val=0.2, seed=1)
    assert as_names(parts) == as_names(split_records(records, by="image", val=0.2, seed=1))
    train, val = Counter(r.label for r in parts["train"]), Counter(r.label for r in parts["val"])
    assert all(val[f"c{c}"] == 1 and train[f"c{c}"] == 4 for c in range(20))
    assert train["solo"] == 1 and not parts["test"]
    assert not {r.path for r in parts["train"]} & {r.path for r in parts["val"]}


def test_by_image_scores_without_labels():
    records = [Record(Path(f"{i}.jpg"), score=float(i)) for i in range(50)]
    parts = split_records(records, by="image", val=0.2, test=0.2, seed=0)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [30, 10, 10]
    with pytest.raises(ConfigError, match="--split-by class needs labelled images"):
        split_records(records, by="class")


def test_split_field_is_honoured():
    records = [
        Record(Path("a.jpg"), label="x", split="train"),
        Record(Path("b.jpg"), label="x", split="TEST"),
        Record(Path("c.jpg"), label="y", split="val"),
        Record(Path("d.jpg"), label="y", split="train"),
    ]
    parts = split_records(records, by="class", seed=123)
    assert as_names(parts) == {"train": ["a.jpg", "d.jpg"], "val": ["c.jpg"], "test": ["b.jpg"]}


def test_bad_split_values():
    records = [
        Record(Path("a.jpg"), split="train"),
        Record(Path("b.jpg"), split="holdout"),
        Record(Path("c.jpg")),
    ]
    with pytest.raises(DataError) as err:
        split_records(records)
    assert [p.path.name for p in err.value.problems] == ["b.jpg", "c.jpg"]
    assert "'holdout' is not one of train, val, test" in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"val": 1.2}, "--val"),
        ({"test": -0.1}, "--test"),
        ({"val": 0.6, "test": 0.5}, "--val + --test"),
        ({"by": "person"}, "--split-by"),
    ],
)
def test_bad_options(kwargs, flag):
    with pytest.raises(ConfigError, match=flag.replace("+", r"\+")):
        split_records(labelled(), **kwargs)


def test_positions_match_records():
    records = labelled()
    positions = split_positions(records, by="class", val=0.25, seed=2)
    by_records = split_records(records, by="class", val=0.25, seed=2)
    assert {k: [records[i] for i in v] for k, v in positions.items()} == by_records
    assert sorted(sum(positions.values(), [])) == list(range(len(records)))
