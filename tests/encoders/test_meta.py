"""Meta-embeddings: a model combined with itself ranks exactly like the model; mixed input sizes work."""

from __future__ import annotations

import numpy as np
import pytest

from finegrain.encoders import MetaEncoder, load_encoder
from finegrain.encoders.edit import combine_models
from finegrain.errors import FinegrainError


def test_model_with_itself_ranks_like_the_model(tiny_model, images, tmp_path):
    combine_models([tiny_model, tiny_model], tmp_path / "meta")
    meta = load_encoder(tmp_path / "meta")
    single = load_encoder(tiny_model)
    assert isinstance(meta, MetaEncoder) and meta.output_size == 32
    a, b = single.encode_array(images), meta.encode_array(images)
    assert np.allclose(np.linalg.norm(b, axis=1), 1, atol=1e-5)
    assert np.allclose(b @ b.T, a @ a.T, atol=1e-5)  # same similarities, hence the same ranking
    assert (np.argsort(-(b @ b.T), axis=1) == np.argsort(-(a @ a.T), axis=1)).all()


def test_similarity_is_the_mean_of_the_components(tmp_path, images, make_model):
    small = make_model(tmp_path / "a.pt", size=32, seed=1)
    big = make_model(tmp_path / "b.pt", size=48, seed=2, embedding_size=8)
    summary = combine_models([small, big], tmp_path / "meta.safetensors")
    assert summary["embedding_size"] == 24 and summary["image_size"] == 48
    meta = load_encoder(tmp_path / "meta.safetensors")
    import cv2

    big_images = np.stack([cv2.resize(i, (48, 48), interpolation=cv2.INTER_CUBIC) for i in images])
    ea = load_encoder(small).encode_array(np.stack([cv2.resize(i, (32, 32), interpolation=cv2.INTER_AREA)
                                                   for i in big_images]))
    eb = load_encoder(big).encode_array(big_images)
    m = meta.encode_array(big_images)
    assert np.allclose(m @ m.T, (ea @ ea.T + eb @ eb.T) / 2, atol=1e-5)


def test_combine_needs_two_embedding_models(tiny_model, tmp_path):
    with pytest.raises(FinegrainError, match="at least two"):
        combine_models([tiny_model], tmp_path / "x")


def test_face_models_combine_only_with_models_that_crop_the_same_way(tmp_path, make_model):
    """Images are prepared once for all components: a face model beside a whole-image model is refused."""
    from finegrain.artifact import read_artifact, write_artifact

    def face_model(path, seed):
        make_model(path, seed=seed)
        artifact = read_artifact(path)
        manifest = {**artifact.manifest, "preprocessing": {**artifact.manifest["preprocessing"],
                                                           "faces": {"margin": 0.2}}}
        return write_artifact(path, {k: v for k, v in manifest.items() if k not in ("format", "version",
                                                                                     "fingerprint")},
                              artifact.tensors)

    a, b = face_model(tmp_path / "a.safetensors", 1), face_model(tmp_path / "b.safetensors", 2)
    plain = make_model(tmp_path / "plain.safetensors", seed=3)
    with pytest.raises(FinegrainError, match="face crops"):
        combine_models([a, plain], tmp_path / "mixed")
    assert not (tmp_path / "mixed").exists()  # refused before anything is written
    combined = load_encoder(combine_models([a, b], tmp_path / "faces")["model"])
    assert combined.face_cropper is not None and combined.face_cropper.margin == pytest.approx(0.2)
