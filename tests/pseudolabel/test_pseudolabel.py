import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from finegrain.cli import build_parser
from finegrain.cli.pseudolabel import pseudolabel_command as cmd_pseudolabel
from finegrain.data import prepare, read_source
from finegrain.errors import ConfigError, DataError, FinegrainError
from finegrain.index.build import index_gallery
from finegrain.index.gallery import GalleryIndex, IndexBinding
from finegrain.pseudolabel.assign import assign_labels
from finegrain.pseudolabel.run import pseudolabel, read_unlabelled

LABELS = ["a", "a", "b", "c"]
SIMILARITY = np.array([
    [0.90, 0.50, 0.30, 0.10],  # a 0.90, runner-up b 0.30: accepted
    [0.20, 0.85, 0.80, 0.00],  # a 0.85 but b 0.80 is close: rejected by the margin only
    [0.10, 0.20, 0.70, 0.60],  # b 0.70: below the threshold
    [0.00, 0.10, 0.20, 0.95],  # c 0.95, runner-up b 0.20: accepted
])


def test_assign_labels_threshold_and_margin():
    found = assign_labels(SIMILARITY, LABELS, threshold=0.8, margin=0.2)
    assert found.labels == ["a", None, None, "c"]
    assert found.nearest == ["a", "a", "b", "c"]
    np.testing.assert_allclose(found.confidences, [0.90, 0.85, 0.70, 0.95])
    np.testing.assert_allclose(found.runner_up, [0.30, 0.80, 0.60, 0.20])
    assert found.accepted.tolist() == [True, False, False, True]
    # Without a margin the ambiguous row passes; a lower threshold lets the third row in too.
    assert assign_labels(SIMILARITY, LABELS, threshold=0.8).labels == ["a", "a", None, "c"]
    assert assign_labels(SIMILARITY, LABELS, threshold=0.6).labels == ["a", "a", "b", "c"]
    assert assign_labels(SIMILARITY, LABELS, threshold=0.96).labels == [None] * 4


def test_assign_labels_k_averages_each_identitys_best_k():
    # k=2: identity a scores the mean of its two similarities; b and c have one image each.
    found = assign_labels(SIMILARITY, LABELS, threshold=0.6, k=2)
    np.testing.assert_allclose(found.confidences, [0.70, 0.80, 0.70, 0.95])
    np.testing.assert_allclose(found.runner_up, [0.30, 0.525, 0.60, 0.20])
    assert found.labels == ["a", "b", "b", "c"]


def test_assign_labels_edge_cases():
    one = assign_labels(np.array([[0.5, 0.7]]), ["x", "x"], threshold=0.6, margin=0.5)
    assert one.labels == ["x"] and one.runner_up[0] == -np.inf  # one identity: no rival, the margin holds
    assert assign_labels(np.zeros((0, 4)), LABELS, threshold=0.5).labels == []
    with pytest.raises(ConfigError, match="--threshold"):
        assign_labels(SIMILARITY, LABELS, threshold=1.5)
    with pytest.raises(ConfigError, match="--margin"):
        assign_labels(SIMILARITY, LABELS, threshold=0.5, margin=-0.1)
    with pytest.raises(ConfigError, match="k must"):
        assign_labels(SIMILARITY, LABELS, threshold=0.5, k=0)
    with pytest.raises(DataError, match="no label"):
        assign_labels(SIMILARITY, ["a", None, "b", "c"], threshold=0.5)
    with pytest.raises(ValueError, match="U×4"):
        assign_labels(SIMILARITY[:, :3], LABELS, threshold=0.5)


# -- end to end, with a tiny untrained model ------------------------------------------------------
CLASSES = [f"class{c:02d}" for c in range(6)]


@pytest.fixture
def setup(class_folder: Path, tmp_path: Path, make_model) -> dict:
    """A tiny untrained model, the 6×6 ``class_folder`` as the gallery, and unlabelled copies of it."""
    tmp = tmp_path / "setup"
    tmp.mkdir()
    make_model(tmp / "model.safetensors")
    gallery = class_folder
    # Unlabelled: copies of two gallery images per class, flattened and one folder deep, plus a broken file.
    unlabelled = tmp / "unlabelled"
    (unlabelled / "deeper").mkdir(parents=True)
    expected = {}
    for c in range(6):
        for i in range(2):
            target = unlabelled / ("deeper" if i else "") / f"c{c}_{i}.png"
            shutil.copyfile(gallery / f"class{c:02d}" / f"{i}.png", target)
            expected[target.name] = f"class{c:02d}"
    (unlabelled / "broken.png").write_bytes(b"not an image")
    return {"tmp": tmp, "model": tmp / "model.safetensors", "gallery": gallery, "unlabelled": unlabelled,
            "expected": expected}


def _check_manifest(manifest: Path, expected: dict, cache: Path) -> None:
    records = read_source(manifest)
    assert {r.path.name: r.label for r in records} == expected
    assert all(r.path.is_absolute() and r.path.exists() for r in records)
    lines = manifest.read_text().splitlines()
    assert lines[0] == "path,label,confidence"
    assert all(float(line.rsplit(",", 1)[1]) == pytest.approx(1.0, abs=1e-4) for line in lines[1:])
    data = prepare(records, 32, cache_dir=cache, progress=False)  # ready to train on: decodes, 3 classes
    assert data.classes == CLASSES and len(data.records) == 12


