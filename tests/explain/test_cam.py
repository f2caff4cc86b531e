"""Grad-CAM explanations: the maths against a hand-written Grad-CAM, locality, no side effects, the command."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from finegrain.cli.explain import explain_command as cmd_explain
from finegrain.encoders import Preprocess
from finegrain.errors import DataError, FinegrainError
from finegrain.explain import explanation_figure, grad_cam, overlay, score_cam, similarity_cam
from finegrain.models import EmbeddingHead, RegressionHead, ScoringModel, create_backbone, create_model, save_model


def _tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    return create_model("conv4", embedding_size=16, widths=[8, 8, 8, 8]).eval()


def _tiny_scorer(seed: int = 0) -> ScoringModel:
    torch.manual_seed(seed)
    return ScoringModel(create_backbone("conv4", widths=[8, 8, 8, 8]), RegressionHead(8)).eval()


def _images(*shapes, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(1, 3, h, w, generator=g) for h, w in shapes]


def _reference_cam(features: torch.Tensor, target_of_features, size) -> torch.Tensor:
    """Grad-CAM written out independently: leaf features, autograd.grad, channel weights, ReLU, upsample, scale."""
    leaf = features.detach().double().requires_grad_(True)
    (grad,) = torch.autograd.grad(target_of_features(leaf), [leaf])
    alpha = grad.sum(dim=(2, 3)) / (grad.shape[2] * grad.shape[3])  # [1, C]
    cam = torch.clamp(torch.einsum("bc,bchw->bhw", alpha, leaf.detach()), min=0)[:, None]
    cam = F.interpolate(cam, size=tuple(size), mode="bilinear", align_corners=False)[0, 0]
    return cam / cam.max() if cam.max() > 0 else cam


def test_similarity_cam_shapes_range_and_similarity():
    model = _tiny_model()
    a, b = _images((64, 64), (48, 40))
    cam_a, cam_b, similarity = similarity_cam(model, a, b)
    assert cam_a.shape == (64, 64) and cam_b.shape == (48, 40)
    for cam in (cam_a, cam_b):
        assert cam.dtype == torch.float32 and torch.isfinite(cam).all()
        assert cam.min() >= 0 and cam.max() <= 1
    with torch.no_grad():
        expected = float((model(a) * model(b)).sum())
    assert similarity == pytest.approx(expected, abs=1e-5)


def test_similarity_cam_matches_hand_written_grad_cam():
    model = _tiny_model(seed=3).double()
    a, b = (x.double() for x in _images((64, 64), (64, 64), seed=1))
    cam_a, cam_b, _ = similarity_cam(model, a, b)
    with torch.no_grad():
        fa, fb = model.backbone.forward_features(a), model.backbone.forward_features(b)
    head = model.head.double()
    ref_a = _reference_cam(fa, lambda f: F.cosine_similarity(head(f), head(fb), dim=1).sum(), (64, 64))
    ref_b = _reference_cam(fb, lambda f: F.cosine_similarity(head(fa), head(f), dim=1).sum(), (64, 64))
    assert ref_a.max() > 0 and ref_b.max() > 0  # a meaningful comparison, not two zero maps
    torch.testing.assert_close(cam_a.double(), ref_a, atol=1e-5, rtol=0)
    torch.testing.assert_close(cam_b.double(), ref_b, atol=1e-5, rtol=0)


def test_score_cam_matches_hand_written_grad_cam():
    model = _tiny_scorer(seed=2).double()
    with torch.no_grad():  # positive weights on ReLU features: some evidence raises the score, the map is not empty
        model.head.fc.weight.abs_()
    (x,) = (t.double() for t in _images((64, 48), seed=4))
    cam, score = score_cam(model, x)
    with torch.no_grad():
        features = model.backbone.forward_features(x)
        assert score == pytest.approx(float(model(x)[0]), abs=1e-6)
    ref = _reference_cam(features, lambda f: model.head(f).sum(), (64, 48))
    assert cam.shape == (64, 48) and ref.max() > 0
    torch.testing.assert_close(cam.double(), ref, atol=1e-5, rtol=0)


class _LeftHalfBackbone(nn.Module):
    """Per-pixel features pooled 4×4, zeroed on the right half: similarity depends only on the left half."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        features = F.avg_pool2d(F.relu(self.conv(x)), 4)
        mask = torch.zeros_like(features)
        mask[..., : features.shape[-1] // 2] = 1.0
        return features * mask


class _LeftHalfModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = _LeftHalfBackbone()
        self.head = EmbeddingHead(8, 16, pooling="avg")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone.forward_features(x))


