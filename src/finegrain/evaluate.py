"""``finegrain eval``: retrieval metrics and a grid PNG for embedding models; correlation, error and a scatter
PNG for scoring models; top-1/top-5/mean per-class accuracy and a confusion matrix for classifiers (the model
file says which it is)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from finegrain.artifact import read_manifest
from finegrain.classify import Classifier
from finegrain.data import prepare, read_source
from finegrain.encoders import Encoder, load_encoder, resolve_model_path
from finegrain.errors import ConfigError
from finegrain.eval.classification import classification_metrics, confusion_png, per_class_table
from finegrain.eval.grid import retrieval_grid
from finegrain.eval.regression import regression_metrics, scatter_png
from finegrain.eval.retrieval import retrieval_metrics
from finegrain.utils import atomic_write_text


def evaluate_run(
    run: Path | str,
    data: Path | str,
    root: Path | str | None = None,
    out: Path | str | None = None,
    skip_bad: bool = False,
    progress: bool = True,
    tta: str | None = None,
    device: str = "cpu",
) -> dict:
    """Embed every image of a labelled set and measure leave-one-out retrieval (or score a rated set).

    A list file's second column is read as the model needs it: class labels (even integer ids) for an
    embedding model, scores for a scoring model.
    """
    out_dir = Path(out) if out else (Path(run) if Path(run).is_dir() else Path(run).parent) / "eval"
    if read_manifest(resolve_model_path(run)).get("classifier"):  # the file's header only
        if tta not in (None, "", "none"):
            raise ConfigError(f"--tta {tta}: a classifier's probabilities come from its head on the image itself; "
                              "test-time augmentation is not applied to them")
        return _evaluate_classes(run, data, root, out_dir, skip_bad, progress, device)
    encoder = load_encoder(run, tta=tta, device=device)
    if encoder.output == "score":
        return _evaluate_scores(encoder, data, root, out_dir, skip_bad, progress)
    prepared = prepare(read_source(data, root, kind="label"), encoder.image_size, task="embed", skip_bad=skip_bad,
                       progress=progress, faces=encoder.face_cropper)
    images = prepared.images.array()
    emb = encoder.encode_array(images)
    metrics = retrieval_metrics(emb, prepared.labels)
    metrics.update({"images": len(prepared.records), "classes": len(prepared.classes), "tta": list(encoder.tta)})
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics["grid_png"] = str(retrieval_grid(images, prepared.labels, emb, out_dir / "retrieval_grid.png"))
    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    return metrics


def _evaluate_scores(scorer: Encoder, data: Path | str, root: Path | str | None, out_dir: Path, skip_bad: bool,
                     progress: bool) -> dict:
    prepared = prepare(read_source(data, root, kind="score"), scorer.image_size, task="score", skip_bad=skip_bad,
                       progress=progress, faces=scorer.face_cropper)
    predicted = scorer.encode_array(prepared.images.array())
    metrics: dict = regression_metrics(predicted, prepared.scores)
    metrics.update({"images": len(prepared.records), "tta": list(scorer.tta)})
    metrics["scatter_png"] = str(scatter_png(predicted, prepared.scores, out_dir / "scatter.png"))
    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    return metrics


def _evaluate_classes(run: Path | str, data: Path | str, root: Path | str | None, out_dir: Path, skip_bad: bool,
                      progress: bool, device: str = "cpu") -> dict:
    """top1, top5, mean per-class accuracy, a per-class CSV and the confusion matrix of a classifier.

    Images of classes the model was not trained on cannot be right or wrong: they are left out and counted."""
    classifier = Classifier.load(run, device)
    prepared = prepare(read_source(data, root, kind="label"), classifier.image_size, task="embed", min_per_class=1,
                       skip_bad=skip_bad, progress=progress, faces=classifier.encoder.face_cropper)
    index = {name: i for i, name in enumerate(classifier.classes)}
    labels = np.asarray([index.get(prepared.classes[k], -1) for k in prepared.labels], dtype=np.int64)
    known = np.flatnonzero(labels >= 0)
    probabilities = classifier.probabilities(prepared.images.array()[known])
    labels = labels[known]
    metrics: dict = classification_metrics(probabilities, labels)
    unknown = sorted({prepared.classes[k] for k in prepared.labels} - set(index))
    metrics.update({"images": len(known), "classes": len(np.unique(labels)), "head": classifier.info["head"],
                    "imbalance": classifier.info.get("applied", {}).get("method")})
    if unknown:
        metrics["left_out"] = {"images": len(prepared.records) - len(known), "unknown_classes": unknown[:20]}
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = per_class_table(probabilities, labels, classifier.classes, np.asarray(classifier.info["train_counts"]))
    csv = "class,images,accuracy,train_images\n" + "".join(
        f"{r['class']},{r['images']},{r['accuracy']},{r['train_images']}\n" for r in rows)
    atomic_write_text(out_dir / "per_class.csv", csv)
    metrics["per_class_csv"] = str(out_dir / "per_class.csv")
    metrics["confusion_png"] = str(confusion_png(probabilities.argmax(axis=1), labels, classifier.classes,
                                                 out_dir / "confusion.png"))
    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    return metrics
