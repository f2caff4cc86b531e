"""CLI subcommands for identification: ``finegrain identify`` (who is this?) and ``finegrain identification``
(gallery/probe CMC evaluation), as thin, typed functions over ``finegrain.eval.identification``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from finegrain.data.sources import expand_images
from finegrain.errors import ConfigError, DataError, FinegrainError, Problem

DEFAULT_THRESHOLD = 0.5
DEFAULT_ALTERNATIVES = 3


def _load_embedder(model: Path | str, batch_size: int):
    """An embedding model's Embedder; a scoring model is a clear error, not a shape mismatch later."""
    from finegrain.infer.embedder import Embedder
    from finegrain.models import ScoringModel

    embedder = Embedder.load(model, batch_size=batch_size)
    if isinstance(embedder.model, ScoringModel):
        raise FinegrainError(f"{model}: a scoring model (--task score) makes no embeddings to identify with")
    return embedder


def _gallery_vectors(index) -> np.ndarray:
    """Every vector of a flat faiss index, in metadata order.

    The output buffer is passed explicitly: once pytorch-metric-learning is imported, faiss's patched
    ``reconstruct_n`` returns a torch tensor unless it is handed a numpy array to fill.
    """
    vectors = np.empty((len(index), index.dim), np.float32)
    if len(index):
        index.index.reconstruct_n(0, len(index), vectors)
    return vectors


def cmd_identify(index: str, images: list[str], threshold: float = DEFAULT_THRESHOLD, k: int = DEFAULT_ALTERNATIVES,
                 as_json: bool = False, batch_size: int = 256) -> int:
    from finegrain.eval.identification import nearest_identity
    from finegrain.index.gallery import GalleryIndex

    if not -1.0 <= threshold <= 1.0:
        raise ConfigError(f"--threshold is a cosine similarity between -1 and 1, got {threshold}")
    if k < 0:
        raise ConfigError(f"-k: the number of alternative identities must be 0 or more, got {k}")
    gallery = GalleryIndex.load(index)
    labels = [m.get("label") for m in gallery.meta]
    if all(label is None for label in labels):
        raise FinegrainError(f"{index}: the index has no labels (it was built from unlabelled images), so it cannot "
                             "name anyone; rebuild it from a labelled folder, manifest or list with 'finegrain index'")
    embedder = _load_embedder(GalleryIndex.model_path(index), batch_size)
    if embedder.model.head.embedding_size != gallery.dim:
        raise FinegrainError(f"{index}: the index holds {gallery.dim}-d vectors but its model makes "
                             f"{embedder.model.head.embedding_size}-d ones; rebuild the index")
    vectors = _gallery_vectors(gallery)
    report, problems = [], []
    for paths, queries, bad in embedder.embed_paths(expand_images(images)):
        problems += bad
        for path, answer in zip(paths, nearest_identity(queries @ vectors.T, labels, threshold, alternatives=k)):
            report.append({"path": str(path), **answer.to_dict()})
            if as_json:
                continue
            if answer.unknown:
                print(f"{path}: unknown  (nearest: {answer.nearest} {answer.confidence:.4f} < {threshold})")
            else:
                print(f"{path}: {answer.label}  {answer.confidence:.4f}")
            if answer.alternatives:
                print("  next: " + ", ".join(f"{label} {s:.4f}" for label, s in answer.alternatives))
    if as_json:
        print(json.dumps(report, indent=2))
    if problems:
        # The readable images are answered first, so one bad file does not cost the others.
        raise DataError(f"{len(problems)} image(s) could not be read", problems)
    return 0


def _embed_records(embedder, records, what: str, skip_bad: bool, progress: bool) -> tuple[np.ndarray, list]:
    """Embed labelled records; returns (N×E vectors, labels) of the readable ones."""
    from finegrain.utils import progress_bar

    unlabelled = [Problem(r.path, "no label (identification needs an identity per image)") for r in records
                  if r.label is None]
    if unlabelled:
        raise DataError(f"{what}: {len(unlabelled)} image(s) without a label", unlabelled)
    label_of = {r.path: r.label for r in records}
    chunks, labels, problems = [], [], []
    bar = progress_bar(total=len(records), enabled=progress, desc=f"embedding {what}", unit="img")
    for paths, vectors, bad in embedder.embed_paths([r.path for r in records]):
        chunks.append(vectors)
        labels += [label_of[p] for p in paths]
        problems += bad
        bar.update(len(paths) + len(bad))
    bar.close()
    if problems and not skip_bad:
        raise DataError(f"{what}: {len(problems)} image(s) could not be read (--skip-bad leaves them out)", problems)
    if problems:
        print(f"finegrain identification: skipped {len(problems)} unreadable {what} image(s)", file=sys.stderr)
    if not labels:
        raise DataError(f"{what}: no readable images")
    return np.concatenate(chunks), labels