def test_cam_mass_lies_where_the_similarity_comes_from():
    torch.manual_seed(0)
    model = _LeftHalfModel().eval()
    a, b = _images((64, 64), (64, 64), seed=5)
    b_changed = b.clone()
    # Columns 33 on lie outside every kept feature cell (and its 3×3 conv's reach).
    b_changed[..., 33:] = torch.randn(1, 3, 64, 31, generator=torch.Generator().manual_seed(9))
    cam_a, cam_b, similarity = similarity_cam(model, a, b)
    assert similarity_cam(model, a, b_changed)[2] == pytest.approx(similarity, abs=1e-6)  # the right half is unseen
    for cam in (cam_a, cam_b):
        left, right = float(cam[:, :32].sum()), float(cam[:, 32:].sum())
        assert left > 0 and right < 0.05 * left


def test_zero_map_stays_zero_without_nan():
    features = torch.rand(1, 4, 3, 3)
    cam = grad_cam(features, -torch.ones(1, 4, 3, 3), (12, 12))  # negative weights: ReLU leaves nothing
    assert cam.shape == (12, 12) and torch.equal(cam, torch.zeros(12, 12))


def test_weights_mode_and_grads_untouched():
    model = _tiny_model(seed=1).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a, b = _images((32, 32), (32, 32), seed=2)
    with torch.no_grad():  # gradients are switched on inside, whatever the caller's mode
        similarity_cam(model, a, b)
    with torch.inference_mode():
        similarity_cam(model, a, b)
    assert model.training  # the caller's mode comes back
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats included: eval mode inside
    assert all(p.grad is None for p in model.parameters())
    scorer = _tiny_scorer()
    before = {k: v.clone() for k, v in scorer.state_dict().items()}
    score_cam(scorer, a)
    assert all(torch.equal(before[k], v) for k, v in scorer.state_dict().items())
    assert all(p.grad is None for p in scorer.parameters())


def test_wrong_model_kind_is_a_clear_error():
    a, b = _images((32, 32), (32, 32))
    with pytest.raises(FinegrainError, match="score_cam"):
        similarity_cam(_tiny_scorer(), a, b)
    with pytest.raises(FinegrainError, match="similarity_cam"):
        score_cam(_tiny_model(), a)
    with pytest.raises(FinegrainError, match=r"\[1, 3, H, W\]"):
        score_cam(_tiny_scorer(), torch.zeros(2, 3, 32, 32))


def test_overlay_and_figure():
    image = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    cam = torch.zeros(8, 8)
    cam[2:4, 2:4] = 1.0
    blended = overlay(image, cam)
    assert blended.shape == image.shape and blended.dtype == np.uint8
    assert np.array_equal(overlay(image, cam, alpha=0.0), image)
    hot = overlay(np.zeros((8, 8, 3), np.uint8), cam, alpha=1.0)
    assert hot[3, 3, 0] > hot[3, 3, 2] and hot[7, 7, 2] > hot[7, 7, 0]  # JET: hot is red, cold is blue (RGB)
    figure = explanation_figure([image, image[:, :40]], [cam, cam], "similarity 0.500", height=100)
    assert figure.dtype == np.uint8 and figure.shape[0] == 132 and figure.shape[1] == 150 + 4 + 100


# --- the command ------------------------------------------------------------------------------------------


def _write_png(path: Path, seed: int, size: int = 40) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.GaussianBlur(rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8), (5, 5), 0))
    return path


@pytest.fixture
def embed_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    m = create_model("conv4", embedding_size=16, widths=[8, 8, 8, 8])
    save_model(m, run / "model.safetensors", preprocessing=Preprocess(32).to_dict())
    return run


