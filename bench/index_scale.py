"""Gallery-index scale: stream N embeddings into a persisted index in batches, then search it.

    .venv/bin/python bench/index_scale.py [--n 100000] [--dim 128]

Uses random unit vectors in place of image embeddings (the image side is measured by the Omniglot
benchmark's embedding rate): this isolates the index's add, save, load and search costs and its
peak memory, which is what a 100k-image gallery stresses.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from finegrain.index.build import SAVE_EVERY
from finegrain.index.gallery import GalleryIndex, IndexBinding
from finegrain.models import create_model, save_model


def batches(n: int, dim: int, size: int = 256, seed: int = 0):
    rng = np.random.default_rng(seed)
    for start in range(0, n, size):
        count = min(size, n - start)
        v = rng.normal(size=(count, dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        yield [f"gallery/{i:07d}.jpg" for i in range(start, start + count)], v, [str(i % 1000) for i in
                                                                                  range(start, start + count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "idx"
        model = save_model(create_model("conv4", embedding_size=args.dim), Path(tmp) / "model.safetensors",
                           preprocessing={"image_size": 32})  # a stand-in: the vectors are random
        t = time.perf_counter()
        index, added = GalleryIndex(args.dim, binding=IndexBinding.from_model(model)), 0
        for paths, vectors, labels in batches(args.n, args.dim):
            added += index.add(vectors, paths, labels)
            if added % SAVE_EVERY < len(paths):
                index.save(folder, model)
        index.save(folder, model)
        build_seconds = time.perf_counter() - t
        t = time.perf_counter()
        index = GalleryIndex.load(folder)
        load_seconds = time.perf_counter() - t
        queries = next(batches(100, args.dim, size=100, seed=1))[1]
        t = time.perf_counter()
        hits = index.search(queries, k=20)
        search_ms = (time.perf_counter() - t) * 1000 / len(queries)
        size_mb = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6
    print(json.dumps({
        "vectors": added, "dim": args.dim, "build_and_save_seconds": round(build_seconds, 2),
        "load_seconds": round(load_seconds, 2), "search_ms_per_query_top20": round(search_ms, 3),
        "index_folder_mb": round(size_mb, 1), "hits_per_query": len(hits[0]),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "command": f"python bench/index_scale.py --n {args.n} --dim {args.dim}",
    }, indent=2))


if __name__ == "__main__":
    main()
