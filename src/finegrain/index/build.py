"""Build, extend, re-embed, shrink and search gallery indexes: the library side of ``index`` and ``search``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from finegrain.data import read_source
from finegrain.encoders import Encoder, load_encoder, parse_tta, resolve_model_path
from finegrain.errors import DataError, Problem
from finegrain.index.gallery import GalleryError, GalleryIndex, IndexBinding
from finegrain.utils import progress_bar

SAVE_EVERY = 20_000


def index_encoder(folder: Path | str, batch_size: int = 256) -> tuple[GalleryIndex, Encoder]:
    """An index and the encoder its vectors were made with (its model copy, with its TTA)."""
    index = GalleryIndex.load(folder)
    encoder = load_encoder(index.model_path(folder), need="embedding", tta=index.tta, batch_size=batch_size)
    if encoder.fingerprint != index.binding.fingerprint or encoder.output_size != index.dim:
        raise GalleryError(f"{folder}: its model file does not match its vectors; rebuild it with --reembed")
    return index, encoder


def _start(out: Path, run: Path | str, tta: str | None, reembed: bool, encoder_args: dict) -> tuple[
        GalleryIndex, Encoder, list[dict]]:
    """The index to add to (existing, or new), the encoder, and existing items to re-embed."""
    existing = GalleryIndex.load(out) if GalleryIndex.exists(out) else None
    chosen = tta if tta is not None else (",".join(existing.tta) if existing else None)
    encoder = load_encoder(run, need="embedding", tta=chosen, **encoder_args)
    if existing is not None and not reembed:
        if existing.binding.fingerprint != encoder.fingerprint:
            raise GalleryError(
                f"{out} holds vectors of another model ({existing.binding.source}, fingerprint "
                f"{existing.binding.fingerprint[:12]}); {run} has fingerprint {str(encoder.fingerprint)[:12]}. One "
                "index never mixes two embedding spaces: pass --reembed to rebuild it all with this model, or "
                "choose another --out")
        if existing.tta != list(encoder.tta):
            raise GalleryError(f"{out} was embedded with --tta {','.join(existing.tta) or 'none'}; extend it with "
                               "the same --tta, or pass --reembed to rebuild it all with the new one")
        return existing, encoder, []
    carried = list(existing.meta) if existing is not None else []
    binding = IndexBinding.from_model(resolve_model_path(run), tta=list(encoder.tta), kind=encoder.kind)
    generation = existing.generation if existing is not None else 0
    return GalleryIndex(encoder.output_size, binding=binding, generation=generation), encoder, carried


def index_gallery(run: Path | str, gallery: Path | str, out: Path | str, root: Path | str | None = None,
                  batch_size: int = 256, progress: bool = True, tta: str | None = None, reembed: bool = False,
                  save_every: int = SAVE_EVERY) -> dict:
    """Embed the gallery's images not yet in ``out`` and add them; returns a summary.

    Labels are optional (a flat folder indexes; the path is the id); a list's second column is a label, even
    when it is a number (a class id): an index holds no scores. Progress is saved every ``save_every``
    new vectors, so a killed run keeps what it did and a rerun carries on. ``reembed`` rebuilds the whole
    index (the items already there, and the new ones) with ``run``.
    """
    out = Path(out)
    parse_tta(tta)
    index, encoder, carried = _start(out, run, tta, reembed, {"batch_size": batch_size})
    records = read_source(gallery, root, kind="label", labels="optional")
    todo = [(Path(m["path"]), m["label"]) for m in carried]
    todo += [(r.path, r.label) for r in records if not index.contains(r.path)]
    labels = {str(p): label for p, label in todo}
    problems: list[Problem] = []
    added = since_save = 0
    model_source = resolve_model_path(run)
    bar = progress_bar(total=len(todo), enabled=progress, desc="indexing", unit="img")
    for part in encoder.encode_paths([p for p, _ in todo]):
        problems += part.problems
        bar.update(len(part.paths) + len(part.problems))
        n = index.add(part.vectors, part.paths, [labels[str(p)] for p in part.paths])
        added, since_save = added + n, since_save + n
        if since_save >= save_every:
            index.save(out, model_source)
            since_save = 0
    bar.close()
    index.save(out, model_source)
    summary = {"index": str(out), "added": added, "total": len(index), "tta": index.tta,
               "skipped_bad": [str(p) for p in problems]}
    if carried:
        summary["reembedded"] = len(carried)
    return summary


def remove_from_index(out: Path | str, paths: Sequence[str | Path]) -> dict:
    """Remove items (a folder removes everything under it); paths that match nothing are an error."""
    index = GalleryIndex.load(out)
    removed, unmatched = index.remove(paths)
    if unmatched:
        raise DataError(f"{out}: {len(unmatched)} path(s) are not in the index (nothing was removed)",
                        [Problem(p, "not in the index") for p in unmatched])
    index.save(out)
    return {"index": str(out), "removed": removed, "total": len(index)}


def index_info(out: Path | str, top: int = 20) -> dict:
    """Model, size, TTA and label counts of an index."""
    index = GalleryIndex.load(out)
    counts = index.label_counts()
    b = index.binding
    return {"index": str(out), "size": len(index), "dim": index.dim, "tta": index.tta,
            "model": {"source": b.source, "file": str(index.model_path(out)), "kind": b.kind,
                      "fingerprint": b.fingerprint},
            "labelled": sum(counts.values()), "unlabelled": len(index) - sum(counts.values()),
            "identities": len(counts), "largest_identities": dict(list(counts.items())[:top]),
            "generation": index.generation}


def search_index(folder: Path | str, queries: list[Path], k: int = 20) -> list[dict]:
    """Top-``k`` gallery items for each query, embedded exactly as the gallery was."""
    index, encoder = index_encoder(folder)
    encoded = encoder.encode_files(queries, progress=False, what="queries")
    return [{"query": str(path), "hits": [h.__dict__ for h in hits]}
            for path, hits in zip(encoded.paths, index.search(encoded.vectors, k))]
