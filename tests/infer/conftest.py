from __future__ import annotations

import numpy as np
import pytest

from finegrain.infer.embedder import Preprocess
from finegrain.models import create_model, save_model


def save_tiny_model(path, size=32, seed=0, embedding_size=16):
    import torch

    torch.manual_seed(seed)
    model = create_model("conv4", embedding_size=embedding_size, widths=[8, 8, 8, 8])
    save_model(model, path, extra={"task": "embed", "preprocess": Preprocess(size).to_dict()})
    return path


@pytest.fixture
def tiny_model(tmp_path):
    return save_tiny_model(tmp_path / "run" / "model.pt")


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(12, 32, 32, 3), dtype=np.uint8)


@pytest.fixture
def make_model():
    """``make_model(path, size=32, seed=0, embedding_size=16)`` saves a tiny conv4 embedding model."""
    return save_tiny_model
