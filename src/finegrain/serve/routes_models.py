"""Requests about photos themselves: verify, score, detect, explain."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from finegrain.serve.collections import check_name
from finegrain.serve.requests import check_label, check_threshold, read_image, service
from finegrain.serve.uploads import ApiError

router = APIRouter()


def _examples(svc, label: str, collection: str | None) -> tuple[str, np.ndarray]:
    """Every stored embedding labelled ``label``: in ``collection``, or in the one collection that has it."""
    store = svc.collections()
    names = [check_name(collection)] if collection else store.names()
    found = [(n, vectors) for n in names if len(vectors := store.get(n).vectors_of(label))]
    if not found:
        where = f"collection {collection!r}" if collection else "any collection"
        raise ApiError(404, f"no item labelled {label!r} in {where}", label=label)
    if len(found) > 1:
        raise ApiError(422, f"label {label!r} is in several collections ({', '.join(n for n, _ in found)}): "
                            "say which with the collection field", label=label)
    return found[0]


@router.post("/verify")
async def verify(request: Request, file_a: UploadFile | None = File(None), file_b: UploadFile | None = File(None),
                 file: UploadFile | None = File(None), label: str | None = Form(None),
                 collection: str | None = Form(None), threshold: float | None = Form(None)):
    """Same or different? Two photos (``file_a``, ``file_b``), or a photo (``file``) against every example of a
    subject (``label``, in ``collection`` when the label is in several): the best example decides."""
    svc = service(request)
    svc.engine.need_embedder()
    threshold = check_threshold(threshold, svc.engine.threshold.value)
    label = check_label(label)
    if file_a is not None and file_b is not None and file is None and label is None:
        (a, _), (b, _) = await read_image(file_a, request, "file_a"), await read_image(file_b, request, "file_b")
        vectors = await svc.engine.embed([a, b])
        similarity = float(vectors[0] @ vectors[1])
        return {"similarity": similarity, "same": similarity >= threshold, "threshold": threshold}
    if file is not None and label is not None and file_a is None and file_b is None:
        where, examples = await run_in_threadpool(_examples, svc, label, collection)
        image, _ = await read_image(file, request)
        vector = (await svc.engine.embed([image]))[0]
        similarities = examples @ vector
        best = float(similarities.max())
        return {"similarity": best, "same": best >= threshold, "threshold": threshold, "label": label,
                "collection": where, "examples": len(similarities), "mean_similarity": float(similarities.mean())}
    raise ApiError(422, "give two photos (file_a and file_b), or one photo (file) and a label to verify it against "
                        "every example of that subject")


@router.post("/score")
async def score(request: Request, file: UploadFile = File(...)):
    svc = service(request)
    svc.engine.need_scorer()
    image, _ = await read_image(file, request)
    return {"score": float((await svc.engine.score([image]))[0])}


@router.post("/detect")
async def detect(request: Request, file: UploadFile = File(...)):
    svc = service(request)
    image, _ = await read_image(file, request)
    faces = await svc.engine.detect(image)
    return {"faces": [face.to_dict() for face in faces], "width": image.shape[1], "height": image.shape[0]}


@router.post("/explain", response_class=Response,
             responses={200: {"content": {"image/png": {}}, "description": "the heat map, as a PNG"}})
async def explain(request: Request, file_a: UploadFile | None = File(None), file_b: UploadFile | None = File(None),
                  file: UploadFile | None = File(None)):
    """A Grad-CAM heat map: what made two photos similar (``file_a``, ``file_b``: the embedding model), or what
    made one photo's score (``file``: the scorer)."""
    svc = service(request)
    if file_a is not None and file_b is not None and file is None:
        svc.engine.need_embedder()
        (a, _), (b, _) = await read_image(file_a, request, "file_a"), await read_image(file_b, request, "file_b")
        png = await svc.engine.explain(a, b)
    elif file is not None and file_a is None and file_b is None:
        svc.engine.need_scorer()
        image, _ = await read_image(file, request)
        png = await svc.engine.explain(image, None)
    else:
        raise ApiError(422, "give two photos (file_a and file_b) to explain a similarity, or one (file) to explain "
                            "a score")
    return Response(png, media_type="image/png")
