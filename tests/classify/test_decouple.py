"""Decoupled classifiers: cRT re-trains the classifier alone; τ-normalisation rescales its weight norms."""

import numpy as np
import torch

from finegrain.models import ClassifierHead, ClassifierModel, create_backbone
from finegrain.train.decouple import decouple, retrain_classifier, tau_normalized


def _model(classes: int = 4, seed: int = 0) -> ClassifierModel:
    torch.manual_seed(seed)
    backbone = create_backbone("conv4", width_multiplier=0.25)
    return ClassifierModel(backbone, ClassifierHead(backbone.num_features, classes)).eval()


def _long_tailed_features(seed: int = 0):
    """Pooled features of 4 classes with 200, 50, 10 and 3 images around separated centres."""
    rng = np.random.default_rng(seed)
    counts = [200, 50, 10, 3]
    centres = rng.normal(0, 1, (4, 16)) * 2
    labels = np.repeat(np.arange(4), counts)
    return torch.tensor(centres[labels] + rng.normal(0, 1.0, (len(labels), 16)), dtype=torch.float32), labels


def test_crt_leaves_the_backbone_bit_identical_and_retrains_the_classifier():
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pooled = torch.randn(40, model.head.embedding_size)
    labels = np.arange(40) % 4
    out = retrain_classifier(model, pooled, labels, seed=0, epochs=3)
    for name, value in out.backbone.state_dict().items():
        assert torch.equal(value, before[f"backbone.{name}"]), name
    assert not torch.equal(out.head.fc.weight, before["head.fc.weight"])
    for name, value in model.state_dict().items():  # the input model is untouched
        assert torch.equal(value, before[name]), name


def test_crt_balances_the_tail_on_long_tailed_features():
    pooled, labels = _long_tailed_features()
    torch.manual_seed(0)
    model = _model()
    model.head.fc = torch.nn.Linear(16, 4)  # the classifier reads these 16-dimensional features
    balanced = retrain_classifier(model, pooled, labels, seed=0, epochs=20)
    predicted = balanced.head.logits_from_pooled(pooled).argmax(1).numpy()
    assert (predicted[labels == 3] == 3).mean() >= 2 / 3


def test_tau_normalisation_rescales_each_class_weight_norm_and_drops_the_bias():
    model = _model()
    norms = model.head.fc.weight.norm(dim=1)
    for tau in (0.0, 0.5, 1.0):
        out = tau_normalized(model, tau)
        assert torch.allclose(out.head.fc.weight.norm(dim=1), norms ** (1 - tau), rtol=1e-5)
        assert torch.count_nonzero(out.head.fc.bias) == 0


def test_auto_chooses_the_best_on_validation_and_says_why():
    pooled, labels = _long_tailed_features(seed=1)
    val_pooled, val_labels = _long_tailed_features(seed=1)[0][::4], labels[::4]
    model = _model()
    model.head.fc = torch.nn.Linear(16, 4)
    model, info = decouple(model, "auto", pooled, labels, val_pooled, val_labels, seed=0)
    assert set(info["validation"]) == {"none", "crt", "tau-norm"}
    assert info["validation"][info["method"]] == max(info["validation"].values())
    assert "tau" not in info or 0 <= info["tau"] <= 2
    no_val_model, no_val = decouple(model, "auto", pooled, labels, None, None, seed=0)
    assert no_val["method"] == "none" and no_val_model is model
