"""Build, extend, re-embed, shrink and search gallery indexes: the library side of ``index`` and ``search``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from finegrain.data import read_source
from finegrain.encoders import Encoder, load_encoder, parse_tta, resolve_model_path
from finegrain.errors import ConfigError, DataError, Problem
from finegrain.index import kinds
from finegrain.index.gallery import GalleryError, GalleryIndex, IndexBinding
from finegrain.index.shards import search_shards
from finegrain.index.stream import append_parts, finish, open_journal
from finegrain.utils import progress_bar

SAVE_EVERY = 20_000


def index_encoder(folder: Path | str, batch_size: int = 256, mmap: bool = False,
                  device: str = "cpu") -> tuple[GalleryIndex, Encoder]:
    """An index and the encoder its vectors were made with (its model copy, with its TTA); ``mmap``: read-only."""
    index = GalleryIndex.load(folder, mmap=mmap)
    encoder = load_encoder(index.model_path(folder), need="embedding", tta=index.tta, batch_size=batch_size,
                           device=device)
    if encoder.fingerprint != index.binding.fingerprint or encoder.output_size != index.dim:
        raise GalleryError(f"{folder}: its model file does not match its vectors; rebuild it with --reembed")
    return index, encoder


def load_shards(folders: Sequence[Path | str], batch_size: int = 256,
                device: str = "cpu") -> tuple[list[GalleryIndex], Encoder]:
    """Every shard, memory-mapped (read-only), and the encoder of the first; shards must share model and TTA."""
    if not folders:
        raise ConfigError("give at least one index to search")
    first, encoder = index_encoder(folders[0], batch_size, mmap=True, device=device)
    shards = [first]
    for folder in folders[1:]:
        shard = GalleryIndex.load(folder, mmap=True)
        if shard.binding.fingerprint != first.binding.fingerprint or shard.tta != first.tta:
            raise GalleryError(f"{folder}: made with another model or --tta than {folders[0]} "
                               f"({shard.binding.fingerprint[:12]} vs {first.binding.fingerprint[:12]}); shards "
                               "searched together must share both")
        shards.append(shard)
    return shards, encoder


def _start(out: Path, run: Path | str, tta: str | None, reembed: bool, index_type: str | None,
           encoder_args: dict) -> tuple[GalleryIndex, Encoder, list[dict]]:
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
        if index_type is not None and index_type != existing.kind:
            raise GalleryError(f"{out} is a {existing.kind} index and keeps its type; pass --reembed to rebuild it "
                               f"as {index_type}, or choose another --out")
        return existing, encoder, []
    carried = list(existing.meta) if existing is not None else []
    binding = IndexBinding.from_model(resolve_model_path(run), tta=list(encoder.tta), kind=encoder.kind)
    generation = existing.generation if existing is not None else 0
    kind = index_type or (existing.kind if existing is not None else "flat")
    return GalleryIndex(encoder.output_size, binding=binding, generation=generation, kind=kind), encoder, carried


def index_gallery(run: Path | str, gallery: Path | str, out: Path | str, root: Path | str | None = None,
                  batch_size: int = 256, progress: bool = True, tta: str | None = None, reembed: bool = False,
                  save_every: int = SAVE_EVERY, index_type: str | None = None, device: str = "cpu") -> dict:
    """Embed the gallery's images not yet in ``out`` and add them; returns a summary.

    Labels are optional (a flat folder indexes; the path is the id); a list's second column is a label, even
    when it is a number (a class id): an index holds no scores. New vectors stream to the index's journal
    (checkpointed every ``save_every``), so memory stays bounded and a killed run's rerun carries on where
    it stopped; the searchable index switches once, at the end. ``reembed`` rebuilds the whole index (the
    items already there, and the new ones) with ``run``; ``index_type`` (``kinds.INDEX_TYPES``) is chosen
    when the index is made (default flat) and kept after.
    """
    out = Path(out)
    parse_tta(tta)
    if index_type is not None:
        kinds.check_type(index_type)
    index, encoder, carried = _start(out, run, tta, reembed, index_type, {"batch_size": batch_size, "device": device})
    journal = open_journal(out, index, rebuild=reembed, discard=reembed)
    resumed = len(journal)
    records = read_source(gallery, root, kind="label", labels="optional")
    todo = [(Path(m["path"]), m["label"]) for m in carried]
    todo += [(r.path, r.label) for r in records if not index.contains(r.path)]
    todo = [(p, label) for p, label in todo if not journal.contains(p)]
    if not index.index.is_trained:  # refuse before embedding anything, not after
        kinds.check_trainable(index.kind, len(index) + len(journal) + len({str(p) for p, _ in todo}), str(out))
    labels = {str(p): label for p, label in todo}
    problems: list[Problem] = []
    bar = progress_bar(total=len(todo), enabled=progress, desc="indexing", unit="img")

    def parts():
        for part in encoder.encode_paths([p for p, _ in todo]):
            problems.extend(part.problems)
            bar.update(len(part.paths) + len(part.problems))
            yield part.vectors, part.paths, [labels[str(p)] for p in part.paths]

    append_parts(journal, parts(), save_every)
    bar.close()
    added = len(journal)
    index = finish(out, index, journal, resolve_model_path(run))
    summary = {"index": str(out), "index_type": index.kind, "added": added, "total": len(index), "tta": index.tta,
               "skipped_bad": [str(p) for p in problems]}
    if resumed:
        summary["resumed"] = resumed  # embedded by an earlier, interrupted run
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
    """Model, size, TTA, index type and label counts of an index."""
    index = GalleryIndex.load(out, mmap=True)
    counts = index.label_counts()
    b = index.binding
    return {"index": str(out), "size": len(index), "dim": index.dim, "tta": index.tta,
            "index_type": index.kind, "index_params": index.params,
            "model": {"source": b.source, "file": str(index.model_path(out)), "kind": b.kind,
                      "fingerprint": b.fingerprint},
            "labelled": sum(counts.values()), "unlabelled": len(index) - sum(counts.values()),
            "identities": len(counts), "largest_identities": dict(list(counts.items())[:top]),
            "generation": index.generation}


def search_index(folder: Path | str | Sequence[Path | str], queries: list[Path], k: int = 20,
                 nprobe: int | None = None, ef_search: int | None = None, device: str = "cpu") -> list[dict]:
    """Top-``k`` gallery items for each query, embedded exactly as the gallery was.

    Several index folders (shards of one gallery, made with one model and TTA) are searched as one."""
    folders = [folder] if isinstance(folder, str | Path) else list(folder)
    shards, encoder = load_shards(folders, device=device)
    encoded = encoder.encode_files(queries, progress=False, what="queries")
    found = search_shards(shards, encoded.vectors, k, nprobe, ef_search)
    return [{"query": str(path), "hits": [h.__dict__ for h in hits]} for path, hits in zip(encoded.paths, found)]
