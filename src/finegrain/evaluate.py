"""``finegrain eval``: retrieval metrics and a grid PNG for embedding models; correlation, error and a scatter
PNG for scoring models (the model file says which it is)."""

from __future__ import annotations

import json
from pathlib import Path

from finegrain.data import prepare, read_source
from finegrain.encoders import Encoder, load_encoder
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
) -> dict:
    """Embed every image of a labelled set and measure leave-one-out retrieval (or score a rated set).

    A list file's second column is read as the model needs it: class labels (even integer ids) for an
    embedding model, scores for a scoring model.
    """
    encoder = load_encoder(run, tta=tta)
    out_dir = Path(out) if out else (Path(run) if Path(run).is_dir() else Path(run).parent) / "eval"
    if encoder.output == "score":
        return _evaluate_scores(encoder, data, root, out_dir, skip_bad, progress)
    prepared = prepare(read_source(data, root, kind="label"), encoder.image_size, task="embed", skip_bad=skip_bad,
                       progress=progress)
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
                       progress=progress)
    predicted = scorer.encode_array(prepared.images.array())
    metrics: dict = regression_metrics(predicted, prepared.scores)
    metrics.update({"images": len(prepared.records), "tta": list(scorer.tta)})
    metrics["scatter_png"] = str(scatter_png(predicted, prepared.scores, out_dir / "scatter.png"))
    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    return metrics
