"""``finegrain embed``: vectors in .npy (with a CSV of rows) or .parquet (path, label, vector)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pyarrow.parquet as pq

from finegrain.cli import main
from finegrain.encoders import load_encoder


def test_parquet_holds_paths_labels_and_the_encoders_vectors(tiny_model, class_folder, tmp_path, capsys):
    out = tmp_path / "v.parquet"
    assert main(["embed", str(tiny_model), str(class_folder), "--out", str(out), "--tta", "flip"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 36 and summary["dim"] == 16 and summary["tta"] == ["flip"]
    table = pq.read_table(out).to_pydict()
    assert set(table) == {"path", "label", "vector"} and len(table["path"]) == 36
    paths = sorted(class_folder.rglob("*.png"))
    assert table["path"] == [str(p) for p in paths] and table["label"][0] == "class00"
    expected = load_encoder(tiny_model, tta="flip").encode_files(paths, progress=False).vectors
    assert np.allclose(np.array(table["vector"], dtype=np.float32), expected, atol=1e-6)


def test_npy_with_a_list_of_integer_ids_or_scores(tiny_model, class_folder, tmp_path, capsys):
    paths = sorted(class_folder.rglob("*.png"))[:6]
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{p} {i}\n" for i, p in enumerate(paths)))
    for kind, column in (("label", "label"), ("auto", "score")):
        out = tmp_path / f"{kind}.npy"
        assert main(["embed", str(tiny_model), str(listing), "--out", str(out), "--kind", kind]) == 0
        capsys.readouterr()
        vectors = np.load(out)
        rows = list(csv.DictReader(out.with_suffix(".csv").open()))
        assert vectors.shape == (6, 16) and [r["path"] for r in rows] == [str(p) for p in paths]
        assert [r[column] for r in rows][:3] == (["0", "1", "2"] if kind == "label" else ["0.0", "1.0", "2.0"])


def test_bad_inputs_are_one_line(tiny_model, class_folder, tmp_path, capsys):
    assert main(["embed", str(tiny_model), str(class_folder), "--out", str(tmp_path / "v.txt")]) == 2
    assert "--out" in capsys.readouterr().err
    (tmp_path / "bad.png").write_bytes(b"nope")
    assert main(["embed", str(tiny_model), str(tmp_path / "bad.png"), "--out", str(tmp_path / "v.npy")]) == 2
    assert "bad.png" in capsys.readouterr().err and not (tmp_path / "v.npy").exists()
