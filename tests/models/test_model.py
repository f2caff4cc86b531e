import pytest
import torch

from finegrain.errors import ConfigError, FinegrainError
from finegrain.models import (
    EmbeddingModel,
    create_model,
    list_backbones,
    load_model,
    model_from_config,
    save_model,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _trained_a_little(model: EmbeddingModel) -> EmbeddingModel:
    # One train-mode pass moves batch-norm running stats, so a lost buffer would show up in the outputs.
    model.train()(torch.randn(4, 3, 32, 32))
    return model.eval()


@pytest.mark.parametrize("name", list_backbones())
def test_create_model_gives_unit_norm_embeddings(name):
    model = create_model(name, embedding_size=32)
    emb = model(torch.randn(3, 3, 32, 32))
    assert emb.shape == (3, 32)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(model.embed(torch.ones(1, 3, 32, 32)), model(torch.ones(1, 3, 32, 32)))


def test_create_model_passes_backbone_options_through():
    model = create_model("conv4", embedding_size=16, pooling="avg", widths=[8, 8, 16, 24], activation="elu")
    cfg = model.config()
    assert cfg["backbone"]["widths"] == [8, 8, 16, 24]
    assert cfg["backbone"]["activation"] == "elu"
    assert cfg["head"]["in_features"] == 24
    assert cfg["head"]["pooling"] == "avg"
    assert cfg["embedding_size"] == 16


def test_create_model_with_unknown_backbone_names_the_known_ones():
    with pytest.raises(ConfigError) as err:
        create_model("efficientnet")
    for name in list_backbones():
        assert name in str(err.value)


def test_model_from_config_rebuilds_the_same_function():
    model = _trained_a_little(create_model("resnet", embedding_size=16, depths=[1, 2, 1, 1]))
    rebuilt = model_from_config(model.config())
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))


def test_model_from_config_rejects_inconsistent_configs():
    cfg = create_model("conv4").config()
    cfg["head"]["in_features"] = 99
    with pytest.raises(ConfigError, match="in_features"):
        model_from_config(cfg)
    with pytest.raises(ConfigError):
        model_from_config({"backbone": "conv4"})


@pytest.mark.parametrize("name", list_backbones())
def test_save_load_round_trip(tmp_path, name):
    model = _trained_a_little(create_model(name, embedding_size=16))
    path = tmp_path / "ckpt" / "model.pt"
    save_model(model, path, extra={"epoch": 3, "classes": ["a", "b"], "metrics": {"recall@1": 0.5}})
    assert not path.with_suffix(".tmp").exists()

    loaded, extra = load_model(path)
    assert extra == {"epoch": 3, "classes": ["a", "b"], "metrics": {"recall@1": 0.5}}
    assert not loaded.training
    assert loaded.config() == model.config()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_saved_file_is_plain_data(tmp_path):
    path = tmp_path / "model.pt"
    save_model(create_model("conv4"), path)
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "finegrain-model"
    assert payload["version"] == 1
    assert payload["extra"] == {}
    assert payload["model_config"]["backbone"]["name"] == "conv4"
    assert all(isinstance(v, torch.Tensor) for v in payload["state_dict"].values())


def test_extra_that_weights_only_load_would_refuse_is_rejected_at_save(tmp_path):
    with pytest.raises(ConfigError, match="extra"):
        save_model(create_model("conv4"), tmp_path / "model.pt", extra={"path": tmp_path})


def test_loading_garbage_names_the_file(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(FinegrainError, match="garbage.pt"):
        load_model(path)


def test_loading_a_foreign_torch_file_names_the_file(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(FinegrainError, match="foreign.pt"):
        load_model(path)


def test_loading_a_missing_file_names_it(tmp_path):
    with pytest.raises(FinegrainError, match="nothing.pt"):
        load_model(tmp_path / "nothing.pt")
