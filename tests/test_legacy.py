"""``finegrain convert``: files from finegrain 0.1 (torch pickles) become artifacts that behave the same."""

from __future__ import annotations

import json

import faiss
import numpy as np
import torch

from finegrain.artifact import read_manifest
from finegrain.cli import main
from finegrain.encoders import load_encoder
from finegrain.index.build import search_index
from finegrain.models import create_model

PRE = {"image_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3}


def _old_model(path, seed=0):
    """A model.pt exactly as finegrain 0.1 wrote it (format 'finegrain-model', version 1)."""
    torch.manual_seed(seed)
    model = create_model("conv4", embedding_size=16, widths=[8, 8, 8, 8]).eval()
    payload = {"format": "finegrain-model", "version": 1, "model_config": model.config(),
               "state_dict": model.state_dict(),
               "extra": {"task": "embed", "preprocess": PRE, "num_train_classes": 5,
                         "verification": {"threshold": 0.61, "accuracy": 0.9, "source": "validation split"},
                         "normalization": {"method": "center", "mean": torch.full((16,), 0.1)}}}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return model


def test_an_old_run_is_refused_with_the_command_then_converts(tmp_path, images, capsys):
    model = _old_model(tmp_path / "run" / "model.pt")
    assert main(["eval", str(tmp_path / "run"), str(tmp_path)]) == 2
    assert f"finegrain convert {tmp_path / 'run'}" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "run")]) == 0
    assert json.loads(capsys.readouterr().out)["written"] == [str(tmp_path / "run" / "model.safetensors")]
    manifest = read_manifest(tmp_path / "run" / "model.safetensors")
    assert manifest["thresholds"]["verification"]["threshold"] == 0.61
    encoder = load_encoder(tmp_path / "run")
    x = encoder.preprocess.to_tensor(images)
    with torch.no_grad():
        raw = model(x).numpy() - 0.1
    assert np.allclose(encoder.encode_array(images), raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-5)


def test_an_old_index_converts_and_searches(tmp_path, class_folder):
    old = tmp_path / "idx"
    _old_model(old / "model.pt")
    paths = sorted(class_folder.rglob("*.png"))[:5]
    main(["convert", str(old / "model.pt")])  # only to make the old index's vectors with the same model
    vectors = load_encoder(old / "model.safetensors").encode_files(paths, progress=False).vectors
    (old / "model.safetensors").unlink()
    index = faiss.IndexFlatIP(16)
    index.add(vectors)
    faiss.write_index(index, str(old / "vectors.faiss"))
    (old / "meta.jsonl").write_text("".join(json.dumps({"path": str(p), "label": "x"}) + "\n" for p in paths))
    (old / "index.json").write_text(json.dumps({"dim": 16, "count": 5, "tta": []}))
    assert main(["search", str(old), str(paths[0])]) == 2
    assert main(["convert", str(old)]) == 0
    hits = search_index(old, [paths[3]], k=1)[0]["hits"]
    assert hits[0]["path"] == str(paths[3].resolve()) and abs(hits[0]["similarity"] - 1) < 1e-5


def test_a_header_length_that_starts_like_a_pickle_is_still_safetensors(tmp_path):
    """A safetensors file starts with its header length: when that is 128 + 256·k, its first byte is 0x80,
    a pickle's first byte. Such a file must load, not be taken for an old torch file."""
    from finegrain.artifact import read_artifact, write_artifact

    for pad in range(300):
        path = write_artifact(tmp_path / "a.safetensors", {"kind": "checkpoint", "pad": "x" * pad},
                              {"w": torch.zeros(2)})
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80
    assert read_artifact(path).manifest["pad"] == "x" * pad
