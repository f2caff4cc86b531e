import json
import shutil

import cv2
import numpy as np
import pytest

from finegrain.errors import DataError, FinegrainError
from finegrain.eval.identification import (
    cmc_curve,
    cmc_png,
    identification_report,
    identity_ranks,
    nearest_identity,
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


def test_nearest_identity_and_unknown_under_threshold():
    similarity = np.array([
        [0.9, 0.2, 0.7, 0.1],  # a (0.9); then b at its best image (0.7), then c
        [0.3, 0.4, 0.1, 0.35],  # best is b at 0.4: under the 0.5 threshold -> unknown
        [0.1, 0.2, 0.3, 0.5],  # exactly at the threshold: accepted
    ])
    labels = ["a", "b", "b", "c"]
    known, unknown, edge = nearest_identity(similarity, labels, threshold=0.5, alternatives=5)
    assert known.label == "a" and not known.unknown and known.confidence == pytest.approx(0.9)
    assert known.alternatives == [("b", pytest.approx(0.7)), ("c", pytest.approx(0.1))]  # distinct identities
    assert unknown.label is None and unknown.unknown and unknown.nearest == "b"
    assert unknown.confidence == pytest.approx(0.4)
    assert [label for label, _ in unknown.alternatives] == ["c", "a"]
    assert edge.label == "c" and not edge.unknown
    assert nearest_identity(similarity, labels, threshold=0.5)[0].alternatives == []
    # Unlabelled gallery images give no identity; a gallery with no labels at all is an error.
    assert nearest_identity(similarity[:1], [None, "b", "b", "c"], 0.5)[0].label == "b"
    with pytest.raises(DataError, match="no labelled images"):
        nearest_identity(similarity, [None] * 4, 0.5)


def test_cmc_png_is_written(tmp_path):
    path = cmc_png(np.linspace(0.6, 1.0, 20), tmp_path / "out" / "cmc.png", title="test")
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 300 and image.std() > 10
    assert [p.name for p in path.parent.iterdir()] == ["cmc.png"]  # no temporary file left behind


# -- the commands, end to end with a tiny untrained model ---------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, class_folder_factory):
    """A tiny conv4 model, a labelled gallery index, and probe images of the same identities."""
    import torch

    from finegrain.index.build import index_gallery
    from finegrain.infer.embedder import Preprocess
    from finegrain.models import create_model, save_model

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("ident")
    model = create_model("conv4", embedding_size=16, widths=[8, 8, 8, 8])
    save_model(model, root / "model.pt", extra={"task": "embed", "preprocess": Preprocess(32).to_dict()})
    images = class_folder_factory(root / "images", classes=4, per_class=4)
    gallery, probes = root / "gallery", root / "probes"
    for folder in sorted(images.iterdir()):  # images 0-2 of each identity in the gallery, image 3 as the probe
        (gallery / folder.name).mkdir(parents=True)
        (probes / folder.name).mkdir(parents=True)
        for image in sorted(folder.iterdir()):
            shutil.copy(image, (probes if image.stem == "3" else gallery) / folder.name / image.name)
    index_gallery(root / "model.pt", gallery, root / "index", progress=False)
    return root


def test_identify_prints_identities_and_alternatives(tiny, capsys):
    from finegrain.eval.identify_commands import cmd_identify

    probe = tiny / "probes" / "class00" / "3.png"
    assert cmd_identify(str(tiny / "index"), [str(probe)], threshold=-1.0, k=2) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{probe}: class0") and lines[1].startswith("  next: ")
    assert len(lines[1].split(",")) == 2

    # A folder stands for its images; --json gives one entry each, with the 1-NN answer and k alternatives.
    assert cmd_identify(str(tiny / "index"), [str(tiny / "probes")], threshold=-1.0, k=3, as_json=True) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report) == 4
    from finegrain.index.gallery import GalleryIndex

    index = GalleryIndex.load(tiny / "index")
    gallery_vectors = np.empty((len(index), index.dim), np.float32)
    index.index.reconstruct_n(0, len(index), gallery_vectors)
    for entry in report:
        assert not entry["unknown"] and entry["identity"] == entry["nearest"]
        assert len(entry["alternatives"]) == 3
        assert entry["identity"] not in {a["identity"] for a in entry["alternatives"]}
        # The confidence is the cosine similarity of the nearest gallery vector (the index's own search).
        from finegrain.infer.embedder import Embedder

        _, query, _ = next(Embedder.load(tiny / "model.pt").embed_paths([entry["path"]]))
        nearest = index.search(query, k=1)[0][0]
        assert entry["identity"] == nearest.label
        assert entry["confidence"] == pytest.approx(float((query @ gallery_vectors.T).max()), abs=1e-5)

    # Over the threshold nothing is known.
    assert cmd_identify(str(tiny / "index"), [str(probe)], threshold=1.0, k=0) == 0
    out = capsys.readouterr().out
    assert "unknown" in out and "next:" not in out


