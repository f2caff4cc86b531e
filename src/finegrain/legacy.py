"""``finegrain convert``: files written by finegrain 0.1 (torch pickles) → artifacts.

Old files are read with ``torch.load(weights_only=True)``, torch's restricted unpickler, which refuses
anything but tensors and plain containers, so converting a planted file cannot run its code. The old
files are left in place; the new ones are written beside them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from finegrain.artifact import ArtifactError, pack_state, write_artifact

OLD_MODEL, OLD_META, OLD_DETECTOR = "finegrain-model", "finegrain-meta", "finegrain-face-detector"


def _load_old(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a refusal of any kind is one message
        raise ArtifactError(f"{path}: cannot be converted safely; it is not a plain finegrain 0.1 file "
                            f"({type(e).__name__})") from None


def _normalizer(extra: dict, tensors: dict, prefix: str) -> dict | None:
    norm = extra.get("normalization")
    if not norm:
        return None
    for key in ("mean", "projection"):
        if norm.get(key) is not None:
            tensors[f"{prefix}normalizer.{key}"] = torch.as_tensor(norm[key])
    projection = norm.get("projection")
    return {"method": norm["method"], "output_size": None if projection is None else int(projection.shape[1]),
            "fitted_on": "finegrain 0.1 file", "tta": []}


def _model_manifest(payload: dict, tensors: dict, prefix: str = "") -> dict:
    extra = dict(payload.get("extra") or {})
    tensors.update({f"{prefix}model.{k}": v for k, v in payload["state_dict"].items()})
    config = payload["model_config"]
    thresholds = {}
    if extra.get("verification"):
        old = extra["verification"]
        thresholds["verification"] = {"threshold": old["threshold"], "accuracy": old.get("accuracy"),
                                      "fitted_on": old.get("source"), "tta": old.get("tta", []),
                                      "normalizer": (extra.get("normalization") or {}).get("method")}
    provenance = {k: extra[k] for k in ("num_train_classes", "score_range") if k in extra}
    return {"kind": "score" if config.get("kind") == "score" else "embedding", "architecture": config,
            "preprocessing": extra["preprocess"], "normalizer": _normalizer(extra, tensors, prefix),
            "thresholds": thresholds, "tta": [], "train_config": extra.get("train_config"),
            "provenance": {**provenance, "converted_from": "finegrain 0.1"}}


def convert_model(old: Path, new: Path) -> Path:
    payload = _load_old(old)
    tensors: dict[str, torch.Tensor] = {}
    if not isinstance(payload, dict) or payload.get("format") not in (OLD_MODEL, OLD_META, OLD_DETECTOR):
        if isinstance(payload, dict) and {"epoch", "model_config", "model_state"} <= set(payload):
            return _convert_checkpoint(payload, new)
        raise ArtifactError(f"{old}: not a finegrain 0.1 model, detector or checkpoint")
    if payload["format"] == OLD_DETECTOR:
        architecture = payload.get("architecture") or {
            name: {} if name == "detect12" else {"window_contrast": False} for name in payload["weights"]}
        for name, weights in payload["weights"].items():
            tensors.update({f"{name}.{k}": v for k, v in weights.items()})
        manifest = {"kind": "detector", "architecture": architecture, "settings": payload["settings"],
                    "metadata": payload.get("metadata") or {}}
    elif payload["format"] == OLD_META:
        parts = [_model_manifest(part, tensors, f"components.{i}.") for i, part in enumerate(payload["components"])]
        extra = dict(payload.get("extra") or {})
        manifest = {"kind": "meta", "components": parts, "normalizer": _normalizer(extra, tensors, ""),
                    "thresholds": {}, "tta": [], "provenance": {"combined_from": extra.get("combined_from"),
                                                                "converted_from": "finegrain 0.1"}}
    else:
        manifest = _model_manifest(payload, tensors)
    return write_artifact(new, manifest, tensors)


def _convert_checkpoint(payload: dict, new: Path) -> Path:
    tensors = {f"model.{k}": v for k, v in payload["model_state"].items()}
    state = {k: payload[k] for k in ("optimizer", "scheduler", "task", "plateau", "history")}
    manifest = {"kind": "checkpoint", "epoch": payload["epoch"], "architecture": payload["model_config"],
                "state": pack_state(state, "state", tensors)}
    return write_artifact(new, manifest, tensors)


def _convert_index(folder: Path) -> list[Path]:
    import faiss

    from finegrain.index.gallery import GalleryIndex, IndexBinding, item_id

    info = json.loads((folder / "index.json").read_text())
    model = convert_model(folder / "model.pt", folder / ".model.converted.safetensors")
    vectors = faiss.read_index(str(folder / "vectors.faiss"))
    meta = [json.loads(line) for line in (folder / "meta.jsonl").read_text().splitlines() if line]
    binding = IndexBinding.from_model(model, tta=info.get("tta") or [])
    binding.source = f"{folder / 'model.pt'} (finegrain 0.1)"
    gallery = GalleryIndex(info["dim"], vectors, [{"path": item_id(m["path"]), "label": m.get("label")} for m in meta],
                           binding)
    gallery.save(folder, model)
    model.unlink()
    for name in ("vectors.faiss", "meta.jsonl", "model.pt"):
        shutil.move(folder / name, folder / f"{name}.0.1")
    return [folder]


def convert(path: Path | str) -> list[Path]:
    """Convert a 0.1 file, run folder or index folder; returns what was written."""
    path = Path(path)
    if path.is_dir():
        info = path / "index.json"
        if info.exists() and "generation" not in json.loads(info.read_text()):
            return _convert_index(path)
        olds = sorted(p for p in path.rglob("*.pt") if p.name in ("model.pt", "checkpoint.pt"))
        if not olds:
            raise ArtifactError(f"{path}: no finegrain 0.1 model.pt or checkpoint.pt to convert")
        return [convert_model(old, old.with_suffix(".safetensors")) for old in olds]
    if not path.is_file():
        raise ArtifactError(f"{path}: file not found")
    return [convert_model(path, path.with_suffix(".safetensors"))]
