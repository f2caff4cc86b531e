"""Decode what a request uploads: sniff the bytes (never trust a file name), refuse oversized images before
their pixels are decoded, and name the problem with the HTTP status that fits it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from finegrain.data.images import DEFAULT_MIN_SIDE, ImageError, decode_image, header_size, size_problem

# Formats OpenCV decodes whose size PIL reads from the header alone.
_SIGNATURES = {
    b"\xff\xd8\xff": "jpeg",
    b"\x89PNG\r\n\x1a\n": "png",
    b"GIF87a": "gif",
    b"GIF89a": "gif",
    b"BM": "bmp",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
}
EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "gif": ".gif", "bmp": ".bmp", "tiff": ".tif", "webp": ".webp"}


class ApiError(Exception):
    """An error the client caused: the status code and a message naming the problem (JSON ``{"error": ...}``)."""

    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def sniff(data: bytes) -> str | None:
    """The image format the bytes start with, or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return next((fmt for magic, fmt in _SIGNATURES.items() if data.startswith(magic)), None)


def _pixel_size(data: bytes, name: str) -> tuple[int, int]:
    size = header_size(data)
    if size is not None:
        return size
    try:  # PIL parses the header lazily: no pixel is decoded here
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        raise ApiError(422, f"{name}: corrupt image header", file=name) from None


def decode_upload(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    """H×W×3 uint8 RGB, or ``ApiError``: 415 not an image, 413 too many pixels, 422 truncated/corrupt/too small."""
    if not data:
        raise ApiError(422, f"{name}: empty file", file=name)
    fmt = sniff(data)
    if fmt is None:
        raise ApiError(415, f"{name}: not an image (the bytes are not JPEG, PNG, WebP, BMP, GIF or TIFF)", file=name)
    width, height = _pixel_size(data, name)
    if width * height > max_pixels:
        raise ApiError(413, f"{name}: image too large ({width}×{height} pixels, limit {max_pixels / 1e6:g} megapixels)",
                       file=name)
    reason = size_problem(width, height, DEFAULT_MIN_SIDE, max_pixels)
    if reason:
        raise ApiError(422, f"{name}: {reason}", file=name)
    try:
        return decode_image(Path(name), data, max_pixels=max_pixels)
    except ImageError as error:
        raise ApiError(422, f"{name}: {error.problem.reason}", file=name) from None
