"""Each objective against a hand-written computation on tiny embeddings."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from finegrain.errors import ConfigError
from finegrain.losses import build_objective, default_margin


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    emb = F.normalize(torch.randn(8, 5, generator=g, dtype=torch.float64), dim=1)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2, 3])
    return emb, labels


def _pairs(labels):
    n = len(labels)
    pos = [(i, j) for i in range(n) for j in range(n) if i != j and labels[i] == labels[j]]
    neg = [(i, j) for i in range(n) for j in range(n) if labels[i] != labels[j]]
    return pos, neg


def _avg_nonzero(values):
    values = [v for v in values if v > 0]
    return sum(values) / len(values) if values else 0.0


def test_siamese_is_l1_hinge_embedding_loss(batch):
    emb, labels = batch
    margin = 1.7
    loss = build_objective("siamese", embedding_size=5, margin=margin)(emb, labels)
    pos, neg = _pairs(labels)
    hinge = torch.nn.HingeEmbeddingLoss(margin=margin, reduction="none")
    d_pos = torch.stack([(emb[i] - emb[j]).abs().sum() for i, j in pos])
    d_neg = torch.stack([(emb[i] - emb[j]).abs().sum() for i, j in neg])
    # The positive and negative halves are averaged separately so the many negatives do not drown
    # the few positives of a P×K batch.
    expected = hinge(d_pos, torch.ones_like(d_pos)).mean() + hinge(d_neg, -torch.ones_like(d_neg)).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_contrastive_matches_loop(batch):
    emb, labels = batch
    loss = build_objective("contrastive", embedding_size=5, margin=0.9)(emb, labels)
    pos, neg = _pairs(labels)
    d = torch.cdist(emb, emb)
    expected = _avg_nonzero([d[i, j].item() for i, j in pos]) + _avg_nonzero(
        [max(0.0, 0.9 - d[i, j].item()) for i, j in neg]
    )
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_triplet_all_triplets_matches_loop(batch):
    emb, labels = batch
    loss = build_objective("triplet", embedding_size=5, margin=0.3, miner="all")(emb, labels)
    d = torch.cdist(emb, emb)
    n = len(labels)
    values = [
        max(0.0, (d[a, p] - d[a, q] + 0.3).item())
        for a, p, q in itertools.product(range(n), repeat=3)
        if a != p and labels[a] == labels[p] and labels[a] != labels[q]
    ]
    assert loss.item() == pytest.approx(_avg_nonzero(values), rel=1e-6)


def test_triplet_batch_hard_matches_loop(batch):
    emb, labels = batch
    loss = build_objective("triplet", embedding_size=5, margin=0.3, miner="batch-hard")(emb, labels)
    d = torch.cdist(emb, emb)
    values = []
    for a in range(len(labels)):
        pos = [d[a, p] for p in range(len(labels)) if p != a and labels[p] == labels[a]]
        neg = [d[a, q] for q in range(len(labels)) if labels[q] != labels[a]]
        if pos:  # label 3 has a single image: no positive, no triplet
            values.append(max(0.0, (max(pos) - min(neg) + 0.3).item()))
    assert loss.item() == pytest.approx(_avg_nonzero(values), rel=1e-6)


def test_semi_hard_miner_keeps_only_semi_hard_triplets(batch):
    emb, labels = batch
    objective = build_objective("triplet", embedding_size=5, margin=0.3, miner="semi-hard")
    a, p, n = objective.miner(emb, labels)
    d = torch.cdist(emb, emb)
    assert len(a) > 0
    d_ap, d_an = d[a, p], d[a, n]
    assert torch.all(d_an > d_ap) and torch.all(d_an < d_ap + 0.3)
    assert torch.all(labels[a] == labels[p]) and torch.all(labels[a] != labels[n])


def test_arcface_matches_hand_computation(batch):
    emb, labels = batch
    objective = build_objective("arcface", embedding_size=5, num_classes=4, margin=28.6, scale=16)
    loss = objective(emb.float(), labels)
    W = F.normalize(objective.loss.W.detach(), dim=0)  # (embedding, classes)
    cos = (F.normalize(emb.float(), dim=1) @ W).clamp(-1, 1)
    theta = torch.acos(cos[torch.arange(8), labels])
    logits = cos.clone()
    logits[torch.arange(8), labels] = torch.cos(theta + math.radians(28.6))
    expected = F.cross_entropy(16 * logits, labels)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)
    assert objective.parameters() and objective.parameters()[0] is objective.loss.W


def test_losses_give_gradients(batch):
    emb, labels = batch
    for name in ("contrastive", "siamese", "triplet"):
        x = emb.clone().requires_grad_(True)
        build_objective(name, embedding_size=5)(x, labels).backward()
        assert x.grad is not None and x.grad.abs().sum() > 0, name


def test_margin_setter_reaches_loss_and_miner():
    objective = build_objective("triplet", embedding_size=8, margin=0.1)
    objective.margin = 0.4
    assert objective.loss.margin == 0.4 and objective.miner.margin == 0.4
    arc = build_objective("arcface", embedding_size=8, num_classes=3)
    arc.margin = 10.0
    assert arc.loss.margin == pytest.approx(math.radians(10.0))
    assert arc.margin == pytest.approx(10.0)


def test_siamese_default_margin_scales_with_dimension():
    assert default_margin("siamese", 128) == pytest.approx(0.5 * math.sqrt(4 * 128 / math.pi))
    assert default_margin("siamese", 512) > default_margin("siamese", 128)


@pytest.mark.parametrize(
    "kwargs, flag",
    [
        ({"loss": "hinge"}, "--loss"),
        ({"loss": "triplet", "miner": "hardest"}, "--miner"),
        ({"loss": "triplet", "margin": -1}, "--margin"),
        ({"loss": "arcface", "num_classes": 1}, "arcface"),
    ],
)
def test_bad_options_name_the_flag(kwargs, flag):
    with pytest.raises(ConfigError, match=flag):
        build_objective(embedding_size=4, **kwargs)
