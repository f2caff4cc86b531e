"""``identify`` and ``identification`` end to end with a tiny untrained model."""

import json
import shutil

import cv2
import pytest

from finegrain.cli import main
from finegrain.encoders import load_encoder
from finegrain.errors import DataError, FinegrainError
from finegrain.eval.identification import identification_report
from finegrain.identification.evaluate import identification_run
from finegrain.index.build import index_gallery, search_index
from finegrain.index.gallery import GalleryIndex


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, class_folder_factory, make_model):
    """A tiny conv4 model, a labelled gallery index, and probe images of the same identities."""
    root = tmp_path_factory.mktemp("ident")
    make_model(root / "model.safetensors")
    images = class_folder_factory(root / "images", classes=4, per_class=4)
    gallery, probes = root / "gallery", root / "probes"
    for folder in sorted(images.iterdir()):  # images 0-2 of each identity in the gallery, image 3 as the probe
        (gallery / folder.name).mkdir(parents=True)
        (probes / folder.name).mkdir(parents=True)
        for image in sorted(folder.iterdir()):
            shutil.copy(image, (probes if image.stem == "3" else gallery) / folder.name / image.name)
    index_gallery(root / "model.safetensors", gallery, root / "index", progress=False)
    return root


def test_identify_prints_identities_and_alternatives(tiny, capsys):
    probe = tiny / "probes" / "class00" / "3.png"
    assert main(["identify", str(tiny / "index"), str(probe), "--threshold", "-1.0", "-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{probe}: class0") and lines[1].startswith("  next: ")
    assert len(lines[1].split(",")) == 2

    # A folder stands for its images; --json gives one entry each, with the 1-NN answer and k alternatives.
    assert main(["identify", str(tiny / "index"), str(tiny / "probes"), "--threshold", "-1", "-k", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report) == 4
    index = GalleryIndex.load(tiny / "index")
    gallery_vectors = index.vectors()
    encoder = load_encoder(tiny / "model.safetensors")
    for entry in report:
        assert not entry["unknown"] and entry["identity"] == entry["nearest"]
        assert len(entry["alternatives"]) == 3
        assert entry["identity"] not in {a["identity"] for a in entry["alternatives"]}
        # The confidence is the cosine similarity of the nearest gallery vector (the index's own search).
        query = encoder.encode_files([entry["path"]], progress=False).vectors
        nearest = index.search(query, k=1)[0][0]
        assert entry["identity"] == nearest.label
        assert entry["confidence"] == pytest.approx(float((query @ gallery_vectors.T).max()), abs=1e-5)

    # Over the threshold nothing is known.
    assert main(["identify", str(tiny / "index"), str(probe), "--threshold", "1.0", "-k", "0"]) == 0
    out = capsys.readouterr().out
    assert "unknown" in out and "next:" not in out


def _error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("finegrain ")
    return err


def test_identify_errors_are_clear(tiny, tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    good = str(tiny / "probes" / "class01" / "3.png")
    assert "broken.png" in _error(["identify", str(tiny / "index"), good, str(bad)], capsys)
    assert "missing.png" in _error(["identify", str(tiny / "index"), str(tmp_path / "missing.png")], capsys)
    assert "not a finegrain index" in _error(["identify", str(tmp_path), str(bad)], capsys)
    assert "--threshold" in _error(["identify", str(tiny / "index"), str(bad), "--threshold", "2"], capsys)

    # An index built from a flat folder has nothing to name.
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in sorted((tiny / "gallery").rglob("*.png"))[:3]:
        shutil.copy(p, flat / f"{p.parent.name}_{p.name}")
    index_gallery(tiny / "model.safetensors", flat, tmp_path / "unlabelled", progress=False)
    assert "no labels" in _error(["identify", str(tmp_path / "unlabelled"), str(tiny / "probes")], capsys)


def test_identification_writes_cmc_and_metrics(tiny, tmp_path, capsys):
    out = tmp_path / "ident"
    assert main(["identification", str(tiny / "model.safetensors"), "--gallery", str(tiny / "gallery"),
                 "--probes", str(tiny / "probes"), "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"rank_1", "rank_5", "rank_10"} <= printed.keys() and "cmc" not in printed
    assert printed["probes"] == 4 and printed["probes_absent"] == 0 and printed["gallery_images"] == 12
    assert printed["gallery_identities"] == 4
    assert metrics["rank_1"] == printed["rank_1"] and len(metrics["cmc"]) == 20
    assert metrics["rank_10"] == 1.0  # 12 gallery images, 4 identities: every probe is found by rank 10
    assert cv2.imread(str(out / "cmc.png")) is not None

    # The same numbers as the library function on the same embeddings.
    from finegrain.data import read_source

    encoder = load_encoder(tiny / "model.safetensors")
    g, p = read_source(tiny / "gallery"), read_source(tiny / "probes")
    gv = encoder.encode_files([r.path for r in g], progress=False).vectors
    pv = encoder.encode_files([r.path for r in p], progress=False).vectors
    expected = identification_report(pv @ gv.T, [r.label for r in p], [r.label for r in g])
    assert metrics["cmc"] == pytest.approx(expected["cmc"])


def test_identification_errors_are_clear(tiny, tmp_path):
    model = tiny / "model.safetensors"
    with pytest.raises(DataError, match="also gallery images"):
        identification_run(model, tiny / "gallery", tiny / "gallery", out=tmp_path / "x", progress=False)
    probes = tmp_path / "probes.txt"
    probes.write_text(f"{tiny / 'probes' / 'class00' / '3.png'} class00\n{tmp_path / 'gone.png'} class01\n")
    with pytest.raises(DataError, match="gone.png"):
        identification_run(model, tiny / "gallery", probes, out=tmp_path / "x", progress=False)
    # --skip-bad leaves the unreadable probe out and measures the rest.
    identification_run(model, tiny / "gallery", probes, out=tmp_path / "y", skip_bad=True, progress=False)
    assert json.loads((tmp_path / "y" / "metrics.json").read_text())["probes"] == 1
    with pytest.raises(FinegrainError, match="no trained model"):
        identification_run(tmp_path / "nowhere", tiny / "gallery", probes)


def test_identify_pseudolabel_and_explain_embed_as_the_index_did(tiny, tmp_path, capsys):
    """An index built with --tta flip: a gallery image must find itself at similarity 1 in identify and
    pseudolabel, and explain --index must report the search's own similarity. Queries embedded without the
    index's TTA land elsewhere (what identify, pseudolabel and explain did before)."""
    index = tmp_path / "flip.idx"
    index_gallery(tiny / "model.safetensors", tiny / "gallery", index, tta="flip", progress=False)
    image = tiny / "gallery" / "class02" / "1.png"
    assert main(["identify", str(index), str(image), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)[0]
    assert answer["identity"] == "class02" and answer["confidence"] == pytest.approx(1.0, abs=1e-5)
    plain = load_encoder(tiny / "model.safetensors").encode_files([image], progress=False).vectors
    assert float((plain @ GalleryIndex.load(index).vectors().T).max()) < 1 - 1e-4  # without TTA: not itself

    unlabelled = tmp_path / "u"
    unlabelled.mkdir()
    shutil.copy(image, unlabelled / "copy.png")
    assert main(["pseudolabel", str(index), str(unlabelled), "--threshold", "0.99999", "--out",
                 str(tmp_path / "p.csv")]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == {"class02": 1}

    assert main(["explain", str(tiny / "model.safetensors"), str(image), "--index", str(index), "--out",
                 str(tmp_path / "x.png")]) == 0
    report = json.loads(capsys.readouterr().out)
    second = search_index(index, [image], k=2)[0]["hits"][1]
    assert report["match"] == second["path"] and report["index_similarity"] == pytest.approx(second["similarity"])


def test_identify_works_with_combined_and_whitened_models(tiny, tmp_path, make_model, capsys):
    """identify used to compare the index's size with the network head's, refusing these two."""
    from finegrain.encoders.edit import combine_models, normalize_model

    meta = tmp_path / "meta"
    combine_models([tiny / "model.safetensors", make_model(tmp_path / "b.safetensors", seed=5, size=40)], meta)
    whitened = tmp_path / "w.safetensors"
    shutil.copy(tiny / "model.safetensors", whitened)
    normalize_model(whitened, tiny / "gallery", method="whiten", dim=5, progress=False)
    for model in (meta, whitened):
        index = tmp_path / f"{model.stem}.idx"
        index_gallery(model, tiny / "gallery", index, progress=False)
        image = tiny / "gallery" / "class03" / "2.png"
        assert main(["identify", str(index), str(image), "--json"]) == 0
        answer = json.loads(capsys.readouterr().out)[0]
        assert answer["identity"] == "class03" and answer["confidence"] == pytest.approx(1.0, abs=1e-5)
