import zipfile

from finegrain.utils import atomic_write_text, extract_zip_once


def test_extract_zip_once_unpacks_once_and_replaces_unfinished_folders(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("d/x.txt", "one")
    target = tmp_path / "out"
    target.mkdir()
    (target / "stale.txt").write_text("left by a killed run")  # no .complete marker
    assert extract_zip_once(archive, target) == target
    assert (target / "d/x.txt").read_text() == "one" and not (target / "stale.txt").exists()
    (target / "d/x.txt").write_text("edited")
    extract_zip_once(archive, target)  # finished before: left alone
    assert (target / "d/x.txt").read_text() == "edited"


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    atomic_write_text(tmp_path / "f.txt", "a")
    atomic_write_text(tmp_path / "f.txt", "b")
    assert (tmp_path / "f.txt").read_text() == "b"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
