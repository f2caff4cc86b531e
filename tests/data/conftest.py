"""Fixtures that write small image trees, good and deliberately broken, into tmp_path."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def noise_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth random RGB (compresses like a photo, unlike white noise)."""
    small = (np.random.default_rng(seed).random((8, 8, 3)) * 255).astype(np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def jpeg_bytes(img: np.ndarray, **save_args) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=90, **save_args)
    return buf.getvalue()


def write_image(path: Path, img: np.ndarray | None = None, seed: int = 0, size=(48, 64)) -> Path:
    """Write a colour image in the format the suffix names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if img is None:
        img = noise_image(*size, seed=seed)
    Image.fromarray(img).save(path)
    return path


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def bad_tree(tmp_path: Path) -> SimpleNamespace:
    """An ImageFolder tree mixing good, convertible and broken files.

    good: cat/ (3 JPEG), dog/ (3 PNG); convertible (all in odd/): gray.png, rgba.png, gray16.png,
    cmyk.jpg, exif6.jpg (stored 64 wide × 48 high, orientation 6 = shown 48 × 64);
    broken (in odd/): not_image.jpg, empty.jpg, trunc_tail.jpg (300 bytes cut), trunc_half.jpg,
    tiny.png (4×4); lonely/ has a single image.
    """
    root = tmp_path / "imgs"
    for i in range(3):
        write_image(root / "cat" / f"cat{i}.jpg", seed=i)
        write_image(root / "dog" / f"dog{i}.png", seed=10 + i)
    odd = root / "odd"
    odd.mkdir(parents=True)
    base = noise_image(48, 64, seed=20)
    Image.fromarray(base[..., 0]).save(odd / "gray.png")
    Image.fromarray(np.dstack([base, np.full(base.shape[:2], 128, np.uint8)])).save(odd / "rgba.png")
    cv2.imwrite(str(odd / "gray16.png"), base[..., 1].astype(np.uint16) * 257)
    Image.fromarray(base).convert("CMYK").save(odd / "cmyk.jpg", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    (odd / "exif6.jpg").write_bytes(jpeg_bytes(base, exif=exif.tobytes()))

    (odd / "not_image.jpg").write_text("this is a text file, renamed\n" * 20)
    (odd / "empty.jpg").write_bytes(b"")
    big = jpeg_bytes(noise_image(256, 256, seed=21))
    (odd / "trunc_tail.jpg").write_bytes(big[:-300])
    (odd / "trunc_half.jpg").write_bytes(big[: len(big) // 2])
    write_image(odd / "tiny.png", noise_image(4, 4, seed=22))
    write_image(root / "lonely" / "only.jpg", seed=30)

    convertible = ["gray.png", "rgba.png", "gray16.png", "cmyk.jpg", "exif6.jpg"]
    broken = {
        "not_image.jpg": "not an image",
        "empty.jpg": "empty file",
        "trunc_tail.jpg": "truncated JPEG",
        "trunc_half.jpg": "truncated JPEG",
        "tiny.png": "too small",
    }
    return SimpleNamespace(root=root, odd=odd, convertible=convertible, broken=broken)
