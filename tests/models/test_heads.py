import pytest
import torch
import torch.nn.functional as F

from finegrain.errors import ConfigError
from finegrain.models import EmbeddingHead, GeM


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_gem_with_p_1_is_average_pooling():
    x = torch.rand(3, 8, 5, 7) + 0.01
    pooled = GeM(p=1.0)(x)
    assert pooled.shape == (3, 8, 1, 1)
    torch.testing.assert_close(pooled, F.adaptive_avg_pool2d(x, 1))


def test_gem_with_large_p_approaches_max_pooling():
    x = torch.rand(2, 4, 3, 3) + 0.5
    pooled = GeM(p=60.0)(x).flatten(1)
    peak = x.amax(dim=(-2, -1))
    # Generalized mean lies between the average and the max, and near the max for large p.
    assert (pooled <= peak + 1e-5).all()
    assert (pooled > 0.95 * peak).all()


def test_gem_p_is_learnable():
    gem = GeM(p=3.0)
    assert any(p is gem.p for p in gem.parameters())
    gem(torch.rand(2, 4, 3, 3)).sum().backward()
    assert gem.p.grad is not None and gem.p.grad.abs() > 0


def test_frozen_gem_p_is_a_buffer_kept_in_the_state_dict():
    gem = GeM(p=2.5, learnable=False)
    assert list(gem.parameters()) == []
    assert float(gem.state_dict()["p"]) == 2.5


def test_gem_handles_negative_activations():
    # ELU maps can be negative; GeM clamps them rather than producing NaN from a fractional power.
    out = GeM(p=3.0)(torch.randn(2, 4, 3, 3) - 1.0)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("pooling", ["avg", "gem"])
def test_embeddings_have_unit_norm(pooling):
    head = EmbeddingHead(16, embedding_size=10, pooling=pooling)
    emb = head(torch.randn(5, 16, 3, 3))
    assert emb.shape == (5, 10)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(5))


def test_pool_returns_the_vector_before_the_linear_layer():
    head = EmbeddingHead(16, embedding_size=10, pooling="avg")
    features = torch.randn(5, 16, 3, 3)
    pooled = head.pool(features)
    torch.testing.assert_close(pooled, features.mean(dim=(-2, -1)))
    torch.testing.assert_close(head(features), F.normalize(head.fc(pooled), dim=1))


def test_head_config_rebuilds_the_head():
    head = EmbeddingHead(16, embedding_size=10, pooling="gem", dropout=0.1)
    cfg = head.config()
    assert cfg == {
        "in_features": 16,
        "embedding_size": 10,
        "pooling": "gem",
        "dropout": 0.1,
        "gem_p": 3.0,
        "gem_learnable": True,
    }
    EmbeddingHead(**cfg).load_state_dict(head.state_dict())


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"pooling": "max"}, "pooling"),
        ({"embedding_size": 0}, "embedding_size"),
        ({"dropout": 1.0}, "dropout"),
        ({"pooling": "gem", "gem_p": 0.0}, "gem_p"),
    ],
)
def test_bad_head_options_are_named(options, param):
    with pytest.raises(ConfigError, match=param):
        EmbeddingHead(16, **options)
