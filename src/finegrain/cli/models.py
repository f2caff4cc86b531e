"""Commands on models: eval, score, embed, export, normalize, combine, convert."""

from __future__ import annotations

import json
import sys

from finegrain.cli.registry import arg, command, device_arg, tta_arg
from finegrain.errors import DataError


@command("eval", "retrieval metrics on a labelled set, or correlation on a rated set",
         arg("run", help="run folder or model file"),
         arg("data", help="labelled images (folder, CSV manifest or list), or rated ones for a scorer; a list's "
                          "second column is read as labels for an embedding model and as scores for a scorer"),
         arg("--root", help="folder that relative paths resolve against"),
         arg("--out", help="where to write metrics.json and the grid PNG (default: RUN/eval)"),
         arg("--skip-bad", action="store_true", help="drop unreadable images instead of stopping"),
         tta_arg(), device_arg())
def eval_command(run: str, data: str, root: str | None = None, out: str | None = None, skip_bad: bool = False,
                 tta: str | None = None, device: str = "auto") -> int:
    from finegrain.evaluate import evaluate_run

    print(json.dumps(evaluate_run(run, data, root=root, out=out, skip_bad=skip_bad, tta=tta, device=device),
                     indent=2))
    return 0


@command("score", "score images with a model trained with --task score",
         arg("run", help="run folder or model file"),
         arg("images", nargs="+", help="image files or folders of images"),
         arg("--json", dest="as_json", action="store_true", help="print JSON"),
         arg("--batch-size", type=int, default=256, help="images scored at a time (default: 256)"),
         tta_arg(), device_arg())
def score_command(run: str, images: list[str], as_json: bool = False, batch_size: int = 256,
                  tta: str | None = None, device: str = "auto") -> int:
    from finegrain.data.sources import expand_images
    from finegrain.encoders import load_encoder

    scorer = load_encoder(run, need="score", tta=tta, batch_size=batch_size, device=device)
    encoded = scorer.encode_files(expand_images(images), skip_bad=True, progress=False)
    if as_json:
        print(json.dumps([{"path": str(p), "score": float(s)} for p, s in zip(encoded.paths, encoded.vectors)],
                         indent=2))
    else:
        for p, s in zip(encoded.paths, encoded.vectors):
            print(f"{s:.4f}  {p}")
    if encoded.problems:
        # Report the unusable files after scoring the rest, so one bad file does not cost the others.
        error = DataError(f"{len(encoded.problems)} image(s) could not be scored", encoded.problems)
        print(f"finegrain score: error: {error}", file=sys.stderr)
        return 2
    return 0


@command("embed", "write embeddings of images to a .npy or .parquet file",
         arg("run", help="run folder or model file (an embedding or combined model)"),
         arg("images", nargs="+", help="image files, folders of images, or one CSV manifest or list file"),
         arg("--out", required=True, help="vectors.npy (an N×E array, with vectors.paths.txt beside it) or "
                                          "vectors.parquet (path, label or score when known, and the vector)"),
         arg("--root", help="folder that relative paths in a manifest or list resolve against"),
         arg("--kind", choices=("auto", "label", "score"), default="auto",
             help="what a list file's second column holds (default: auto, a score when every value is a number)"),
         arg("--skip-bad", action="store_true", help="leave unreadable images out instead of stopping"),
         arg("--batch-size", type=int, default=256, help="images embedded at a time (default: 256)"),
         tta_arg(), device_arg(),
         description="Embed images with a model's preprocessing, TTA and normaliser, and write the vectors.")
def embed_command(run: str, images: list[str], out: str, root: str | None = None, kind: str = "auto",
                  skip_bad: bool = False, batch_size: int = 256, tta: str | None = None, device: str = "auto") -> int:
    from finegrain.encoders.vectors import embed_to_file

    print(json.dumps(embed_to_file(run, images, out, root=root, kind=kind, skip_bad=skip_bad, batch_size=batch_size,
                                   tta=tta, device=device), indent=2))
    return 0


@command("export", "export a model to ONNX, checked against ONNX Runtime",
         arg("run", help="run folder or model file"),
         arg("--onnx", required=True, help="ONNX file to write"),
         tta_arg(" (flip only: it is built into the graph)"),
         description="Write the network, its normaliser and (with --tta flip) the mirror view as one ONNX graph "
                     "taking normalised N×3×S×S images; the export is run through ONNX Runtime and compared with "
                     "PyTorch on random images (outputs equal within 1e-4).")
def export_command(run: str, onnx: str, tta: str | None = None) -> int:
    from finegrain.encoders.onnx import export_onnx

    print(json.dumps(export_onnx(run, onnx, tta=tta), indent=2))
    return 0


@command("normalize", "fit feature normalisation (L2, centring, PCA whitening) into a model",
         arg("run", help="run folder or model file (a combined model too)"),
         arg("data", help="training images: folder (labelled or flat), CSV manifest or list"),
         arg("--root", help="folder that relative paths resolve against"),
         arg("--method", default="whiten", help="l2 | center | whiten (default: whiten)"),
         arg("--dim", type=int, help="whiten: output dimension (default: all)"),
         tta_arg("; it becomes the model's default, so the normaliser always sees embeddings made its way"),
         description="Embed training images, fit the normaliser and store it in the model file; every later use "
                     "of the model (eval, index, search, verify, identify, ...) applies it. Thresholds fitted "
                     "before are dropped (they no longer apply), and the output says so.")
def normalize_command(run: str, data: str, root: str | None = None, method: str = "whiten", dim: int | None = None,
                      tta: str | None = None) -> int:
    from finegrain.encoders.edit import normalize_model

    print(json.dumps(normalize_model(run, data, root=root, method=method, dim=dim, tta=tta), indent=2))
    return 0


@command("combine", "one meta-model from several: concatenated normalised embeddings",
         arg("runs", nargs="+", help="two or more run folders or model files (any backbones and sizes)"),
         arg("--out", required=True, help="run folder (or .safetensors file) for the combined model"),
         tta_arg(" for the combined model"))
def combine_command(runs: list[str], out: str, tta: str | None = None) -> int:
    from finegrain.encoders.edit import combine_models

    print(json.dumps(combine_models(runs, out, tta=tta), indent=2))
    return 0


@command("convert", "convert files from finegrain 0.1 (model.pt, checkpoint.pt, detectors, indexes)",
         arg("path", help="a run folder, an index folder, or a 0.1 model or detector file"),
         description="Rewrite finegrain 0.1 files (torch pickles) as safetensors artifacts beside them. Old files "
                     "are read with torch's restricted loader, so a planted file cannot run code.")
def convert_command(path: str) -> int:
    from finegrain.legacy import convert

    print(json.dumps({"written": [str(p) for p in convert(path)]}, indent=2))
    return 0
