"""``finegrain normalize`` (fit a feature normaliser into a model) and ``finegrain combine`` (meta-embeddings)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def cmd_normalize(run: str, data: str, root: str | None = None, method: str = "whiten", dim: int | None = None,
                  tta: str | None = None) -> int:
    from finegrain.data import read_source
    from finegrain.eval.verify import embed_all
    from finegrain.infer.embedder import META_FORMAT, Embedder, resolve_model_path
    from finegrain.infer.normalize import FeatureNormalizer
    from finegrain.models.model import FORMAT, update_extra

    embedder = Embedder.load(run, tta=tta, normalize=False)  # fit on what the model gives, not on a previous fit
    records = read_source(data, root)
    normalizer = FeatureNormalizer.fit(embed_all(embedder, [r.path for r in records]), method, dim)
    update_extra(resolve_model_path(run), formats=(FORMAT, META_FORMAT), normalization=normalizer.to_dict())
    print(json.dumps({"model": str(resolve_model_path(run)), "method": method, "fitted_on": len(records),
                      "embedding_size": normalizer.output_size or embedder.embedding_size}, indent=2))
    return 0


def cmd_combine(runs: list[str], out: str) -> int:
    from finegrain.infer.meta import combine_models

    print(json.dumps(combine_models([Path(r) for r in runs], out), indent=2))
    return 0


def add_inference_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("normalize", help="fit feature normalisation (L2, centring, PCA whitening) into a model",
                       description="Embed training images, fit the normaliser and store it in the model file; "
                       "every later use of the model (eval, index, search, verify) applies it.")
    p.add_argument("run", help="run folder or model file (a combined model too)")
    p.add_argument("data", help="training images: folder, CSV manifest or list")
    p.add_argument("--root", help="folder that relative paths resolve against")
    p.add_argument("--method", default="whiten", help="l2 | center | whiten (default: whiten)")
    p.add_argument("--dim", type=int, help="whiten: output dimension (default: all)")
    p.add_argument("--tta", help="embed the training images with this test-time augmentation")
    p.set_defaults(_handler=cmd_normalize)

    p = sub.add_parser("combine", help="one meta-model from several: concatenated normalised embeddings")
    p.add_argument("runs", nargs="+", help="two or more run folders or model files (any backbones and sizes)")
    p.add_argument("--out", required=True, help="run folder (or .pt file) for the combined model")
    p.set_defaults(_handler=cmd_combine)
