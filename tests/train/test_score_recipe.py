"""The scoring recipes end to end on a small synthetic rated set: staged and direct, resume, CLI."""

from __future__ import annotations

import json

import pytest
import torch

from finegrain.artifact import read_artifact
from finegrain.cli import main
from finegrain.config import TrainConfig
from finegrain.encoders import load_encoder
from finegrain.eval.regression import regression_metrics
from finegrain.models import EmbeddingModel, ScoringModel, load_model
from finegrain.train.run import train
from finegrain.train.score_recipe import siamese_config
from finegrain.train.single import prepare_splits

SMALL = dict(task="score", recipe="staged", backbone="conv4", image_size=16, width=0.25, p=4, k=4, batch_size=12,
             lr=3e-3, epochs=3, pretrain_epochs=2, val=0.2, workers=0, threads=1, progress=False, augment="none")


def _cfg(data, out, **kw) -> TrainConfig:
    return TrainConfig(data=str(data), out=str(out), **{**SMALL, **kw})


def test_staged_recipe_pretrains_widens_and_fine_tunes(tmp_path, score_list_factory):
    scores = score_list_factory(tmp_path / "rated", n=500, size=16)  # 100 images to validate on
    result = train(_cfg(scores, tmp_path / "run", widen=2.0), quiet=True, tensorboard=False)
    pre, _ = load_model(tmp_path / "run" / "pretrain" / "model.safetensors")
    model, manifest = load_model(tmp_path / "run" / "model.safetensors")
    assert isinstance(pre, EmbeddingModel) and isinstance(model, ScoringModel)
    # Stage 2 doubled every width of the pre-trained backbone.
    assert model.backbone.config()["widths"] == [2 * w for w in pre.backbone.config()["widths"]]
    assert manifest["kind"] == "score" and manifest["preprocessing"]["image_size"] == 16
    assert {"val_pearson", "val_mae", "val_rmse", "val_spearman"} <= set(result.final)


def test_direct_recipe_learns_the_synthetic_score(score_list, tmp_path):
    cfg = _cfg(score_list, tmp_path / "run", recipe="direct", epochs=25, width=0.5, balance=False, val=0.0)
    train(cfg, quiet=True, tensorboard=False)
    scorer = load_encoder(tmp_path / "run", need="score")
    assert not (tmp_path / "run" / "pretrain").exists()
    lines = [line.split() for line in score_list.read_text().splitlines()]
    paths = [score_list.parent / name for name, _ in lines]
    encoded = scorer.encode_files(paths, progress=False)
    scores = encoded.vectors
    assert len(encoded.paths) == len(paths) and not encoded.problems
    true = torch.tensor([float(s) for _, s in lines])
    assert torch.corrcoef(torch.stack([torch.from_numpy(scores), true]))[0, 1] > 0.8


def test_default_tta_is_chosen_on_the_validation_split(score_list_factory, tmp_path):
    scores = score_list_factory(tmp_path / "rated", n=500, size=16)  # 100 to validate on
    cfg = _cfg(scores, tmp_path / "run", recipe="direct", epochs=4)
    train(cfg, quiet=True, tensorboard=False)
    _, manifest = load_model(tmp_path / "run" / "model.safetensors")
    stored = manifest["provenance"]["tta_choice"]["val_pearson"]
    # The stored figures are the validation split's, each recomputed here with the model file.
    _, val = prepare_splits(cfg, quiet=True)
    for tta in ("none", "flip"):
        encoder = load_encoder(tmp_path / "run", need="score", tta=tta)
        assert regression_metrics(encoder.encode_array(val.images.array()), val.scores)["pearson"] == \
            pytest.approx(stored[tta], abs=1e-4)
    assert manifest["tta"] == (["flip"] if stored["flip"] > stored["none"] else [])
    assert list(load_encoder(tmp_path / "run", need="score").tta) == manifest["tta"]  # the model's default

    # No mirror TTA for data a mirror changes, nor without a validation split to choose on.
    for name, flags in {"no-flip": {"flip": False}, "no-val": {"val": 0.0}}.items():
        train(_cfg(scores, tmp_path / name, recipe="direct", epochs=1, **flags), quiet=True, tensorboard=False)
        _, manifest = load_model(tmp_path / name / "model.safetensors")
        assert manifest["tta"] == [] and "tta_choice" not in manifest["provenance"]


