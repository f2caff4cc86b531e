"""Explain a model's answer: Grad-CAM maps of what made two images similar, or a score high, as a PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from finegrain.data.images import decode_image, resize_square
from finegrain.encoders import SingleEncoder, load_encoder
from finegrain.errors import ConfigError, FinegrainError
from finegrain.explain.cam import explanation_png, score_cam, similarity_cam
from finegrain.index.build import index_encoder
from finegrain.index.gallery import Hit

DISPLAY_HEIGHT = 256  # figure panels are at least this tall, whatever size the model sees


def _read(path: str | Path, encoder: SingleEncoder) -> np.ndarray:
    """The image to explain and show: a face model's main-face crop (what it sees), or the whole image."""
    display = max(encoder.image_size, DISPLAY_HEIGHT)
    if encoder.face_cropper is not None:
        return encoder.face_cropper.crop(decode_image(Path(path)), display)[0]
    return decode_image(Path(path), target_size=display)  # ImageError names the file


def _tensor(encoder: SingleEncoder, image: np.ndarray) -> torch.Tensor:
    return encoder.preprocess.to_tensor(resize_square(image, encoder.image_size)[None])


def _top_match(index: str | Path, image: str | Path) -> tuple[Hit, str | None]:
    """The index's most similar item other than ``image`` itself, searched as the index searches (its model,
    TTA and normaliser), and the fingerprint of that model."""
    gallery, encoder = index_encoder(index)
    query = encoder.encode_files([Path(image)], progress=False).vectors
    me = Path(image).resolve()
    for hit in gallery.search(query, k=10)[0]:
        if Path(hit.path).resolve() != me:
            return hit, encoder.fingerprint
    raise FinegrainError(f"{index}: no indexed image other than {image} to compare it with")


def explain(run: str | Path, image: str | Path, image2: str | Path | None = None, out: str | Path = "explain.png",
            index: str | Path | None = None, alpha: float = 0.5) -> dict:
    """Write a heat-map PNG for one image (scoring model) or a pair (embedding model); returns a report.

    The similarity explained is the network's own cosine, before any normaliser or TTA stored with the model
    (with ``index``, ``index_similarity`` is the search's value, normaliser and TTA included).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"--alpha must be in [0, 1], got {alpha}")
    encoder = load_encoder(run)
    if not isinstance(encoder, SingleEncoder):
        raise ConfigError(f"{run}: a combined model has no single feature map; explain one of its models")
    first = _read(image, encoder)
    if encoder.output == "score":
        if image2 is not None or index is not None:
            raise ConfigError("a scoring model explains one image at a time: drop the second image and --index")
        cam, score = score_cam(encoder.model, _tensor(encoder, first))
        png = explanation_png(out, [first], [cam], f"{Path(image).name}: score {score:.3f}", alpha=alpha)
        return {"image": str(image), "score": score, "png": str(png)}
    if image2 is not None and index is not None:
        raise ConfigError("give either a second image or --index, not both")
    if image2 is None and index is None:
        raise ConfigError(f"{image}: an embedding model explains a pair: give a second image, or --index INDEX "
                          "to compare it with its top match")
    report: dict = {"image": str(image)}
    if index is not None:
        hit, fingerprint = _top_match(index, image)
        image2 = hit.path
        report.update(match=hit.path, label=hit.label, index_similarity=hit.similarity)
        if fingerprint != encoder.fingerprint:
            report["note"] = (f"{index} was built with another model (or the same one normalised differently): "
                              f"the match is the index's, the maps are {run}'s")
    else:
        report["image2"] = str(image2)
    second = _read(image2, encoder)
    cam_a, cam_b, similarity = similarity_cam(encoder.model, _tensor(encoder, first), _tensor(encoder, second))
    title = f"{Path(image).name} vs {Path(image2).name}: similarity {similarity:.3f}"
    png = explanation_png(out, [first, second], [cam_a, cam_b], title, alpha=alpha)
    report.update(similarity=similarity, png=str(png))
    return report
