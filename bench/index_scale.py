"""Gallery-index scale: each index type built from N streamed vectors, then searched memory-mapped.

    .venv/bin/python bench/index_scale.py [--n 1000000] [--dim 128] [--queries 200] [--types flat,ivf,ivfpq,hnsw]

The vectors stand in for image embeddings (the image side is measured by the Omniglot benchmark's
embedding rate): unit vectors of N/100 "identities" (a random centre plus noise, cosine ~0.8 within one),
and queries are new samples of random identities. Each type is built in its own process through the
path `finegrain index` uses (journal, checkpoints, training on a sample, one save) and searched in another,
memory-mapped, one query at a time on one thread. Recall@10 is against exact search of the same vectors.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

CHUNK = 4096


def make_data(path: Path, n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(1, n // 100), dim)).astype(np.float32)
    data = np.lib.format.open_memmap(path, "w+", np.float32, (n, dim))
    for start in range(0, n, 65_536):
        count = min(65_536, n - start)
        x = centres[rng.integers(0, len(centres), count)] + 0.5 * rng.normal(size=(count, dim)).astype(np.float32)
        data[start:start + count] = x / np.linalg.norm(x, axis=1, keepdims=True)
    data.flush()
    x = centres[rng.integers(0, len(centres), 1000)] + 0.5 * rng.normal(size=(1000, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def rss_mb() -> dict:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {k: round(int(status[k].split()[0]) / 1024) for k in ("VmRSS", "RssAnon", "RssFile")}


def build(work: Path, kind: str, model: Path) -> dict:
    from finegrain.index.gallery import GalleryIndex, IndexBinding
    from finegrain.index.stream import append_parts, finish, open_journal

    data = np.load(work / "data.npy", mmap_mode="r")
    out = work / kind
    t = time.perf_counter()
    index = GalleryIndex(data.shape[1], binding=IndexBinding.from_model(model), kind=kind)
    journal = open_journal(out, index, rebuild=False)
    parts = ((np.asarray(data[s:s + CHUNK]), [f"/gallery/{i:07d}.jpg" for i in range(s, min(s + CHUNK, len(data)))],
              [None] * min(CHUNK, len(data) - s)) for s in range(0, len(data), CHUNK))
    append_parts(journal, parts, save_every=20_000)
    embedded = time.perf_counter() - t
    index = finish(out, index, journal, model)
    return {"build_s": round(time.perf_counter() - t, 1), "journal_s": round(embedded, 1), "params": index.params,
            "build_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "disk_mb": round(sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6)}


def search(work: Path, kind: str, settings: list[dict]) -> list[dict]:
    from finegrain.index.gallery import GalleryIndex

    faiss.omp_set_num_threads(1)  # one query at a time on one thread: the latency one request sees
    queries, truth = np.load(work / "queries.npy"), np.load(work / "truth.npy")
    t = time.perf_counter()
    index = GalleryIndex.load(work / kind, mmap=True)
    load_s = time.perf_counter() - t
    rows = []
    for s in settings:
        index.search(queries[:20], 10, **s)  # warm the mapped pages the first queries touch
        times, found = [], []
        for q in queries:
            t = time.perf_counter()
            hits = index.search(q[None], 10, **s)[0]
            times.append(time.perf_counter() - t)
            found.append({int(h.path[-11:-4]) for h in hits})
        recall = np.mean([len(f & set(t.tolist())) / 10 for f, t in zip(found, truth)])
        rows.append({**s, "recall_at_10": round(float(recall), 3), "p50_ms": round(1000 * float(np.median(times)), 3),
                     "load_s": round(load_s, 2), "search_rss_mb": rss_mb()})
    return rows


def settings_for(kind: str, params: dict) -> list[dict]:
    if kind in ("ivf", "ivfpq"):
        return [{"nprobe": p} for p in sorted({max(1, params["nprobe"] // 2), params["nprobe"], 2 * params["nprobe"]})]
    if kind == "hnsw":
        return [{"ef_search": e} for e in (32, 64, 128)]
    return [{}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--types", default="flat,ivf,ivfpq,hnsw")
    parser.add_argument("--child", nargs=3, metavar=("WHAT", "WORK", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        what, work, kind = args.child
        work = Path(work)
        if what == "build":
            result = build(work, kind, work / "model.safetensors")
        else:
            result = search(work, kind, json.loads((work / f"{kind}.settings.json").read_text()))
        print(json.dumps(result))
        return
    from finegrain.models import create_model, save_model

    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        work = Path(tmp)
        save_model(create_model("conv4", embedding_size=args.dim), work / "model.safetensors",
                   preprocessing={"image_size": 32})  # a stand-in: the vectors are synthetic
        queries = make_data(work / "data.npy", args.n, args.dim)[:args.queries]
        exact = faiss.IndexFlatIP(args.dim)
        exact.add(np.load(work / "data.npy", mmap_mode="r")[:])
        np.save(work / "queries.npy", queries)
        np.save(work / "truth.npy", exact.search(queries, 10)[1])
        del exact
        me = [sys.executable, __file__, "--child"]
        for kind in args.types.split(","):
            built = json.loads(subprocess.run([*me, "build", tmp, kind], check=True, stdout=subprocess.PIPE).stdout)
            (work / f"{kind}.settings.json").write_text(json.dumps(settings_for(kind, built["params"])))
            rows = json.loads(subprocess.run([*me, "search", tmp, kind], check=True, stdout=subprocess.PIPE).stdout)
            for row in rows:
                print(json.dumps({"type": kind, **built, **row}), flush=True)
            shutil.rmtree(work / kind)  # the next type's disk and page cache start clean
    print(f"command: python bench/index_scale.py --n {args.n} --dim {args.dim} --queries {args.queries} "
          f"--types {args.types}")


if __name__ == "__main__":
    main()
