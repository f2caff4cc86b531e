"""Decoupled classifiers (Kang et al., ICLR 2020): after the representation is trained with plain sampling,
re-balance the classifier alone.

- cRT: a fresh classifier re-trained on the frozen backbone's pooled features with class-balanced sampling
  (a class uniformly, then one of its images); the backbone is not touched, so its weights stay bit-identical;
- τ-normalisation: each class's weight vector divided by its norm to the τ (bias dropped), τ chosen on the
  validation split (1 without one).

``choose`` compares none, cRT and τ-norm on the validation split (mean per-class accuracy) for ``auto``.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from finegrain.data import BalancedBinSampler
from finegrain.eval.classification import classification_metrics
from finegrain.losses.imbalance import tau_normalize
from finegrain.models import ClassifierModel

TAUS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
CRT_EPOCHS = 30


@torch.inference_mode()
def pooled_features(model: ClassifierModel, batches: list[torch.Tensor]) -> torch.Tensor:
    model.eval()
    return torch.cat([model.head.pool(model.backbone.forward_features(x)) for x in batches])


def _probabilities(model: ClassifierModel, pooled: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return torch.softmax(model.head.logits_from_pooled(pooled), dim=1).numpy()


def retrain_classifier(model: ClassifierModel, pooled: torch.Tensor, labels: np.ndarray, seed: int,
                       epochs: int = CRT_EPOCHS, batch: int = 128, lr: float = 1e-2) -> ClassifierModel:
    """cRT: a copy of ``model`` whose classifier is re-initialised and trained on ``pooled`` features with
    class-balanced sampling; only the classifier's parameters are optimised."""
    out = copy.deepcopy(model).eval()
    torch.manual_seed(seed)
    out.head.fc.reset_parameters()
    params = list(out.head.fc.parameters())
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=5e-4)
    draws = max(len(labels), batch)
    targets = torch.as_tensor(labels, dtype=torch.int64)
    for epoch in range(epochs):
        order = torch.as_tensor(list(BalancedBinSampler(labels, draws, seed=seed * 1000 + epoch)))
        for start in range(0, draws, batch):
            pick = order[start:start + batch]
            loss = F.cross_entropy(out.head.logits_from_pooled(pooled[pick]), targets[pick])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    for p in params:
        p.requires_grad_(True)
    return out


def tau_normalized(model: ClassifierModel, tau: float) -> ClassifierModel:
    out = copy.deepcopy(model).eval()
    with torch.no_grad():
        out.head.fc.weight.copy_(tau_normalize(out.head.fc.weight, tau))
        if out.head.fc.bias is not None:
            out.head.fc.bias.zero_()
    return out


def best_tau(model: ClassifierModel, val_pooled: torch.Tensor, val_labels: np.ndarray) -> tuple[float, float]:
    """(τ, its validation mean per-class accuracy), the smallest τ among equals."""
    scored = [(classification_metrics(_probabilities(tau_normalized(model, t), val_pooled), val_labels)
               ["mean_per_class_accuracy"], -t) for t in TAUS]
    accuracy, tau = max(scored)
    return -tau, accuracy


def decouple(model: ClassifierModel, method: str, train_pooled: torch.Tensor, train_labels: np.ndarray,
             val_pooled: torch.Tensor | None, val_labels: np.ndarray | None, seed: int
             ) -> tuple[ClassifierModel, dict]:
    """Apply ``method`` (none | crt | tau-norm | auto); returns the model and what was done (and, for auto, the
    validation accuracy of each candidate)."""
    validated = val_pooled is not None and len(val_labels)

    def val_accuracy(m: ClassifierModel) -> float | None:
        if not validated:
            return None
        return classification_metrics(_probabilities(m, val_pooled), val_labels)["mean_per_class_accuracy"]

    if method == "auto" and not validated:
        return model, {"method": "none", "rule": "no validation split to choose on: none"}
    candidates: dict[str, tuple[ClassifierModel, dict]] = {}
    if method in ("none", "auto"):
        candidates["none"] = (model, {})
    if method in ("crt", "auto"):
        candidates["crt"] = (retrain_classifier(model, train_pooled, train_labels, seed), {"crt_epochs": CRT_EPOCHS})
    if method in ("tau-norm", "auto"):
        tau = best_tau(model, val_pooled, val_labels)[0] if validated else 1.0
        candidates["tau-norm"] = (tau_normalized(model, tau), {"tau": tau})
    scores = {name: val_accuracy(m) for name, (m, _) in candidates.items()}
    # auto: the first (simplest) among equals
    chosen = max(candidates, key=lambda name: scores[name]) if method == "auto" else method
    chosen_model, detail = candidates[chosen]
    info = {"method": chosen, **detail}
    if method == "auto":
        info["validation"] = {k: None if v is None else round(v, 4) for k, v in scores.items()}
        info["rule"] = "the best validation mean per-class accuracy of none, crt and tau-norm"
    return chosen_model, info
