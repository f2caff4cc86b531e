"""Gallery/probe identification: each probe's identity rank over a labelled gallery; rank-k and a CMC curve."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from finegrain.data import read_source
from finegrain.encoders import Encoder, load_encoder
from finegrain.errors import DataError, Problem
from finegrain.eval.identification import DEFAULT_MAX_RANK, cmc_png, identity_ranks, report_from_ranks
from finegrain.utils import atomic_write_text


def _encode_labelled(encoder: Encoder, records: list, what: str, skip_bad: bool, progress: bool) -> tuple[
        np.ndarray, list]:
    """(N×E vectors, labels) of the readable labelled records."""
    unlabelled = [Problem(r.path, "no label (identification needs an identity per image)") for r in records
                  if r.label is None]
    if unlabelled:
        raise DataError(f"{what}: {len(unlabelled)} image(s) without a label", unlabelled)
    label_of = {r.path: r.label for r in records}
    encoded = encoder.encode_files([r.path for r in records], skip_bad=skip_bad, progress=progress, what=what)
    if encoded.problems:
        print(f"finegrain identification: skipped {len(encoded.problems)} unreadable {what} image(s)",
              file=sys.stderr)
    if not encoded.paths:
        raise DataError(f"{what}: no readable images")
    return encoded.vectors, [label_of[p] for p in encoded.paths]


def identification_run(run: Path | str, gallery: Path | str, probes: Path | str, root: Path | str | None = None,
                       out: Path | str | None = None, skip_bad: bool = False, batch_size: int = 256,
                       tta: str | None = None, progress: bool = True, device: str = "cpu") -> dict:
    """Rank-1/5/10 and the CMC curve of ``probes`` against ``gallery``; writes metrics.json and cmc.png."""
    encoder = load_encoder(run, need="embedding", tta=tta, batch_size=batch_size, device=device)
    out_dir = Path(out) if out else (Path(run) if Path(run).is_dir() else Path(run).parent) / "identification"
    # kind="label": identities are names even when they look like numbers (a list of "<path> 17" lines).
    gallery_records = read_source(gallery, root, kind="label")
    probe_records = read_source(probes, root, kind="label")
    in_gallery = {r.path.resolve() for r in gallery_records}
    shared = [Problem(r.path, "also in the gallery") for r in probe_records if r.path.resolve() in in_gallery]
    if shared:
        raise DataError(f"{len(shared)} probe image(s) are also gallery images; each would find itself at rank 1, "
                        "so use disjoint gallery and probe sets", shared)
    gallery_vectors, gallery_labels = _encode_labelled(encoder, gallery_records, "gallery", skip_bad, progress)
    probe_vectors, probe_labels = _encode_labelled(encoder, probe_records, "probes", skip_bad, progress)

    # Probes in chunks: the similarity matrix is never held whole, however many probes there are.
    step = max(1, 4_000_000 // len(gallery_labels))
    ranks = np.concatenate([
        identity_ranks(probe_vectors[i : i + step] @ gallery_vectors.T, probe_labels[i : i + step], gallery_labels)
        for i in range(0, len(probe_labels), step)
    ])
    metrics = report_from_ranks(ranks, gallery_labels, DEFAULT_MAX_RANK)
    metrics["tta"] = list(encoder.tta)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics["cmc_png"] = str(cmc_png(metrics["cmc"], out_dir / "cmc.png"))
    metrics["metrics_json"] = str(out_dir / "metrics.json")
    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    return metrics
