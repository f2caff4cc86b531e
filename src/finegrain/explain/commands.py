"""CLI subcommand ``finegrain explain``: Grad-CAM maps of what made two images similar or a score high."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from finegrain.errors import ConfigError, FinegrainError

DISPLAY_HEIGHT = 256  # figure panels are at least this tall, whatever size the model sees


def _read(path: str, size: int) -> np.ndarray:
    from finegrain.data.images import decode_image

    return decode_image(Path(path), target_size=max(size, DISPLAY_HEIGHT))  # ImageError names the file


def _tensor(embedder, image: np.ndarray) -> torch.Tensor:
    from finegrain.data.images import resize_square

    return embedder.preprocess.to_tensor(resize_square(image, embedder.image_size)[None])


def _top_match(embedder, index: str, image: str, query: np.ndarray):
    """The index's most similar image other than ``image`` itself."""
    from finegrain.index.gallery import GalleryIndex

    gallery = GalleryIndex.load(index)
    vector = embedder.embed_array(query[None])  # embedded as 'finegrain index' embeds (normaliser included)
    if gallery.dim != vector.shape[1]:
        raise FinegrainError(f"{index}: the index holds {gallery.dim}-d vectors, this model makes "
                             f"{vector.shape[1]}-d ones")
    me = Path(image).resolve()
    hits = gallery.search(vector, k=10)[0]
    for hit in hits:
        if Path(hit.path).resolve() != me:
            return hit
    raise FinegrainError(f"{index}: no indexed image other than {image} to compare it with")


def cmd_explain(run: str, image: str, image2: str | None = None, out: str = "explain.png",
                index: str | None = None, alpha: float = 0.5) -> int:
    """Write a heat-map PNG for one image (scoring model) or a pair (embedding model); print JSON.

    The similarity explained is the model's own cosine, before any normaliser or TTA stored with the run
    (with --index, ``index_similarity`` is the search's value).
    """
    from finegrain.data.images import resize_square
    from finegrain.explain.cam import explanation_png, score_cam, similarity_cam
    from finegrain.infer.embedder import Embedder
    from finegrain.models import ScoringModel

    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"--alpha must be in [0, 1], got {alpha}")
    embedder = Embedder.load(run)
    if getattr(embedder, "components", None):
        raise ConfigError(f"{run}: a combined meta-model has no single feature map; explain one of its runs")
    first = _read(image, embedder.image_size)
    if isinstance(embedder.model, ScoringModel) or embedder.extra.get("task") == "score":
        if image2 is not None or index is not None:
            raise ConfigError("a scoring model explains one image at a time: drop the second image and --index")
        cam, score = score_cam(embedder.model, _tensor(embedder, first))
        png = explanation_png(out, [first], [cam], f"{Path(image).name}: score {score:.3f}", alpha=alpha)
        report: dict = {"image": image, "score": score, "png": str(png)}
    else:
        if image2 is not None and index is not None:
            raise ConfigError("give either a second image or --index, not both")
        if image2 is None and index is None:
            raise ConfigError(f"{image}: an embedding model explains a pair: give a second image, or --index INDEX "
                              "to compare it with its top match")
        report = {"image": image}
        if index is not None:
            hit = _top_match(embedder, index, image, resize_square(first, embedder.image_size))
            image2 = hit.path
            report.update(match=hit.path, label=hit.label, index_similarity=hit.similarity)
        else:
            report["image2"] = image2
        second = _read(image2, embedder.image_size)
        cam_a, cam_b, similarity = similarity_cam(embedder.model, _tensor(embedder, first), _tensor(embedder, second))
        title = f"{Path(image).name} vs {Path(image2).name}: similarity {similarity:.3f}"
        png = explanation_png(out, [first, second], [cam_a, cam_b], title, alpha=alpha)
        report.update(similarity=similarity, png=str(png))
    print(json.dumps(report, indent=2))
    return 0


def add_explain_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="heat maps of the regions that made two images similar (or a score high)",
                       description="Grad-CAM on the backbone's last feature map. An embedding model explains a pair "
                                   "(IMAGE IMAGE2, or IMAGE and its top match in --index); a scoring model explains "
                                   "one image's score.")
    p.add_argument("run", help="run folder (or model file)")
    p.add_argument("image", help="image to explain")
    p.add_argument("image2", nargs="?", help="second image (embedding models; or use --index)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--index", help="index folder made by 'finegrain index': compare IMAGE with its top match")
    p.add_argument("--alpha", type=float, default=0.5, help="heat-map opacity in [0, 1] (default: 0.5)")
    p.set_defaults(_handler=cmd_explain)
