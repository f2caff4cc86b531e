"""``finegrain eval`` for embedding models: retrieval metrics on a labelled set, plus a grid PNG."""

from __future__ import annotations

import json
from pathlib import Path

from finegrain.data import prepare, read_source
from finegrain.eval.grid import retrieval_grid
from finegrain.eval.retrieval import retrieval_metrics
from finegrain.infer.embedder import Embedder
from finegrain.utils import atomic_write_text


def evaluate_run(
    run: Path | str,
    data: Path | str,
    root: Path | str | None = None,
    out: Path | str | None = None,
    skip_bad: bool = False,
    progress: bool = True,
) -> dict:
    """Embed every image of a labelled set and measure leave-one-out retrieval."""
    embedder = Embedder.load(run)
    prepared = prepare(read_source(data, root), embedder.image_size, task="embed", skip_bad=skip_bad,
                       progress=progress)
    images = prepared.images.array()
    emb = embedder.embed_array(images)
    metrics = retrieval_metrics(emb, prepared.labels)
    metrics.update({"images": len(prepared.records), "classes": len(prepared.classes)})
    out_dir = Path(out) if out else (Path(run) if Path(run).is_dir() else Path(run).parent) / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics["grid_png"] = str(retrieval_grid(images, prepared.labels, emb, out_dir / "retrieval_grid.png"))
    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    return metrics
