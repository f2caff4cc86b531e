"""Changing model files: fit a feature normaliser into one, store a threshold, combine several into one.

Every change rewrites the whole file atomically (its fingerprint changes with what it encodes), and
whatever depended on the old state is refitted or dropped, and said so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from finegrain.artifact import read_artifact, write_artifact
from finegrain.data.sources import read_source
from finegrain.encoders.loader import MODEL_FILE, WrongKindError, load_encoder, resolve_model_path
from finegrain.encoders.meta import MetaEncoder
from finegrain.encoders.normalize import FeatureNormalizer
from finegrain.encoders.tta import parse_tta
from finegrain.errors import FinegrainError

_ENVELOPE = ("format", "version", "fingerprint")


def store_threshold(run: Path | str, name: str, entry: dict[str, Any]) -> Path:
    """Add or replace ``thresholds[name]`` in a model file."""
    path = resolve_model_path(run)
    artifact = read_artifact(path, kinds=("embedding", "meta"))
    manifest = {**artifact.manifest, "thresholds": {**(artifact.manifest.get("thresholds") or {}), name: entry}}
    return write_artifact(path, manifest, artifact.tensors)


def normalize_model(run: Path | str, data: Path | str, root: Path | str | None = None, method: str = "whiten",
                    dim: int | None = None, tta: str | None = None, kind: str = "auto",
                    progress: bool = True) -> dict[str, Any]:
    """Fit a normaliser on ``data``'s embeddings (before any previous normaliser) and store it in the model.

    With ``tta``, the images are embedded with it and it becomes the model's default TTA, so the normaliser
    always sees embeddings made the way it was fitted. Thresholds fitted before (they compare normalised
    distances) are dropped, and the summary says which and how to recalibrate.
    """
    encoder = load_encoder(run, need="embedding", tta=tta, normalize=False)
    records = read_source(data, root, kind=kind, labels="optional")
    normalizer = FeatureNormalizer.fit(encoder.encode_files([r.path for r in records], progress=progress).vectors,
                                       method, dim)
    path = resolve_model_path(run)
    artifact = read_artifact(path)
    entry, tensors = normalizer.to_artifact("normalizer")
    kept = {k: v for k, v in artifact.tensors.items() if not k.startswith("normalizer.")}
    dropped = sorted(artifact.manifest.get("thresholds") or {})
    manifest = {**artifact.manifest, "normalizer": {**entry, "fitted_on": str(data), "images": len(records),
                                                    "tta": list(encoder.tta)}, "thresholds": {}}
    if tta is not None:
        manifest["tta"] = list(encoder.tta)
    write_artifact(path, manifest, {**kept, **tensors})
    summary: dict[str, Any] = {"model": str(path), "method": method, "fitted_on": len(records),
                               "embedding_size": normalizer.output_size or encoder.output_size,
                               "tta": list(encoder.tta)}
    if dropped:
        summary["dropped_thresholds"] = dropped
        summary["note"] = (f"dropped the {', '.join(dropped)} threshold fitted before normalising; recalibrate with "
                           f"'finegrain verify {run} --pairs PAIRS --root DIR --save-threshold'")
    return summary


def combine_models(runs: Sequence[Path | str], out: Path | str, tta: str | None = None) -> dict[str, Any]:
    """Write a meta-model of ``runs`` to ``out`` (a run folder, or a file); returns a summary.

    A combined model among ``runs`` is flattened into its components.
    """
    if len(runs) < 2:
        raise FinegrainError("combine needs at least two models")
    manifests: list[dict] = []
    tensors: dict = {}

    def add(manifest: dict, weights: dict, prefix: str = "") -> None:
        i = len(manifests)
        manifests.append({k: v for k, v in manifest.items() if k not in _ENVELOPE})
        tensors.update({f"components.{i}.{k[len(prefix):]}": v for k, v in weights.items() if k.startswith(prefix)})

    for run in runs:
        path = resolve_model_path(run)
        artifact = read_artifact(path, kinds=("embedding", "score", "meta"))
        if artifact.kind == "score":
            raise WrongKindError(f"{path} is a scoring model (trained with --task score); only embedding models "
                                 "can be combined")
        if artifact.kind == "meta":
            for j, part in enumerate(artifact.manifest["components"]):
                add(part, artifact.tensors, f"components.{j}.")
        else:
            add(artifact.manifest, artifact.tensors)
    out = Path(out)
    target = out if out.suffix == ".safetensors" else out / MODEL_FILE
    manifest = {"kind": "meta", "components": manifests, "normalizer": None, "thresholds": {},
                "tta": list(parse_tta(tta)), "provenance": {"combined_from": [str(r) for r in runs]}}
    MetaEncoder.from_artifact(manifest, tensors, out)  # refuse components that cannot go together, before writing
    write_artifact(target, manifest, tensors)
    encoder = load_encoder(target)
    return {"model": str(target), "components": len(manifests), "embedding_size": encoder.output_size,
            "image_size": encoder.image_size, "tta": list(encoder.tta), "fingerprint": encoder.fingerprint}
