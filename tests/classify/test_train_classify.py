"""``--task classify`` end to end on small synthetic classes: train, predict, eval; errors name the flag."""

from __future__ import annotations

import json

import numpy as np
import pytest

from finegrain.classify import Classifier
from finegrain.cli import main
from finegrain.config import TrainConfig
from finegrain.errors import ConfigError
from finegrain.evaluate import evaluate_run
from finegrain.train.run import train

FAST = dict(task="classify", image_size=32, epochs=12, val=0, backbone="conv4", width=0.5, progress=False,
            workers=0, threads=2, batch_size=16)


@pytest.fixture(scope="module")
def classes(class_folder_factory, tmp_path_factory):
    return class_folder_factory(tmp_path_factory.mktemp("cls") / "images", classes=5, per_class=8, size=32)


@pytest.fixture(scope="module")
def linear_run(classes, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "linear"
    train(TrainConfig(data=str(classes), out=str(out), lr=3e-3, **{**FAST, "steps_per_epoch": 6}), quiet=True,
          tensorboard=False)
    return out


def test_classifier_learns_separable_classes_and_eval_prints_the_three_keys(linear_run, classes):
    metrics = evaluate_run(linear_run, classes, progress=False)
    assert {"top1", "top5", "mean_per_class_accuracy"} <= set(metrics)
    assert metrics["top1"] >= 0.9 and metrics["top5"] == 1.0
    assert (linear_run / "eval" / "confusion.png").exists()
    assert (linear_run / "eval" / "per_class.csv").read_text().splitlines()[0] == "class,images,accuracy,train_images"


def test_tta_on_a_classifier_is_a_named_error(linear_run, classes):
    with pytest.raises(ConfigError, match="--tta flip"):
        evaluate_run(linear_run, classes, tta="flip", progress=False)


def test_probabilities_sum_to_one_and_a_classifier_also_embeds(linear_run, classes):
    from finegrain.encoders import load_encoder

    classifier = Classifier.load(linear_run)
    predicted = classifier.predict_files(sorted(classes.rglob("*.png")))
    assert np.allclose(predicted.probabilities.sum(1), 1, atol=1e-5)
    vectors = load_encoder(linear_run).encode_files(sorted(classes.rglob("*.png")), progress=False).vectors
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)  # its pooled features, for retrieval


def test_predict_names_bad_files_and_still_predicts_the_good_ones(linear_run, classes, tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    good = sorted(classes.rglob("*.png"))[:2]
    rc = main(["predict", str(linear_run), str(good[0]), str(bad), str(good[1]), "--top", "3", "--json"])
    out, err = capsys.readouterr()
    assert rc == 2 and "broken.jpg" in err and "could not be classified" in err
    rows = json.loads(out)
    assert [r["path"] for r in rows] == [str(good[0]), str(good[1])]
    assert all(len(r["top"]) == 3 for r in rows)
    assert rows[0]["top"][0]["class"] == good[0].parent.name


def test_predict_on_an_embedding_model_is_a_named_error(tiny_model, images, capsys):
    assert main(["predict", str(tiny_model), str(images[0])]) == 2
    assert "not a classifier" in capsys.readouterr().err


def test_knn_head_puts_each_training_image_in_its_own_class(classes, tmp_path):
    out = tmp_path / "knn"
    train(TrainConfig(data=str(classes), out=str(out), head="knn", p=5, k=4, **{**FAST, "epochs": 2}),
          quiet=True, tensorboard=False)
    classifier = Classifier.load(out)
    paths = sorted(classes.rglob("*.png"))
    predicted = classifier.predict_files(paths)
    names = [classifier.classes[c] for c in predicted.probabilities.argmax(1)]
    assert names == [p.parent.name for p in paths]  # the nearest training image is the image itself
    # A normaliser stored later (finegrain normalize) does not move queries out of the gallery's space.
    from finegrain.encoders.edit import normalize_model

    normalize_model(out, classes, method="center")
    again = Classifier.load(out).predict_files(paths)
    assert np.allclose(again.probabilities, predicted.probabilities, atol=1e-5)


@pytest.mark.parametrize("method", ["class-balanced", "ldam-drw", "balanced-softmax", "tau-norm"])
def test_each_imbalance_method_trains_and_is_recorded(method, classes, tmp_path):
    out = tmp_path / method
    train(TrainConfig(data=str(classes), out=str(out), imbalance=method, **{**FAST, "epochs": 2}),
          quiet=True, tensorboard=False)
    info = Classifier.load(out).info
    assert info["imbalance"] == method and info["applied"]["method"] == method
    assert info["train_counts"] == [8] * 5


@pytest.mark.parametrize(("flags", "message"), [
    ({"imbalance": "ldam-drw", "head": "linear"}, "--head cosine"),
    ({"imbalance": "crt", "head": "knn"}, "--head knn"),
    ({"imbalance": "focal"}, "--imbalance must be one of"),
    ({"split_by": "class"}, "--split-by must be image"),
    ({"time_budget": "1m"}, "--time-budget"),
    ({"label_smoothing": 1.0}, "--label-smoothing"),
    ({"mixup": -1.0}, "--mixup"),
])
def test_bad_classify_flags_name_the_flag(flags, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(data="x", task="classify", **flags).validate()
