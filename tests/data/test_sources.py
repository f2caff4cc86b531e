from pathlib import Path

import pytest

from finegrain.data.records import Record
from finegrain.data.sources import read_folder, read_list, read_manifest, read_source
from finegrain.errors import ConfigError, DataError

from .conftest import SHARED, write_image


def test_read_folder_nested_labels_sorted(tmp_path: Path):
    root = tmp_path / "omniglot"
    write_image(root / "Alphabet" / "character02" / "b.png")
    write_image(root / "Alphabet" / "character01" / "z.PNG")
    write_image(root / "Alphabet" / "character01" / "a.jpeg")
    write_image(root / "cat" / "x.jpg")
    (root / "cat" / "notes.txt").write_text("not an image")
    write_image(root / "cat" / ".hidden.jpg")
    write_image(root / ".thumbs" / "t.jpg")

    records = read_folder(root)
    assert [(r.path.name, r.label) for r in records] == [
        ("a.jpeg", "Alphabet/character01"),
        ("z.PNG", "Alphabet/character01"),
        ("b.png", "Alphabet/character02"),
        ("x.jpg", "cat"),
    ]
    assert all(r.score is None and r.split is None for r in records)
    assert read_folder(root) == records


def test_read_folder_images_in_root(tmp_path: Path):
    write_image(tmp_path / "cat" / "x.jpg")
    write_image(tmp_path / "loose.jpg")
    with pytest.raises(DataError) as err:
        read_folder(tmp_path)
    assert "loose.jpg" in str(err.value)
    assert "class sub-folders" in str(err.value)


def test_read_folder_empty(tmp_path: Path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no images found") as err:
        read_folder(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_manifest_labels_and_relative_paths(tmp_path: Path):
    csv = tmp_path / "meta" / "train.csv"
    csv.parent.mkdir()
    csv.write_text("path,label,extra\nimgs/a.jpg,cat,1\n/abs/b.jpg,dog,2\n")
    records = read_manifest(csv)
    assert records == [
        Record(csv.parent / "imgs" / "a.jpg", label="cat"),
        Record(Path("/abs/b.jpg"), label="dog"),
    ]
    other = tmp_path / "elsewhere"
    assert read_manifest(csv, root=other)[0].path == other / "imgs" / "a.jpg"


def test_manifest_scores_split_and_bom(tmp_path: Path):
    csv = tmp_path / "m.csv"
    csv.write_text("\ufeffPath, Score ,split\na.jpg,3.5,Train\nb.jpg,1e0,val\n", encoding="utf-8")
    records = read_manifest(csv)
    assert [(r.path.name, r.score, r.split) for r in records] == [
        ("a.jpg", 3.5, "train"),
        ("b.jpg", 1.0, "val"),
    ]
    assert records[0].label is None


@pytest.mark.parametrize(
    ("header", "missing"), [("file,label", "'path'"), ("path,extra", "'label' or 'score'")]
)
def test_manifest_missing_column(tmp_path: Path, header: str, missing: str):
    csv = tmp_path / "bad.csv"
    csv.write_text(f"{header}\na.jpg,x\n")
    with pytest.raises(DataError) as err:
        read_manifest(csv)
    assert "bad.csv" in str(err.value)
    assert missing in str(err.value)


def test_manifest_bad_scores_report_line_numbers(tmp_path: Path):
    csv = tmp_path / "scores.csv"
    csv.write_text("path,score\na.jpg,3.0\nb.jpg,nan\nc.jpg,abc\nd.jpg,inf\ne.jpg,2\n")
    with pytest.raises(DataError) as err:
        read_manifest(csv)
    message = str(err.value)
    assert len(err.value.problems) == 3
    for line, value in ((3, "nan"), (4, "abc"), (5, "inf")):
        assert f"scores.csv, line {line}: score '{value}'" in message


def test_list_auto_detects_scores(tmp_path: Path):
    lst = tmp_path / "labels.txt"
    lst.write_text("# SCUT style\nAF1.jpg 3.13\n\nAM2.jpg  2\n")
    records = read_list(lst)
    assert [(r.path, r.score, r.label) for r in records] == [
        (tmp_path / "AF1.jpg", 3.13, None),
        (tmp_path / "AM2.jpg", 2.0, None),
    ]


def test_list_auto_detects_labels_and_forcing(tmp_path: Path):
    lst = tmp_path / "list.txt"
    lst.write_text("my photo.jpg cat\nb.jpg 7\n")
    records = read_list(lst, root="/data")
    assert [(str(r.path), r.label) for r in records] == [("/data/my photo.jpg", "cat"), ("/data/b.jpg", "7")]
    ids = tmp_path / "ids.txt"
    ids.write_text("a.jpg 1\nb.jpg 2\n")
    assert read_list(ids)[0].score == 1.0
    assert [r.label for r in read_list(ids, kind="label")] == ["1", "2"]
    with pytest.raises(DataError, match=r"list.txt, line 1: score 'cat'"):
        read_list(lst, kind="score")
    with pytest.raises(ConfigError, match="--kind"):
        read_list(lst, kind="both")


def test_list_malformed_and_nan_lines(tmp_path: Path):
    lst = tmp_path / "l.txt"
    lst.write_text("a.jpg 1.0\nlonely_field\nb.jpg nan\n")
    with pytest.raises(DataError) as err:
        read_list(lst)
    message = str(err.value)
    assert "l.txt, line 2: expected '<path> <label-or-score>'" in message
    assert "l.txt, line 3: score 'nan' is not a finite number" in message


def test_read_source_dispatch(tmp_path: Path):
    write_image(tmp_path / "tree" / "cat" / "x.jpg")
    (tmp_path / "m.csv").write_text("path,label\nx.jpg,cat\n")
    (tmp_path / "l.txt").write_text("x.jpg 0.5\n")
    assert read_source(tmp_path / "tree")[0].label == "cat"
    assert read_source(tmp_path / "m.csv")[0].label == "cat"
    assert read_source(tmp_path / "l.txt")[0].score == 0.5
    assert read_source(tmp_path / "l.txt", kind="label")[0].label == "0.5"
    with pytest.raises(DataError, match="data source not found"):
        read_source(tmp_path / "missing")


def test_binary_file_as_list(tmp_path: Path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(DataError, match="not a UTF-8 text file"):
        read_source(f)


NO_SCUT = f"real data not available: {SHARED / 'scut-fbp5500'} (the shared folder sits beside the repository)"


@pytest.mark.skipif(not (SHARED / "scut-fbp5500").is_dir(), reason=NO_SCUT)
def test_scut_labels_file():
    records = read_source(SHARED / "scut-fbp5500" / "labels.txt", root=SHARED / "scut-fbp5500" / "images")
    assert len(records) == 5500
    assert all(1.0 <= r.score <= 5.0 and r.label is None for r in records)
    assert records[0].path.exists()


def test_expand_images_walks_folders_keeps_files_and_rejects_empty_folders(tmp_path):
    from finegrain.data.sources import expand_images

    (tmp_path / "a" / "deep").mkdir(parents=True)
    for name in ("a/2.jpg", "a/deep/1.png", "a/.hidden.jpg", "a/notes.txt", "single.jpg"):
        (tmp_path / name).write_bytes(b"x")
    got = expand_images([tmp_path / "a", str(tmp_path / "single.jpg")])
    assert got == [tmp_path / "a" / "2.jpg", tmp_path / "a" / "deep" / "1.png", tmp_path / "single.jpg"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no images"):
        expand_images([tmp_path / "empty"])
