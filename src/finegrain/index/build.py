"""Index a gallery with a trained model, and search it: the library side of ``index`` and ``search``."""

from __future__ import annotations

from pathlib import Path

from finegrain.data import read_source
from finegrain.errors import DataError
from finegrain.index.gallery import INFO, GalleryIndex, build_index
from finegrain.infer.embedder import Embedder, resolve_model_path
from finegrain.utils import progress_bar


def index_gallery(run: Path | str, gallery: Path | str, out: Path | str, root: Path | str | None = None,
                  batch_size: int = 256, progress: bool = True, tta: str | None = None) -> dict:
    """Embed the gallery's images not yet in ``out`` and add them; returns a summary."""
    model_file = resolve_model_path(run)
    embedder = Embedder.load(model_file, batch_size=batch_size, tta=tta)
    out = Path(out)
    existing = GalleryIndex.load(out) if (out / INFO).exists() else None
    records = [r for r in read_source(gallery, root) if existing is None or not existing.contains(r.path)]
    labels = {r.path: r.label for r in records}
    problems = []
    bar = progress_bar(total=len(records), enabled=progress, desc="indexing", unit="img")

    def batches():
        for paths, vectors, bad in embedder.embed_paths([r.path for r in records]):
            problems.extend(bad)
            bar.update(len(paths) + len(bad))
            yield paths, vectors, [labels[p] for p in paths]

    dim = embedder.embedding_size
    index, added = build_index(batches(), out, dim, model_file, tta=list(embedder.tta))
    bar.close()
    return {"index": str(out), "added": added, "total": len(index), "skipped_bad": [str(p) for p in problems]}


def search_index(folder: Path | str, queries: list[Path], k: int = 20) -> list[dict]:
    index = GalleryIndex.load(folder)
    embedder = Embedder.load(GalleryIndex.model_path(folder), tta=index.tta)  # queries as the gallery was
    results = []
    for paths, vectors, problems in embedder.embed_paths(queries):
        if problems:
            raise DataError("cannot read the query images", problems)
        for path, hits in zip(paths, index.search(vectors, k)):
            results.append({"query": str(path), "hits": [h.__dict__ for h in hits]})
    return results