def test_copies_of_gallery_images_get_their_own_labels(setup, tmp_path):
    out = tmp_path / "pseudo.csv"
    summary = pseudolabel(setup["model"], setup["unlabelled"], 0.999, out, gallery=setup["gallery"], progress=False)
    assert summary["accepted"] == 12 and summary["rejected"] == 0 and summary["unlabelled"] == 13
    assert summary["labels"] == dict.fromkeys(CLASSES, 2)
    assert summary["gallery"]["images"] == 36 and summary["gallery"]["identities"] == 6
    assert len(summary["skipped_bad"]) == 1 and "broken.png" in summary["skipped_bad"][0]
    assert summary["threshold"] == 0.999
    _check_manifest(out, setup["expected"], tmp_path / "cache")


def test_index_as_gallery_gives_the_same_labels(setup, tmp_path):
    index = tmp_path / "gallery.idx"
    index_gallery(setup["model"], setup["gallery"], index, progress=False)
    out = tmp_path / "pseudo.csv"
    summary = pseudolabel(index, setup["unlabelled"], 0.999, out, margin=0.0, progress=False)
    assert summary["accepted"] == 12 and summary["gallery"]["images"] == 36
    _check_manifest(out, setup["expected"], tmp_path / "cache")


def test_nothing_accepted_still_writes_a_header(setup, tmp_path):
    out = tmp_path / "none.csv"
    # The margin rejects: copies sit at similarity 1 to their own class, and every class is within 2 of it.
    summary = pseudolabel(setup["model"], setup["unlabelled"], 0.5, out, gallery=setup["gallery"], margin=2.0,
                          progress=False)
    assert summary["accepted"] == 0 and summary["rejected_ambiguous"] == 12 and summary["labels"] == {}
    assert out.read_text() == "path,label,confidence\n"


def test_unlabelled_list_file_resolves_against_its_folder(setup, tmp_path):
    listing = setup["unlabelled"] / "todo.txt"
    listing.write_text("# to label\nc0_0.png\n\ndeeper/c1_1.png\n")
    assert read_unlabelled(listing) == [setup["unlabelled"] / "c0_0.png", setup["unlabelled"] / "deeper/c1_1.png"]
    out = tmp_path / "list.csv"
    summary = pseudolabel(setup["model"], listing, 0.999, out, gallery=setup["gallery"], progress=False)
    assert summary["labels"] == {"class00": 1, "class01": 1}


def test_command_prints_the_summary(setup, tmp_path, capsys):
    out = tmp_path / "cli.csv"
    args = vars(build_parser().parse_args(["pseudolabel", str(setup["model"]), str(setup["unlabelled"]),
                                           "--threshold", "0.999", "--out", str(out), "--gallery",
                                           str(setup["gallery"]), "--margin", "0.0"]))
    args.pop("command")
    command = args.pop("_command")
    assert command.run is cmd_pseudolabel
    assert command.run(**args) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["accepted"] == 12 and summary["manifest"] == str(out)
    assert "1 unreadable image" in captured.err
    assert len(read_source(out)) == 12


def test_command_errors_are_clear(setup, tmp_path):
    run = setup["model"]
    out = str(tmp_path / "o.csv")
    with pytest.raises(ConfigError, match="--gallery"):
        cmd_pseudolabel(str(run), str(setup["unlabelled"]), 0.9, out)
    with pytest.raises(FinegrainError, match="no trained model"):
        cmd_pseudolabel(str(tmp_path / "nothing"), str(setup["unlabelled"]), 0.9, out)
    for bad in (1.5, -1.01, float("nan")):
        with pytest.raises(ConfigError, match="--threshold"):
            cmd_pseudolabel(str(run), str(setup["unlabelled"]), bad, out, gallery=str(setup["gallery"]))
    with pytest.raises(ConfigError, match="--out"):
        cmd_pseudolabel(str(run), str(setup["unlabelled"]), 0.9, str(tmp_path / "o.txt"), gallery=str(setup["gallery"]))
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found"):
        cmd_pseudolabel(str(run), str(tmp_path / "empty"), 0.9, out, gallery=str(setup["gallery"]))
    with pytest.raises(DataError, match="not found"):
        cmd_pseudolabel(str(run), str(tmp_path / "missing"), 0.9, out, gallery=str(setup["gallery"]))
    # An index whose images carry no labels cannot label anything.
    index = GalleryIndex(16, binding=IndexBinding.from_model(run))
    vectors = np.eye(16, dtype=np.float32)[:2]
    index.add(vectors, ["x.png", "y.png"])
    index.save(tmp_path / "unlabelled.idx", run)
    with pytest.raises(DataError, match="has a label"):
        cmd_pseudolabel(str(tmp_path / "unlabelled.idx"), str(setup["unlabelled"]), 0.9, out)
    with pytest.raises(ConfigError, match="only for a model run"):
        cmd_pseudolabel(str(tmp_path / "unlabelled.idx"), str(setup["unlabelled"]), 0.9, out,
                        gallery=str(setup["gallery"]))
    assert not Path(out).exists()
