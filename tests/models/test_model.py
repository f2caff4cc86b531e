import json

import pytest
import torch

from finegrain.artifact import read_manifest
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


PRE = {"image_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3}


@pytest.mark.parametrize("name", list_backbones())
def test_save_load_round_trip(tmp_path, name):
    model = _trained_a_little(create_model(name, embedding_size=16))
    path = tmp_path / "ckpt" / "model.safetensors"
    save_model(model, path, preprocessing=PRE, provenance={"epoch": 3, "classes": ["a", "b"]})
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]  # no temporary file left behind

    loaded, manifest = load_model(path)
    assert manifest["provenance"] == {"epoch": 3, "classes": ["a", "b"]} and manifest["kind"] == "embedding"
    assert not loaded.training
    assert loaded.config() == model.config()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_saved_file_is_safetensors_with_a_manifest(tmp_path):
    from safetensors import safe_open

    path = tmp_path / "model.safetensors"
    save_model(create_model("conv4"), path, preprocessing=PRE)
    with safe_open(str(path), framework="pt") as f:
        manifest = json.loads(f.metadata()["finegrain"])
        names = list(f.keys())
    assert manifest["format"] == "finegrain" and manifest["version"] == 2 and manifest["kind"] == "embedding"
    assert manifest["architecture"]["backbone"]["name"] == "conv4" and manifest["preprocessing"] == PRE
    assert len(manifest["fingerprint"]) == 64 and all(n.startswith("model.") for n in names)


def test_the_fingerprint_follows_the_weights_not_the_provenance(tmp_path):
    model = create_model("conv4")
    a = save_model(model, tmp_path / "a.safetensors", preprocessing=PRE, provenance={"note": "a"})
    b = save_model(model, tmp_path / "b.safetensors", preprocessing=PRE, provenance={"note": "b"})
    with torch.no_grad():
        model.head.fc.bias[0] += 1e-3
    c = save_model(model, tmp_path / "c.safetensors", preprocessing=PRE)
    prints = [read_manifest(p)["fingerprint"] for p in (a, b, c)]
    assert prints[0] == prints[1] != prints[2]


def test_a_manifest_json_cannot_hold_objects(tmp_path):
    with pytest.raises(TypeError):
        save_model(create_model("conv4"), tmp_path / "model.safetensors", preprocessing=PRE, provenance={"p": object()})


def test_loading_garbage_names_the_file(tmp_path):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(FinegrainError, match="garbage.safetensors"):
        load_model(path)


def test_loading_an_old_torch_file_says_how_to_convert_it(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(FinegrainError, match="finegrain convert"):
        load_model(path)


def test_loading_a_missing_file_names_it(tmp_path):
    with pytest.raises(FinegrainError, match="nothing.safetensors"):
        load_model(tmp_path / "nothing.safetensors")
