"""Every kind of model × every consumer × TTA on and off: each combination works or stops with one named line.

Runs the real CLI in-process, so an unexpected exception fails the test with its traceback. Where a
combination cannot work, the expected refusal (and its reason) is listed in ``REFUSED``; everything
else must succeed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from finegrain.cli import main
from finegrain.encoders.edit import combine_models, normalize_model

KINDS = ["embedding", "scorer", "meta", "l2", "center", "whiten", "lbp"]
CONSUMERS = ["eval", "index+search", "identify", "verify-pair", "verify-pairs", "fewshot", "pseudolabel", "explain",
             "normalize", "combine", "embed", "export"]
NEEDS_EMBEDDINGS = {"index+search", "identify", "verify-pair", "verify-pairs", "fewshot", "pseudolabel", "normalize",
                    "combine", "embed"}
# (kind, consumer) → a phrase of the one-line refusal; any TTA.
REFUSED = {("scorer", c): "scoring model" for c in NEEDS_EMBEDDINGS}
REFUSED |= {("meta", "explain"): "combined model", ("lbp", "explain"): "1x1",
            ("meta", "export"): "export each component", ("lbp", "export"): "cannot be exported to ONNX",
            # With TTA, explain compares against an index's top match, and a scorer makes no index.
            ("scorer", "explain", "flip"): "scoring model"}


@pytest.fixture(scope="module")
def world(tmp_path_factory, make_model) -> dict:
    """Four people × four images in LFW layout, a pair file, a score list, unlabelled copies, and one model
    file of each kind."""
    root = tmp_path_factory.mktemp("compat")
    rng = np.random.default_rng(0)
    people = root / "people"
    lines = []
    for p in range(4):
        name = f"Person_{p}"
        (people / name).mkdir(parents=True)
        pattern = cv2.GaussianBlur(rng.random((40, 40, 3)).astype(np.float32), (7, 7), 0)
        for i in range(1, 5):
            image = np.clip(pattern + rng.normal(0, 0.04, pattern.shape), 0, 1)
            cv2.imwrite(str(people / name / f"{name}_{i:04d}.jpg"), (image * 255).astype(np.uint8))
            lines.append(f"{name}/{name}_{i:04d}.jpg {1 + p + i / 10:.2f}")
    (root / "scores.txt").write_text("\n".join(lines) + "\n")
    pairs = ["2\t2"] + [f"Person_{f}\t1\t2" for f in range(2)]
    pairs += ["Person_0\t1\tPerson_1\t1", "Person_2\t3\tPerson_3\t4"]
    pairs += [f"Person_{f + 2}\t2\t3" for f in range(2)] + ["Person_1\t2\tPerson_2\t2", "Person_3\t1\tPerson_0\t4"]
    (root / "pairs.txt").write_text("\n".join(pairs) + "\n")
    unlabelled = root / "unlabelled"
    unlabelled.mkdir()
    for p in range(4):
        shutil.copy(people / f"Person_{p}" / f"Person_{p}_0001.jpg", unlabelled / f"u{p}.jpg")

    models = root / "models"
    make_model(models / "embedding" / "model.safetensors", size=32, seed=1)
    make_model(models / "scorer" / "model.safetensors", size=32, seed=2, kind="score")
    make_model(models / "lbp" / "model.safetensors", size=32, seed=3, backbone="lbp")
    make_model(models / "other.safetensors", size=40, seed=4, embedding_size=8)
    combine_models([models / "embedding", models / "other.safetensors"], models / "meta")
    for method, dim in (("l2", None), ("center", None), ("whiten", 4)):
        shutil.copytree(models / "embedding", models / method)
        normalize_model(models / method, people, method=method, dim=dim, progress=False)
    return {"root": root, "people": people, "models": models}


def _argv(consumer: str, model: Path, w: dict, out: Path, tta: str | None) -> list[list[str]]:
    """The command lines of one consumer (index+search and identify need an index first)."""
    people, root = w["people"], w["root"]
    a, b = str(people / "Person_0" / "Person_0_0001.jpg"), str(people / "Person_0" / "Person_0_0002.jpg")
    flag = ["--tta", tta] if tta else []
    index = ["index", str(model), str(people), "--out", str(out / "idx"), *flag]
    data = str(root / "scores.txt") if model.name == "scorer" else str(people)
    return {
        "eval": [["eval", str(model), data, "--root", str(people), "--out", str(out / "eval"), *flag]],
        "index+search": [index, ["search", str(out / "idx"), a, "-k", "3", "--json"]],
        "identify": [index, ["identify", str(out / "idx"), a, "--json"]],
        "verify-pair": [["verify", str(model), a, b, "--threshold", "0.8", "--json", *flag]],
        "verify-pairs": [["verify", str(model), "--pairs", str(root / "pairs.txt"), "--root", str(people),
                          "--out", str(out / "v"), "--json", *flag]],
        "fewshot": [["fewshot", str(model), str(people), "--ways", "3", "--episodes", "5", "--json", *flag]],
        "pseudolabel": [["pseudolabel", str(model), str(root / "unlabelled"), "--gallery", str(people),
                         "--threshold", "0.5", "--out", str(out / "p.csv"), *flag]],
        # explain has no --tta: with TTA it explains against the top match of an index embedded with it.
        "explain": ([index, ["explain", str(model), a, "--index", str(out / "idx"), "--out", str(out / "x.png")]]
                    if tta else [["explain", str(model), a, *([] if model.name == "scorer" else [b]),
                                  "--out", str(out / "x.png")]]),
        "normalize": [["normalize", str(model), str(people), "--method", "center", *flag]],
        "combine": [["combine", str(model), str(w["models"] / "embedding"), "--out", str(out / "meta"), *flag]],
        "embed": [["embed", str(model), str(people), "--out", str(out / "v.parquet"), *flag]],
        "export": [["export", str(model), "--onnx", str(out / "m.onnx"), *flag]],
    }[consumer]


@pytest.mark.parametrize("tta", [None, "flip"])
@pytest.mark.parametrize("consumer", CONSUMERS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_model_kind_with_every_consumer(world, kind, consumer, tta, tmp_path, capsys):
    model = tmp_path / kind
    shutil.copytree(world["models"] / kind, model)  # normalize rewrites the model: each case has its own copy
    refusal = REFUSED.get((kind, consumer, tta), REFUSED.get((kind, consumer)))
    for argv in _argv(consumer, model, world, tmp_path, tta):
        code = main(argv)
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        if code != 0:
            lines = captured.err.strip().splitlines()
            assert code == 2 and len(lines) == 1 and lines[0].startswith(f"finegrain {argv[0]}: error: "), lines
            assert refusal is not None, f"{kind} × {consumer} should work: {lines[0]}"
            assert refusal in lines[0]
            return
    assert refusal is None, f"{kind} × {consumer} should have been refused ({refusal})"
    if captured.out.strip().startswith(("{", "[")):
        report = json.loads(captured.out)
        if isinstance(report, dict) and "tta" in report and consumer != "combine":
            assert report["tta"] == ([tta] if tta else [])
