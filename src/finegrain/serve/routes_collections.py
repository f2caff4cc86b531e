"""Collections and their items; search and identification against one collection."""

from __future__ import annotations

import cv2
import numpy as np
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from finegrain.identification.nearest import nearest_identity
from finegrain.serve.collections import Upload, check_name
from finegrain.serve.requests import (
    check_k,
    check_label,
    check_threshold,
    extension,
    read_image,
    require_key,
    service,
)
from finegrain.serve.uploads import ApiError, sniff

router = APIRouter()
IDENTITY_CANDIDATES = 100  # nearest items searched to rank identities (the best identity is always among them)


class NewCollection(BaseModel):
    name: str


def _image_url(name: str, item_id: str) -> str:
    return f"/collections/{name}/items/{item_id}/image"


def _with_images(name: str, rows: list[dict]) -> list[dict]:
    return [{**row, "image": _image_url(name, row["id"])} for row in rows]


@router.get("/collections")
async def list_collections(request: Request):
    store = service(request).collections()
    return {"collections": [{"name": n, "items": len(store.get(n).gallery)} for n in store.names()]}


@router.post("/collections", status_code=201, dependencies=[Depends(require_key)])
async def create_collection(body: NewCollection, request: Request):
    collection = await run_in_threadpool(service(request).collections().create, body.name)
    return {"name": collection.name, "items": 0}


@router.delete("/collections/{name}", dependencies=[Depends(require_key)])
async def delete_collection(name: str, request: Request):
    await run_in_threadpool(service(request).collections().delete, check_name(name))
    return {"deleted": name}


@router.post("/collections/{name}/items", status_code=201, dependencies=[Depends(require_key)])
async def add_items(request: Request, name: str, files: list[UploadFile] = File(...),
                    label: str | None = Form(None), detect: bool = Form(False)):
    """Add photos (all or none): each embedded whole, or with ``detect`` its best face."""
    svc = service(request)
    store = svc.collections()
    store.get(check_name(name))  # 404 before any decoding
    label = check_label(label)
    images, uploads = [], []
    for upload in files:
        image, data = await read_image(upload, request, "files")
        if detect:
            faces = await svc.engine.detect(image)
            if not faces:
                raise ApiError(422, f"{upload.filename or 'files'}: no face found (add it without detect)",
                               file=upload.filename)
            image = svc.engine.face_crops(image, faces[:1])[0]
            data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()
        images.append(image)
        uploads.append(Upload(data, extension(data)))
    vectors = await svc.engine.embed(images, cropped=detect)
    ids = await run_in_threadpool(store.add, name, uploads, vectors, label)
    return {"ids": ids, "items": _with_images(name, [{"id": i, "label": label} for i in ids])}


@router.get("/collections/{name}/items")
async def list_items(name: str, request: Request, offset: int = 0, limit: int = 1000):
    """Items in the order they were added, ``limit`` (at most 10,000) from ``offset``; ``total`` counts them all."""
    collection = service(request).collections().get(check_name(name))
    if offset < 0 or not 1 <= limit <= 10_000:
        raise ApiError(422, f"offset must be 0 or more and limit between 1 and 10000, got {offset} and {limit}")
    items = collection.items()
    return {"items": _with_images(name, items[offset : offset + limit]), "total": len(items), "offset": offset}


@router.get("/collections/{name}/items/{item_id}/image")
async def item_image(name: str, item_id: str, request: Request, size: int | None = None):
    """The stored photo, or with ``size`` a JPEG thumbnail whose longer side is at most ``size`` pixels."""
    path = service(request).collections().get(check_name(name)).image_path(item_id)
    if not path.exists():
        raise ApiError(404, f"item {item_id!r} has no stored photo")
    if size is not None and not 16 <= size <= 1024:
        raise ApiError(422, f"size must be between 16 and 1024 pixels, got {size}")
    data = await run_in_threadpool(path.read_bytes)
    if size is not None:
        data = await run_in_threadpool(_thumbnail, data, size)
    return Response(data, media_type=f"image/{sniff(data) or 'octet-stream'}",
                    headers={"Cache-Control": "max-age=86400", "X-Content-Type-Options": "nosniff"})


def _thumbnail(data: bytes, size: int) -> bytes:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    scale = size / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


@router.delete("/collections/{name}/items/{item_id}", dependencies=[Depends(require_key)])
async def delete_item(name: str, item_id: str, request: Request):
    await run_in_threadpool(service(request).collections().remove, check_name(name), item_id)
    return {"deleted": item_id}


@router.post("/collections/{name}/search")
async def search(request: Request, name: str, file: UploadFile = File(...), k: int = Form(10)):
    svc = service(request)
    collection = svc.collections().get(check_name(name))
    k = check_k(k)
    image, _ = await read_image(file, request)
    vector = await svc.engine.embed([image])
    matches = await run_in_threadpool(collection.search, vector, k)
    return {"matches": _with_images(name, matches[0])}


def _identity(matches: list[dict], threshold: float, k: int) -> dict:
    """The identity of the best labelled match (null under the threshold), its confidence and the next ``k − 1``,
    by ``identification.nearest_identity`` over the nearest items (the best identity is always among them)."""
    labelled = [m for m in matches if m["label"] is not None]
    if not labelled:
        return {"label": None, "confidence": None, "unknown": True, "nearest": None, "alternatives": []}
    answer = nearest_identity(np.array([[m["similarity"] for m in labelled]]), [m["label"] for m in labelled],
                              threshold, alternatives=k - 1)[0]
    return {"label": answer.label, "confidence": answer.confidence, "unknown": answer.unknown,
            "nearest": answer.nearest,
            "alternatives": [{"label": lab, "similarity": sim} for lab, sim in answer.alternatives]}


@router.post("/collections/{name}/identify")
async def identify(request: Request, name: str, file: UploadFile = File(...), detect: bool = Form(False),
                   threshold: float | None = Form(None), k: int = Form(5)):
    """Who is this? With ``detect``, every face in the photo, each with its box."""
    svc = service(request)
    collection = svc.collections().get(check_name(name))
    threshold = check_threshold(threshold, svc.engine.threshold.value)
    k = check_k(k, 100)
    if not collection.has_labels():
        raise ApiError(409, f"collection {name!r} has no labelled items, so it cannot name anyone; add photos "
                            "with a label")
    image, _ = await read_image(file, request)
    faces = await svc.engine.detect(image) if detect else None
    crops = svc.engine.face_crops(image, faces) if detect else [image]
    size = {"width": image.shape[1], "height": image.shape[0]}
    if not crops:
        return {"faces": [], "threshold": threshold, **size}
    vectors = await svc.engine.embed(crops, cropped=bool(detect))
    rows = await run_in_threadpool(collection.search, vectors, IDENTITY_CANDIDATES)
    answers = [{**_identity(row, threshold, k), "matches": _with_images(name, row[:k])} for row in rows]
    if not detect:
        return {**answers[0], "threshold": threshold}
    return {"faces": [{**face.to_dict(), **answer} for face, answer in zip(faces, answers)], "threshold": threshold,
            **size}