def test_identify_errors_are_clear(tiny, tmp_path):
    from finegrain.eval.identify_commands import cmd_identify
    from finegrain.index.build import index_gallery

    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match="broken.png"):
        cmd_identify(str(tiny / "index"), [str(tiny / "probes" / "class01" / "3.png"), str(bad)])
    with pytest.raises(DataError, match="missing.png"):
        cmd_identify(str(tiny / "index"), [str(tmp_path / "missing.png")])
    with pytest.raises(FinegrainError, match="not a finegrain index"):
        cmd_identify(str(tmp_path), [str(bad)])
    with pytest.raises(FinegrainError, match="--threshold"):
        cmd_identify(str(tiny / "index"), [str(bad)], threshold=2.0)

    # An index built from an unlabelled list has nothing to name.
    listing = tmp_path / "scores.txt"
    listing.write_text("".join(f"{p} 1.0\n" for p in sorted((tiny / "gallery").rglob("*.png"))[:3]))
    index_gallery(tiny / "model.pt", listing, tmp_path / "unlabelled", progress=False)
    with pytest.raises(FinegrainError, match="no labels"):
        cmd_identify(str(tmp_path / "unlabelled"), [str(tiny / "probes")])


def test_identification_writes_cmc_and_metrics(tiny, tmp_path, capsys):
    from finegrain.eval.identify_commands import cmd_identification

    out = tmp_path / "ident"
    assert cmd_identification(str(tiny / "model.pt"), gallery=str(tiny / "gallery"), probes=str(tiny / "probes"),
                              out=str(out), progress=False) == 0
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
    from finegrain.infer.embedder import Embedder

    embedder = Embedder.load(tiny / "model.pt")
    g, p = read_source(tiny / "gallery"), read_source(tiny / "probes")
    gv = np.concatenate([v for _, v, _ in embedder.embed_paths([r.path for r in g])])
    pv = np.concatenate([v for _, v, _ in embedder.embed_paths([r.path for r in p])])
    expected = identification_report(pv @ gv.T, [r.label for r in p], [r.label for r in g])
    assert metrics["cmc"] == pytest.approx(expected["cmc"])


def test_identification_errors_are_clear(tiny, tmp_path):
    from finegrain.eval.identify_commands import cmd_identification

    with pytest.raises(DataError, match="also gallery images"):
        cmd_identification(str(tiny / "model.pt"), gallery=str(tiny / "gallery"), probes=str(tiny / "gallery"),
                           out=str(tmp_path / "x"), progress=False)
    probes = tmp_path / "probes.txt"
    probes.write_text(f"{tiny / 'probes' / 'class00' / '3.png'} class00\n{tmp_path / 'gone.png'} class01\n")
    with pytest.raises(DataError, match="gone.png"):
        cmd_identification(str(tiny / "model.pt"), gallery=str(tiny / "gallery"), probes=str(probes),
                           out=str(tmp_path / "x"), progress=False)
    # --skip-bad leaves the unreadable probe out and measures the rest.
    assert cmd_identification(str(tiny / "model.pt"), gallery=str(tiny / "gallery"), probes=str(probes),
                              out=str(tmp_path / "y"), skip_bad=True, progress=False) == 0
    assert json.loads((tmp_path / "y" / "metrics.json").read_text())["probes"] == 1
    with pytest.raises(FinegrainError, match="no trained model"):
        cmd_identification(str(tmp_path / "nowhere"), gallery=str(tiny / "gallery"), probes=str(probes))


def test_commands_register_with_handlers():
    import argparse

    from finegrain.eval.identify_commands import add_identify_commands, cmd_identification, cmd_identify

    parser = argparse.ArgumentParser()
    add_identify_commands(parser.add_subparsers(dest="command"))
    args = vars(parser.parse_args(["identify", "idx", "a.png", "b", "--threshold", "0.7", "-k", "2", "--json"]))
    assert args["_handler"] is cmd_identify
    assert (args["index"], args["images"], args["threshold"], args["k"], args["as_json"]) == (
        "idx", ["a.png", "b"], 0.7, 2, True)
    args = vars(parser.parse_args(["identification", "run", "--gallery", "g", "--probes", "p"]))
    assert args["_handler"] is cmd_identification and args["out"] is None and args["root"] is None
