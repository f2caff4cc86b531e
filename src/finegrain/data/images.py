"""Decode one image file to H×W×3 uint8 RGB, with a clear reason when it cannot be used."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from finegrain.errors import DataError, Problem

DEFAULT_MIN_SIDE = 8
DEFAULT_MAX_PIXELS = 200_000_000

_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# libjpeg scales by 1/2, 1/4, 1/8 inside the DCT, far cheaper than decoding full size and shrinking.
_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


class ImageError(DataError):
    """One unusable image; `problem` names the file and the reason."""

    def __init__(self, problem: Problem):
        self.problem = problem
        super().__init__("unusable image", [problem])


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header without decoding; None for other formats."""
    if data.startswith(_PNG_SIGNATURE) and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if not data.startswith(_JPEG_SOI):
        return None
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker in _JPEG_SOF:
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length field
            i += 2
            continue
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def _truncation(data: bytes) -> str | None:
    """Why the data is cut short, or None. OpenCV decodes some truncated files without a word."""
    if data.startswith(_JPEG_SOI) and not data.rstrip(b"\x00 \t\r\n").endswith(_JPEG_EOI):
        return "truncated JPEG (no end-of-image marker)"
    if data.startswith(_PNG_SIGNATURE) and data.rfind(b"IEND") == -1:
        return "truncated PNG (no IEND chunk)"
    return None


def size_problem(width: int, height: int, min_side: int, max_pixels: int) -> str | None:
    if width * height > max_pixels:
        return f"image too large ({width}×{height}, limit {max_pixels / 1e6:g} megapixels)"
    if min(width, height) < min_side:
        return f"image too small ({width}×{height}, minimum {min_side} px)"
    return None


def read_file(path: Path) -> bytes:
    """The file's bytes, or ImageError with a readable reason."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageError(Problem(path, "file not found")) from None
    except IsADirectoryError:
        raise ImageError(Problem(path, "is a folder, not an image file")) from None
    except OSError as e:
        raise ImageError(Problem(path, f"cannot read ({e.strerror})")) from None


def decode_image(
    path: Path,
    data: bytes | None = None,
    *,
    min_side: int = DEFAULT_MIN_SIDE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    target_size: int | None = None,
) -> np.ndarray:
    """Decode to H×W×3 uint8 RGB, or raise ImageError naming the file and why.

    OpenCV applies EXIF orientation and converts grey, RGBA (alpha dropped), 16-bit and CMYK images
    to 8-bit colour. `data` lets callers pass bytes they already read (the cache hashes them).
    With `target_size`, a large JPEG is decoded at 1/2, 1/4 or 1/8 scale when that still leaves its
    shorter side at least `target_size`; the size checks always use the full size.
    """
    path = Path(path)
    if data is None:
        data = read_file(path)
    if not data:
        raise ImageError(Problem(path, "empty file"))
    reason = _truncation(data)
    if reason:
        raise ImageError(Problem(path, reason))

    size = header_size(data)
    flags = cv2.IMREAD_COLOR
    if size is not None:
        reason = size_problem(*size, min_side, max_pixels)
        if reason:  # refuse before decoding: a decompression bomb must not reach the decoder
            raise ImageError(Problem(path, reason))
        if target_size and data.startswith(_JPEG_SOI):
            flags = next((f for k, f in _REDUCED if min(size) // k >= target_size), flags)

    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:
        img = None
    if img is None or img.ndim != 3 or img.shape[2] != 3:
        raise ImageError(Problem(path, "not an image or unsupported format"))
    if size is None:
        reason = size_problem(img.shape[1], img.shape[0], min_side, max_pixels)
        if reason:
            raise ImageError(Problem(path, reason))
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def resize_square(img: np.ndarray, size: int) -> np.ndarray:
    """Squash to size×size without cropping.

    Fine-grained cues often sit at the border (a fluke's trailing edge, an ear tip), so a centre
    crop could remove exactly what tells two classes apart; a mild aspect change costs less.
    INTER_AREA when shrinking avoids aliasing; INTER_LINEAR when any side grows (INTER_AREA would
    degrade to nearest-neighbour there).
    """
    height, width = img.shape[:2]
    if (height, width) == (size, size):
        return img
    interpolation = cv2.INTER_AREA if size <= min(height, width) else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interpolation)