def test_a_scorer_logs_its_validation_standard_error_and_keeps_the_latest_epoch_within_it(score_list_factory,
                                                                                          tmp_path):
    scores = score_list_factory(tmp_path / "rated", n=500, size=16)  # 100 to validate on
    cfg = _cfg(scores, tmp_path / "run", recipe="direct", epochs=6, patience=0)
    train(cfg, quiet=True, tensorboard=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    for row in rows:  # (1 - r²) / √(n - 1) on the 100 held-out images
        assert row["val_pearson_se"] == pytest.approx((1 - row["val_pearson"] ** 2) / 99 ** 0.5)
    # The epoch kept: the latest whose Pearson is within its standard error of the best before it.
    kept = max(e for e, row in enumerate(rows)
               if row["val_pearson"] >= max(r["val_pearson"] for r in rows[: e + 1]) - row["val_pearson_se"])
    assert read_artifact(tmp_path / "run" / "checkpoint.safetensors").manifest["best"]["epoch"] == kept
    assert max(e for e, row in enumerate(rows) if row.get("best")) == kept


def test_siamese_stage_uses_every_bin_per_batch_and_keeps_the_batch_size():
    cfg = TrainConfig(data="x", task="score", p=16, k=4).validate()
    stage1 = siamese_config(cfg, num_bins=5)
    assert (stage1.loss, stage1.task, stage1.p, stage1.k, stage1.epochs) == ("siamese", "embed", 5, 12, 10)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--split-by", "class"], "--split-by must be image"),
        (["--grow", "shrink"], "--grow: unknown step"),
        (["--widen", "0.5"], "--widen"),
        (["--activation", "tanh"], "--activation"),
        (["--recipe", "fancy"], "--recipe"),
    ],
)
def test_bad_score_flags_are_one_line_errors(score_list, tmp_path, capsys, flags, message):
    assert main(["train", str(score_list), "--task", "score", "--out", str(tmp_path / "r"), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_score_and_eval_on_a_trained_scorer(score_list, tmp_path, capsys, make_model):
    run = tmp_path / "run"
    train(_cfg(score_list, run, pretrain_epochs=0, widen=1.0, epochs=2), quiet=True, tensorboard=False)
    capsys.readouterr()
    images = [str(score_list.parent / "0.png"), str(score_list.parent / "1.png")]
    assert main(["score", str(run), *images, "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert [s["path"] for s in scored] == images and all(isinstance(s["score"], float) for s in scored)

    assert main(["score", str(run), str(score_list.parent)]) == 0  # a folder: every image in it
    assert len(capsys.readouterr().out.splitlines()) == 60

    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert main(["score", str(run), images[0], str(tmp_path / "broken.png")]) == 2
    captured = capsys.readouterr()
    assert images[0] in captured.out and "broken.png: not an image" in captured.err

    assert main(["eval", str(run), str(score_list), "--out", str(tmp_path / "ev")]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"pearson", "spearman", "mae", "rmse"} <= set(metrics) and metrics["images"] == 60
    assert (tmp_path / "ev" / "scatter.png").stat().st_size > 1000

    # Scoring with an embedding model is a clear error, not a crash.
    embedder = make_model(tmp_path / "embed.safetensors", size=16)
    assert main(["score", str(embedder), images[0]]) == 2
    assert "embedding model" in capsys.readouterr().err


ARGS = ["--task", "score", "--recipe", "staged", "--backbone", "conv4", "--image-size", "16", "--width", "0.25",
        "--p", "4", "--k", "4", "--batch-size", "8", "--steps-per-epoch", "40", "--pretrain-epochs", "2",
        "--epochs", "3", "--val", "0", "--workers", "0", "--threads", "1", "--no-progress", "--augment", "light",
        "--seed", "5"]


@pytest.mark.slow
def test_staged_run_killed_in_fine_tuning_resumes_to_the_same_weights(score_list, tmp_path, train_cli,
                                                                      kill_at_first_checkpoint):
    def _train_cli(data, out, *extra, wait=True):
        return train_cli(data, out, *ARGS, *extra, wait=wait)

    _train_cli(score_list, tmp_path / "straight")
    killed = tmp_path / "killed"
    kill_at_first_checkpoint(_train_cli(score_list, killed, wait=False), killed)  # stage 3's first checkpoint
    _train_cli(score_list, killed, "--resume")
    straight = read_artifact(tmp_path / "straight" / "model.safetensors")
    resumed = read_artifact(killed / "model.safetensors")
    assert straight.manifest["architecture"] == resumed.manifest["architecture"]
    assert straight.manifest["fingerprint"] == resumed.manifest["fingerprint"]
    for key, value in straight.tensors.items():
        assert torch.equal(value, resumed.tensors[key]), key


def test_staged_recipe_with_a_fixed_descriptor_says_why_not(score_list, tmp_path, capsys):
    """lbp has no convolutions: nothing to pre-train, grow or widen. Said in one line; direct works."""
    argv = ["train", str(score_list), "--task", "score", "--backbone", "lbp", "--image-size", "32", "--epochs", "1",
            "--no-progress", "--threads", "1", "--workers", "0"]
    assert main([*argv, "--out", str(tmp_path / "staged"), "--recipe", "staged"]) == 2
    err = capsys.readouterr().err
    assert "--recipe direct" in err and "lbp" in err and len(err.strip().splitlines()) == 1
    assert main([*argv, "--out", str(tmp_path / "grow"), "--recipe", "direct", "--grow", "widen:1.5"]) == 2
    assert "--grow" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "direct"), "--recipe", "direct"]) == 0
    assert load_encoder(tmp_path / "direct", need="score").output_size == 1


def test_a_scorer_defaults_to_average_pooling_without_dropout_and_staged_keeps_its_dropout():
    direct = TrainConfig(data="x", task="score").validate()
    assert (direct.pooling, direct.head_dropout) == ("avg", 0.0)
    assert direct.widths == "24,48,96,192"
    staged = TrainConfig(data="x", task="score", recipe="staged").validate()
    assert (staged.pooling, staged.head_dropout) == ("avg", 0.5)
    assert TrainConfig(data="x").validate().pooling == "gem"
    chosen = TrainConfig(data="x", task="score", pooling="gem", head_dropout=0.3).validate()
    assert (chosen.pooling, chosen.head_dropout) == ("gem", 0.3)