def test_command_explains_a_pair(embed_run, tmp_path, capsys):
    a, b = _write_png(tmp_path / "a.png", 0), _write_png(tmp_path / "b.png", 1)
    out = tmp_path / "out" / "pair.png"
    assert cmd_explain(str(embed_run), str(a), str(b), out=str(out)) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["png"] == str(out) and -1 <= report["similarity"] <= 1
    figure = cv2.imread(str(out))
    assert figure is not None and figure.shape[0] == 32 + 256 and figure.shape[1] > 2 * 256
    assert [p.name for p in out.parent.iterdir()] == ["pair.png"]  # no temporary file left behind


def test_command_explains_against_the_top_match_in_an_index(embed_run, tmp_path, capsys):
    from finegrain.index.build import index_gallery

    gallery = tmp_path / "gallery"
    paths = [_write_png(gallery / f"c{i % 2}" / f"{i}.png", seed=10 + i) for i in range(4)]
    index_gallery(embed_run, gallery, tmp_path / "idx", progress=False)
    out = tmp_path / "match.png"
    assert cmd_explain(str(embed_run), str(paths[0]), out=str(out), index=str(tmp_path / "idx")) == 0
    report = json.loads(capsys.readouterr().out)
    assert Path(report["match"]).resolve() != paths[0].resolve()  # never the query itself
    assert Path(report["match"]).resolve() in {p.resolve() for p in paths} and out.is_file()


def test_command_explains_a_score(tmp_path, capsys):
    run = tmp_path / "scorer"
    save_model(_tiny_scorer(), run / "model.safetensors", preprocessing=Preprocess(32).to_dict())
    image = _write_png(tmp_path / "face.png", 3)
    assert cmd_explain(str(run), str(image), out=str(tmp_path / "score.png")) == 0
    report = json.loads(capsys.readouterr().out)
    assert isinstance(report["score"], float) and (tmp_path / "score.png").is_file()
    with pytest.raises(FinegrainError, match="one image"):
        cmd_explain(str(run), str(image), str(image), out=str(tmp_path / "x.png"))


def test_command_errors_name_the_problem(embed_run, tmp_path):
    a = _write_png(tmp_path / "a.png", 0)
    out = tmp_path / "x.png"
    with pytest.raises(FinegrainError, match="give a second image, or --index"):
        cmd_explain(str(embed_run), str(a), out=str(out))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match="bad.png"):
        cmd_explain(str(embed_run), str(a), str(bad), out=str(out))
    with pytest.raises(DataError, match="missing.png"):
        cmd_explain(str(embed_run), str(tmp_path / "missing.png"), str(a), out=str(out))
    with pytest.raises(FinegrainError, match="no-run"):
        cmd_explain(str(tmp_path / "no-run"), str(a), str(a), out=str(out))
    with pytest.raises(FinegrainError, match="not a finegrain index"):
        cmd_explain(str(embed_run), str(a), out=str(out), index=str(tmp_path))
    assert not out.exists()


def test_a_unicode_file_name_is_drawn_in_the_title(embed_run, tmp_path, capsys):
    """OpenCV's fonts draw "naïve café ✓" as "na??ve caf?? ???"; the title bar draws every character."""
    from finegrain.drawing import displayable, text_bar

    name = "naïve café ✓ face.png"
    a = _write_png(tmp_path / name, 0)
    assert cmd_explain(str(embed_run), str(a), str(a), out=str(tmp_path / "u.png")) == 0
    assert displayable(name) == name  # every glyph is in the font
    shown, questioned = text_bar(name, 400), text_bar("na??ve caf?? ? face.png", 400)
    assert shown.shape == questioned.shape and not np.array_equal(shown, questioned)
    assert not np.array_equal(text_bar("naïve", 200), text_bar("naive", 200))
    # A character no font here can draw is shown as its code point, not as a box.
    assert displayable("日本.png") == "\\u65e5\\u672c.png"


def test_a_global_descriptor_has_nothing_to_localise():
    from finegrain.errors import ConfigError
    from finegrain.models import create_model

    model = create_model("lbp", embedding_size=8, pooling="avg", image_size=32, cell=8)
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(ConfigError, match="1x1"):
        similarity_cam(model, x, x)
