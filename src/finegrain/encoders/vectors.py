"""``finegrain embed``: embeddings of many images written to a file other tools read (.npy or .parquet)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from finegrain.data.records import Record
from finegrain.data.sources import is_image_file, read_source
from finegrain.encoders.loader import load_encoder
from finegrain.errors import ConfigError, DataError
from finegrain.utils import atomic_write, atomic_write_text

FORMATS = (".npy", ".parquet")


def _records(items: Sequence[str | Path], root: str | Path | None, kind: str) -> list[Record]:
    """Image files as they are; folders (class sub-folders give labels) and manifest or list files read."""
    records: list[Record] = []
    for item in map(Path, items):
        if item.is_file() and is_image_file(item):
            records.append(Record(item))
        else:
            records += read_source(item, root, kind=kind, labels="optional")
    if not records:
        raise DataError("no images to embed")
    return records


def _write_parquet(path: Path, records: list[Record], vectors: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"path": pa.array([str(r.path) for r in records])}
    if any(r.label is not None for r in records):
        columns["label"] = pa.array([r.label for r in records], type=pa.string())
    if any(r.score is not None for r in records):
        columns["score"] = pa.array([r.score for r in records], type=pa.float64())
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    columns["vector"] = pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
    atomic_write(path, lambda tmp: pq.write_table(pa.table(columns), tmp))


def _write_npy(path: Path, records: list[Record], vectors: np.ndarray) -> Path:
    """The array, and a CSV beside it (``vectors.csv``) naming each row's image, label and score."""
    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:  # a file object: np.save would add ".npy" to a name
            np.save(f, vectors.astype(np.float32))

    atomic_write(path, write)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["row", "path", "label", "score"])
    writer.writerows([i, str(r.path), r.label or "", "" if r.score is None else r.score] for i, r in enumerate(records))
    rows = path.with_suffix(".csv")
    atomic_write_text(rows, buffer.getvalue())
    return rows


def embed_to_file(run: str | Path, images: Sequence[str | Path], out: str | Path, root: str | Path | None = None,
                  kind: str = "auto", skip_bad: bool = False, batch_size: int = 256, tta: str | None = None,
                  progress: bool = True, device: str = "cpu") -> dict:
    out = Path(out)
    if out.suffix not in FORMATS:
        raise ConfigError(f"--out must end in {' or '.join(FORMATS)}, not {out.name!r}")
    encoder = load_encoder(run, need="embedding", tta=tta, batch_size=batch_size, device=device)
    records = _records(images, root, kind)
    encoded = encoder.encode_files([r.path for r in records], skip_bad=skip_bad, progress=progress)
    by_path = {r.path: r for r in records}
    kept = [by_path[p] for p in encoded.paths]
    summary = {"out": str(out), "images": len(kept), "dim": encoder.output_size, "tta": list(encoder.tta),
               "model": str(encoder.path), "fingerprint": encoder.fingerprint,
               "skipped_bad": [str(p.path) for p in encoded.problems]}
    if out.suffix == ".parquet":
        _write_parquet(out, kept, encoded.vectors)
    else:
        summary["rows"] = str(_write_npy(out, kept, encoded.vectors))
    return summary
