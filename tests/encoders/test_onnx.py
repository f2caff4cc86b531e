"""``finegrain export --onnx``: ONNX Runtime on the exported graph gives what the encoder gives."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime
import pytest

from finegrain.cli import main
from finegrain.encoders import load_encoder
from finegrain.encoders.edit import combine_models, normalize_model


def _runtime(path, images: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = images.astype(np.float32).transpose(0, 3, 1, 2) / 255.0  # RGB in [0, 1], N×3×S×S
    return session.run(None, {"images": x})[0]


@pytest.mark.parametrize("case", ["embedding", "embedding+flip", "whitened", "scorer+flip", "scorer-std", "meta"])
def test_onnx_runtime_matches_the_encoder(case, tmp_path, make_model, class_folder, images, capsys):
    model = make_model(tmp_path / "m" / "model.safetensors", kind="score" if case.startswith("scorer") else "embedding",
                       input_norm="image" if case == "scorer-std" else "fixed")  # --input-norm image travels too
    if case == "whitened":
        normalize_model(model, class_folder, method="whiten", dim=5, progress=False)
    if case == "meta":
        combine_models([model, make_model(tmp_path / "b.safetensors", seed=7, embedding_size=8)], tmp_path / "meta")
        model = tmp_path / "meta"
    tta = "flip" if case.endswith("+flip") else None
    out = tmp_path / "model.onnx"
    assert main(["export", str(model), "--onnx", str(out), *(["--tta", tta] if tta else [])]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["max_abs_difference"] <= 1e-4
    expected = load_encoder(model, tta=tta).encode_array(images)
    got = _runtime(out, images)
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-4


def test_what_cannot_be_exported_is_said(tmp_path, make_model, capsys):
    model = make_model(tmp_path / "m.safetensors")
    assert main(["export", str(model), "--onnx", str(tmp_path / "x.onnx"), "--tta", "crops"]) == 2
    assert "only flip" in capsys.readouterr().err and not (tmp_path / "x.onnx").exists()
