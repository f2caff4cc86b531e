"""Gallery commands: index (build, extend, re-embed, remove, info), search, identify."""

from __future__ import annotations

import json

from finegrain.cli.registry import arg, command, device_arg, tta_arg
from finegrain.errors import ConfigError


@command("index", "build, extend, re-embed or shrink a searchable gallery index",
         arg("run", nargs="?", help="run folder or model file (an embedding or combined model)"),
         arg("gallery", nargs="?", help="gallery images: a folder (class sub-folders give labels; a flat folder "
                                        "indexes too, the path is the id), a CSV manifest or a list"),
         arg("--out", help="index folder"),
         arg("--root", help="folder that relative paths resolve against"),
         arg("--batch-size", type=int, default=256, help="images embedded at a time (default: 256)"),
         tta_arg("; searches of this index use the same"),
         arg("--reembed", action="store_true",
             help="rebuild the whole index with RUN (the items already in it, and GALLERY's)"),
         arg("--save-every", type=int, default=20_000,
             help="checkpoint progress after this many new images, so a killed run keeps them (default: 20000)"),
         arg("--index-type", metavar="TYPE",
             help="faiss index for a new index: flat (exact; default), ivf (k-means lists, trained on a sample), "
                  "ivfpq (ivf with compressed vectors), hnsw (graph); an existing index keeps its type"),
         arg("--remove", nargs="+", metavar="PATH", help="remove these images (a folder: all under it) from --out"),
         arg("--info", metavar="INDEX", help="print an index's model, size, TTA and label counts"),
         device_arg(),
         description="finegrain index RUN GALLERY --out IDX  embeds GALLERY's images not yet in IDX.  "
                     "finegrain index --out IDX --remove PATH...  removes items.  finegrain index --info IDX  "
                     "describes it. An index only ever holds one model's vectors: extending it with another "
                     "model is refused (--reembed rebuilds it). Every save is atomic; new vectors stream to disk "
                     "and a killed run's rerun carries on where it stopped.")
def index_command(run: str | None = None, gallery: str | None = None, out: str | None = None,
                  root: str | None = None, batch_size: int = 256, tta: str | None = None, reembed: bool = False,
                  save_every: int = 20_000, remove: list[str] | None = None, info: str | None = None,
                  index_type: str | None = None, device: str = "auto") -> int:
    from finegrain.index.build import index_gallery, index_info, remove_from_index
    from finegrain.index.kinds import check_type

    if index_type is not None:
        check_type(index_type)
        if info is not None or remove:
            raise ConfigError("--index-type applies when building an index (RUN GALLERY --out INDEX)")
    if info is not None:
        if run or gallery or out or remove:
            raise ConfigError("--info INDEX takes no other arguments")
        result = index_info(info)
    elif remove:
        if run or gallery or not out:
            raise ConfigError("--remove PATH... needs --out INDEX and no RUN or GALLERY")
        result = remove_from_index(out, remove)
    else:
        if not (run and gallery and out):
            raise ConfigError("give RUN GALLERY --out INDEX (or --remove PATH... --out INDEX, or --info INDEX)")
        if save_every < 1:
            raise ConfigError(f"--save-every must be at least 1, not {save_every}")
        result = index_gallery(run, gallery, out, root=root, batch_size=batch_size, tta=tta, reembed=reembed,
                               save_every=save_every, index_type=index_type, device=device)
    print(json.dumps(result, indent=2))
    return 0


@command("search", "top-k most similar gallery images for each query",
         arg("index", help="index folder made by 'finegrain index'"),
         arg("queries", nargs="+", help="query images (files or folders)"),
         arg("-k", type=int, default=20, help="matches per query (default: 20)"),
         arg("--shard", action="append", metavar="INDEX",
             help="another index searched with INDEX as one gallery (same model and TTA; repeatable)"),
         arg("--nprobe", type=int, help="ivf/ivfpq: lists scanned per query (default: the index's, ~nlist/64)"),
         arg("--ef-search", type=int, help="hnsw: candidates visited per query (default: the index's, 128)"),
         arg("--json", dest="as_json", action="store_true", help="print JSON"),
         device_arg(),
         description="More --nprobe or --ef-search: higher recall, slower search; a flat index is exact.")
def search_command(index: str, queries: list[str], k: int = 20, as_json: bool = False,
                   shard: list[str] | None = None, nprobe: int | None = None, ef_search: int | None = None,
                   device: str = "auto") -> int:
    from finegrain.data.sources import expand_images
    from finegrain.index.build import search_index

    if k < 1:
        raise ConfigError(f"-k must be at least 1, not {k}")
    results = search_index([index, *(shard or [])], expand_images(queries), k=k, nprobe=nprobe, ef_search=ef_search,
                           device=device)
    if as_json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(f"{r['query']}:")
        for rank, h in enumerate(r["hits"], 1):
            label = f"  [{h['label']}]" if h["label"] is not None else ""
            print(f"  {rank:3d}. {h['similarity']:.4f}  {h['path']}{label}")
    return 0


@command("identify", "name the identity in each image from a labelled gallery index",
         arg("index", help="index folder made by 'finegrain index' from labelled images"),
         arg("images", nargs="+", help="image files or folders of images"),
         arg("--threshold", type=float, default=0.5,
             help="lowest cosine similarity accepted as a match; below it the answer is 'unknown' (default: 0.5)"),
         arg("-k", type=int, default=3, help="next-best distinct identities to show (default: 3)"),
         arg("--json", dest="as_json", action="store_true", help="print JSON"),
         arg("--batch-size", type=int, default=256, help="images embedded at a time (default: 256)"),
         device_arg(),
         description="Each image is embedded as the index's gallery was (its model, TTA and normaliser) and named "
                     "by its nearest labelled gallery image, or 'unknown' under --threshold.")
def identify_command(index: str, images: list[str], threshold: float = 0.5, k: int = 3, as_json: bool = False,
                     batch_size: int = 256, device: str = "auto") -> int:
    from finegrain.data.sources import expand_images
    from finegrain.errors import DataError, Problem
    from finegrain.identification.identify import identify

    report: list[dict] = []
    bad: list[Problem] = []
    for path, answer in identify(index, expand_images(images), threshold, k, batch_size, problems=bad,
                                   device=device):
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
    if bad:
        # The readable images are answered first, so one bad file does not cost the others.
        raise DataError(f"{len(bad)} image(s) could not be read", bad)
    return 0