def cmd_identification(run: str, gallery: str, probes: str, root: str | None = None, out: str | None = None,
                       skip_bad: bool = False, batch_size: int = 256, progress: bool = True) -> int:
    from finegrain.data import read_source
    from finegrain.eval.identification import DEFAULT_MAX_RANK, cmc_png, identity_ranks, report_from_ranks
    from finegrain.utils import atomic_write_text

    embedder = _load_embedder(run, batch_size)
    out_dir = Path(out) if out else (Path(run) if Path(run).is_dir() else Path(run).parent) / "identification"
    # kind="label": identities are names even when they look like numbers (a list of "<path> 17" lines).
    gallery_records = read_source(gallery, root, kind="label")
    probe_records = read_source(probes, root, kind="label")
    in_gallery = {r.path.resolve() for r in gallery_records}
    shared = [Problem(r.path, "also in the gallery") for r in probe_records if r.path.resolve() in in_gallery]
    if shared:
        raise DataError(f"{len(shared)} probe image(s) are also gallery images; each would find itself at rank 1, "
                        "so use disjoint gallery and probe sets", shared)
    gallery_vectors, gallery_labels = _embed_records(embedder, gallery_records, "gallery", skip_bad, progress)
    probe_vectors, probe_labels = _embed_records(embedder, probe_records, "probes", skip_bad, progress)

    # Probes in chunks: the similarity matrix is never held whole, however many probes there are.
    step = max(1, 4_000_000 // len(gallery_labels))
    ranks = np.concatenate([
        identity_ranks(probe_vectors[i : i + step] @ gallery_vectors.T, probe_labels[i : i + step], gallery_labels)
        for i in range(0, len(probe_labels), step)
    ])
    metrics = report_from_ranks(ranks, gallery_labels, DEFAULT_MAX_RANK)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics["cmc_png"] = str(cmc_png(metrics["cmc"], out_dir / "cmc.png"))
    metrics["metrics_json"] = str(out_dir / "metrics.json")
    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    print(json.dumps({k: v for k, v in metrics.items() if k != "cmc"}, indent=2))
    return 0


def add_identify_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("identify", help="name the identity in each image from a labelled gallery index")
    p.add_argument("index", help="index folder made by 'finegrain index' from labelled images")
    p.add_argument("images", nargs="+", help="image files or folders of images")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"lowest cosine similarity accepted as a match; below it the answer is 'unknown' "
                        f"(default: {DEFAULT_THRESHOLD})")
    p.add_argument("-k", type=int, default=DEFAULT_ALTERNATIVES,
                   help=f"next-best distinct identities to show (default: {DEFAULT_ALTERNATIVES})")
    p.add_argument("--json", dest="as_json", action="store_true", help="print JSON")
    p.add_argument("--batch-size", type=int, default=256, help="images embedded at a time (default: 256)")
    p.set_defaults(_handler=cmd_identify)

    p = sub.add_parser("identification", help="gallery/probe identification: rank-1/5/10 and a CMC curve")
    p.add_argument("run", help="run folder or model file")
    p.add_argument("--gallery", required=True, help="labelled gallery images: folder, CSV manifest or list")
    p.add_argument("--probes", required=True, help="labelled probe images: folder, CSV manifest or list")
    p.add_argument("--root", help="folder that relative paths resolve against")
    p.add_argument("--out", help="where to write metrics.json and cmc.png (default: RUN/identification)")
    p.add_argument("--skip-bad", action="store_true", help="leave unreadable images out instead of stopping")
    p.add_argument("--batch-size", type=int, default=256, help="images embedded at a time (default: 256)")
    p.set_defaults(_handler=cmd_identification)
