"""Decode step shared by the routes: uploaded files → images, and form values checked with named errors."""

from __future__ import annotations

import hmac

import numpy as np
from fastapi import Request, UploadFile
from starlette.concurrency import run_in_threadpool

from finegrain.serve.uploads import EXTENSIONS, ApiError, decode_upload, sniff

MAX_LABEL = 200


def service(request: Request):
    return request.app.state.service


async def read_image(upload: UploadFile, request: Request, field: str = "file") -> tuple[np.ndarray, bytes]:
    """The decoded RGB image and the bytes it came from; ``ApiError`` names the file (or field) and the problem."""
    data = await upload.read()
    name = upload.filename or field
    image = await run_in_threadpool(decode_upload, data, name, service(request).settings.max_pixels)
    return image, data


def require_key(request: Request) -> None:
    """Writes need ``X-API-Key`` when the service has a key: 401 without one, 403 with a wrong one."""
    key = request.app.state.service.settings.api_key
    if not key:
        return
    given = request.headers.get("x-api-key")
    if given is None:
        raise ApiError(401, "this service requires an API key for changes: send it in the X-API-Key header")
    if not hmac.compare_digest(given.encode(), key.encode()):
        raise ApiError(403, "wrong API key (X-API-Key)")


def extension(data: bytes) -> str:
    return EXTENSIONS[sniff(data)]


def check_label(label: str | None) -> str | None:
    if label is None or not label.strip():
        return None
    label = label.strip()
    if len(label) > MAX_LABEL or any(ord(c) < 32 for c in label):
        raise ApiError(422, f"label must be at most {MAX_LABEL} printable characters")
    return label


def check_threshold(threshold: float | None, default: float) -> float:
    if threshold is None:
        return default
    if not -1.0 <= threshold <= 1.0:
        raise ApiError(422, f"threshold is a cosine similarity between -1 and 1, got {threshold}")
    return threshold


def check_k(k: int, most: int = 1000) -> int:
    if not 1 <= k <= most:
        raise ApiError(422, f"k must be between 1 and {most}, got {k}")
    return k
