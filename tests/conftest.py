"""Shared fixtures: small synthetic labelled and rated image sets, and the path to the shared real data."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_class_folder(root: Path, classes: int = 6, per_class: int = 6, size: int = 32, seed: int = 0) -> Path:
    """Each class is a fixed random blob pattern; its images are noisy, shifted copies."""
    rng = np.random.default_rng(seed)
    for c in range(classes):
        pattern = cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (7, 7), 0)
        folder = root / f"class{c:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shifted = np.roll(pattern, shift=tuple(rng.integers(-2, 3, size=2)), axis=(0, 1))
            noisy = np.clip(shifted + rng.normal(0, 0.03, shifted.shape), 0, 1)
            cv2.imwrite(str(folder / f"{i}.png"), (noisy * 255).astype(np.uint8))
    return root


@pytest.fixture(scope="session")
def class_folder_factory():
    """``make_class_folder`` for fixtures of any scope (test modules cannot import conftest reliably)."""
    return make_class_folder


@pytest.fixture
def class_folder(tmp_path: Path) -> Path:
    return make_class_folder(tmp_path / "images")


def make_score_list(root: Path, n: int = 60, size: int = 32, seed: int = 0) -> Path:
    """Images whose score (1-5) is how bright a central square is, in a ``<file> <score>`` list."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        score = float(rng.uniform(1, 5))
        image = rng.normal(0.3, 0.05, (size, size, 3))
        image[size // 4 : -size // 4, size // 4 : -size // 4] = 0.1 + 0.2 * score
        cv2.imwrite(str(root / f"{i}.png"), (np.clip(image, 0, 1) * 255).astype(np.uint8))
        lines.append(f"{i}.png {score:.3f}")
    (root / "scores.txt").write_text("\n".join(lines) + "\n")
    return root / "scores.txt"


@pytest.fixture(scope="session")
def score_list_factory():
    """``make_score_list`` for fixtures and tests of any scope."""
    return make_score_list


@pytest.fixture
def score_list(tmp_path: Path) -> Path:
    return make_score_list(tmp_path / "rated")


def save_tiny_model(path: Path, size: int = 32, seed: int = 0, embedding_size: int = 16, kind: str = "embedding",
                    backbone: str = "conv4", input_norm: str = "fixed") -> Path:
    """A randomly initialised tiny model file: ``kind`` embedding (unit vectors) or score (one number)."""
    import torch

    from finegrain.encoders import Preprocess
    from finegrain.models import RegressionHead, ScoringModel, create_backbone, create_model, save_model

    torch.manual_seed(seed)
    options = {"widths": [8, 8, 8, 8]} if backbone == "conv4" else {"image_size": size} if backbone == "lbp" else {}
    options["input_norm"] = input_norm
    if kind == "score":
        body = create_backbone(backbone, **options)
        model = ScoringModel(body, RegressionHead(body.num_features))
    else:
        model = create_model(backbone, embedding_size=embedding_size, **options)
    save_model(model, path, preprocessing=Preprocess(size).to_dict())
    return path


@pytest.fixture(scope="session")
def make_model():
    """(Any scope.) ``make_model(path, size=32, seed=0, embedding_size=16, kind="embedding", backbone="conv4")``."""
    return save_tiny_model


@pytest.fixture
def tiny_model(tmp_path, make_model):
    """A tiny untrained conv4 embedding model (32 px, 16-d) in ``tmp_path/run``."""
    return make_model(tmp_path / "run" / "model.safetensors")


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(12, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Tests never touch the user's decode cache; session-wide, so module fixtures see it too."""
    previous = os.environ.get("FINEGRAIN_CACHE")
    os.environ["FINEGRAIN_CACHE"] = str(tmp_path_factory.getbasetemp() / "cache")
    yield
    if previous is None:
        os.environ.pop("FINEGRAIN_CACHE", None)
    else:
        os.environ["FINEGRAIN_CACHE"] = previous


def shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} (the shared data folder sits beside the repository)")
    return path


def _train_cli(data: Path, out: Path, *args: str, wait: bool = True, timeout: float = 300):
    """``finegrain train DATA --out OUT ARGS`` in a subprocess (a process that a test can SIGKILL)."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "finegrain.cli", "train", str(data), "--out", str(out), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    if wait:
        _, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err.decode()
    return proc


def _kill_at_first_checkpoint(proc, run_dir: Path, timeout: float = 300) -> None:
    """SIGKILL ``proc`` as soon as ``run_dir/checkpoint.safetensors`` appears, and check it had not finished."""
    import signal
    import time

    deadline = time.time() + timeout
    while not (run_dir / "checkpoint.safetensors").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "model.safetensors").exists(), "the run finished before it could be killed"


@pytest.fixture
def train_cli():
    """The ``finegrain train`` subprocess runner (a fixture, so tests need no import path to conftest)."""
    return _train_cli


@pytest.fixture
def kill_at_first_checkpoint():
    return _kill_at_first_checkpoint


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: needs a CUDA GPU (skipped without one); select with -m cuda")
