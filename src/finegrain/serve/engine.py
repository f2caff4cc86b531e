"""The models behind the service, run on one compute thread so requests never fight over the two cores.

Embeddings are batched across concurrent requests: whatever images arrived while the previous batch ran (and,
with ``batch_wait_ms``, a few milliseconds more) go through the network together.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from finegrain.boxes import drop_nested
from finegrain.data.images import resize_square
from finegrain.detect.faces import Face, FaceDetector, crop_face
from finegrain.encoders import Encoder, SingleEncoder, load_encoder
from finegrain.encoders.loader import check_output
from finegrain.explain.cam import explanation_png, score_cam, similarity_cam
from finegrain.serve.settings import ServeSettings
from finegrain.serve.uploads import ApiError
from finegrain.verification.protocol import THRESHOLD_KEY

T = TypeVar("T")
DEFAULT_THRESHOLD = 0.5
FACE_MARGIN = 0.2
MAX_BATCH = 256


@dataclass(frozen=True)
class Threshold:
    """The cosine similarity at or above which two faces are the same person, and where it comes from."""

    value: float
    source: str


def similarity_threshold(encoder: Encoder, chosen: float | None) -> Threshold:
    """``--threshold``, else the model's stored verification threshold (a distance between unit vectors,
    turned into the cosine it equals: s = 1 − d²/2), else a default."""
    if chosen is not None:
        return Threshold(chosen, "--threshold")
    stored = encoder.thresholds.get(THRESHOLD_KEY)
    if stored:
        distance = float(stored["threshold"])
        return Threshold(1.0 - distance * distance / 2.0, f"the model's ({stored.get('fitted_on', 'fitted pairs')})")
    return Threshold(DEFAULT_THRESHOLD, "default (no threshold stored with the model)")


def resized(images: list[np.ndarray], encoder: Encoder, cropped: bool = False) -> np.ndarray:
    """RGB images of any size as one N×S×S×3 batch the way ``encoder`` takes them (a face model's: its main
    face cropped), or, ``cropped``, faces already cut out by the detector, only resized."""
    prepare = (lambda img: resize_square(img, encoder.image_size)) if cropped else encoder.prepare_image
    return np.stack([prepare(img) for img in images])


def detect_faces(detector: FaceDetector, image: np.ndarray) -> list[Face]:
    faces = detector.detect(image)
    boxes = np.array([f.box for f in faces], np.float64).reshape(-1, 4)
    return [faces[i] for i in drop_nested(boxes, np.array([f.score for f in faces]))]


class Batcher:
    """Coalesces concurrent ``encode`` calls into network batches run on the compute thread."""

    def __init__(self, encode: Callable[[np.ndarray], np.ndarray], pool: ThreadPoolExecutor, wait_s: float):
        self._encode, self._pool, self._wait = encode, pool, wait_s
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches: list[int] = []  # sizes of recent batches, for /health

    def _ensure_running(self) -> asyncio.Queue:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            self._loop, self._queue = loop, asyncio.Queue()
            self._task = loop.create_task(self._run())
        return self._queue

    async def encode(self, images: np.ndarray) -> np.ndarray:
        future = asyncio.get_running_loop().create_future()
        await self._ensure_running().put((images, future))
        return await future

    async def _gather(self, first: tuple) -> list[tuple]:
        batch, count = [first], len(first[0])
        deadline = self._loop.time() + self._wait
        while count < MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - self._loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            batch.append(item)
            count += len(item[0])
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._gather(await self._queue.get())
            try:
                out = await self._loop.run_in_executor(self._pool, self._encode,
                                                       np.concatenate([images for images, _ in batch]))
            except Exception as error:  # every waiting request hears of it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.batches = (self.batches + [sum(len(images) for images, _ in batch)])[-100:]
            start = 0
            for images, future in batch:
                if not future.done():
                    future.set_result(out[start : start + len(images)])
                start += len(images)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


class Engine:
    def __init__(self, settings: ServeSettings):
        self.embedder: Encoder | None = None
        self.scorer: Encoder | None = None
        if settings.model:
            self.embedder = load_encoder(settings.model, need="embedding", device=settings.device)
            stored = self.embedder.thresholds.get(THRESHOLD_KEY)
            if stored and list(stored.get("tta") or []) != list(self.embedder.tta):  # the threshold's own TTA
                self.embedder = load_encoder(settings.model, need="embedding", tta=stored.get("tta") or "none",
                                             device=settings.device)
        if settings.scorer:
            self.scorer = load_encoder(settings.scorer, device=settings.device)
            check_output(self.scorer, "score", f"--scorer {settings.scorer}")
        self.threshold = similarity_threshold(self.embedder, settings.threshold) if self.embedder else None
        self.detector = FaceDetector.load(settings.detector, device=settings.device)
        self.detector_source = settings.detector or "bundled"
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="finegrain-model")
        wait = settings.batch_wait_ms / 1000
        self._embed = Batcher(self._encode_embeddings, self.pool, wait) if self.embedder else None
        self._score = Batcher(self._encode_scores, self.pool, wait) if self.scorer else None

    @property
    def mean_batch(self) -> float | None:
        """Images per network batch over the last 100 embedding batches (above 1: requests shared batches)."""
        sizes = self._embed.batches if self._embed else []
        return sum(sizes) / len(sizes) if sizes else None

    def describe(self) -> dict[str, Any]:
        return {"model": self.embedder.describe() if self.embedder else None,
                "scorer": self.scorer.describe() if self.scorer else None,
                "detector": self.detector_source,
                "threshold": self.threshold.value if self.threshold else None,
                "threshold_source": self.threshold.source if self.threshold else None}

    # -- what needs which model ------------------------------------------------------------------
    def need_embedder(self) -> Encoder:
        if self.embedder is None:
            raise ApiError(409, "wrong model kind: this service has no embedding model (start it with --model RUN, "
                                "a model trained with --task embed)")
        return self.embedder

    def need_scorer(self) -> Encoder:
        if self.scorer is None:
            raise ApiError(409, "wrong model kind: this service has no scoring model (start it with --scorer RUN, "
                                "a model trained with --task score)")
        return self.scorer

    # -- compute (sync functions run on the model thread) ----------------------------------------
    def _encode_embeddings(self, images: np.ndarray) -> np.ndarray:
        return self.embedder.encode_array(images)

    def _encode_scores(self, images: np.ndarray) -> np.ndarray:
        return self.scorer.encode_array(images)

    async def run(self, func: Callable[..., T], *args) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, func, *args)

    async def embed(self, images: list[np.ndarray], cropped: bool = False) -> np.ndarray:
        """Unit embeddings (N×E) of RGB images of any size (``cropped``: face crops from ``face_crops``)."""
        encoder = self.need_embedder()
        return await self._embed.encode(resized(images, encoder, cropped))

    async def score(self, images: list[np.ndarray]) -> np.ndarray:
        encoder = self.need_scorer()
        return await self._score.encode(resized(images, encoder))

    async def detect(self, image: np.ndarray) -> list[Face]:
        """The faces in an RGB image, best first, one box per face (``drop_nested``)."""
        return await self.run(detect_faces, self.detector, image)

    def face_crops(self, image: np.ndarray, faces: list[Face]) -> list[np.ndarray]:
        encoder = self.need_embedder()
        # A face model's crops are framed as it was trained; other models get the service's framing.
        margin = encoder.face_cropper.margin if encoder.face_cropper is not None else FACE_MARGIN
        return [crop_face(image, face.box, margin, max(encoder.image_size, 64)) for face in faces]

    async def explain(self, first: np.ndarray, second: np.ndarray | None) -> bytes:
        """A heat-map PNG: a pair under the embedding model, or one image under the scorer."""
        return await self.run(self._explain, first, second)

    def _explain(self, first: np.ndarray, second: np.ndarray | None) -> bytes:
        encoder = self.need_scorer() if second is None else self.need_embedder()
        if not isinstance(encoder, SingleEncoder):
            raise ApiError(409, "wrong model kind: a combined model has no single feature map to explain")

        def tensor(image):
            return encoder.preprocess.to_tensor(resize_square(image, encoder.image_size)[None])

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "explain.png"
            if second is None:
                cam, score = score_cam(encoder.model, tensor(first))
                explanation_png(out, [first], [cam], f"score {score:.3f}")
            else:
                cam_a, cam_b, similarity = similarity_cam(encoder.model, tensor(first), tensor(second))
                explanation_png(out, [first, second], [cam_a, cam_b], f"similarity {similarity:.3f}")
            return out.read_bytes()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
