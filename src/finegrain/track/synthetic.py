"""Test videos with exact ground truth: real LFW faces moving over real CMU-MIT non-face scenes.

    from finegrain.track.synthetic import crossing_people, make_video
    gt = make_video("cross.mp4", crossing_people(frames=60), frames=60, seed=0)
    gt.write()                        # cross.gt.txt (MOT ground truth) and cross.people.json (track id → name)

Each person is one LFW photo (a 112 × 112 crop, face roughly centred) cut out with a soft-edged ellipse around
the face, scaled and moved along a straight or curved path, and composited over a background cut from a
non-face scene; people are drawn in depth order, so a nearer face passing in front hides a farther one.

Ground truth follows the MOT16 conventions of :mod:`finegrain.track.mot`: one row per person per frame while
any part of the face box is inside the frame (box clipped to the frame), ``conf`` 1, class 1, and the
visibility (the fraction of the unclipped box that is inside the frame and not covered by faces drawn in
front) in column 9. A hidden face keeps its row and its track id, with visibility near 0.

The ground-truth box is the box the bundled face detector draws around the face, not a guess: each photo is
run through the detector once, unpasted, and its face box (in the photo's coordinates) is moved with the same
scale and offset the photo is pasted with. Photos left to chance must also be found by the detector once
pasted (:func:`choose_photos`). Measured on the benchmark videos (``scripts/make_track_videos.py``, every 15th
frame read back from the mp4), the detector found 91 % of the wholly visible faces (82-100 % per video) at
IoU ≥ 0.5, with median IoU 0.78 (0.68-0.81 per video): its boxes jitter by a pyramid step from frame to frame,
and it misses a face now and then, as it would in a real video.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from finegrain.data.images import decode_image
from finegrain.errors import DataError, Problem
from finegrain.track.mot import MotRow, write_mot
from finegrain.utils import atomic_write_text

if TYPE_CHECKING:
    from finegrain.detect.faces import FaceDetector

# The shared data folder sits beside the repository (see its README); callers elsewhere pass the roots.
SHARED_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
LFW_ROOT = SHARED_DATA / "lfw" / "images"
SCENE_ROOT = SHARED_DATA / "cmu-mit-faces" / "train_non_face_scenes"

FACE_LABEL = 1  # the MOT16 class column of our ground truth: every object is a face

# The cut-out: an ellipse centred on the detector's face box, with semi-axes these multiples of the box's half
# width and height. The detector's box on an LFW crop is large (median 91 of 112 px: hairline to below the chin,
# ear to ear), so the ellipse nearly fills the photo and keeps all the detector's box was fitted to. Measured on
# 10 photos pasted at 50, 80 and 110 px, semi-axes from 0.9 to 1.3 gave the same agreement between detector and
# ground truth (median IoU 0.74-0.83), so this is the cut that looks most like a head.
MASK_AXES = (1.05, 1.15)
MASK_FEATHER = 0.12  # width of the soft edge, as a fraction of the ellipse's radius

# Faces are searched for near the middle of an LFW crop: other people in the background are not the subject.
_CENTRE_TOLERANCE = 0.2  # box centre within this fraction of the photo size from the photo centre


@dataclass(frozen=True)
class PersonSpec:
    """One person in a synthetic video.

    The face box's centre moves from ``start`` to ``end`` (pixels; ``end`` None: it stays put) through ``via``
    at the middle of its time on screen (None: a straight line; otherwise a quadratic curve), at constant
    parameter speed. ``size`` is the face box width at the first and last frame (linear in between); the
    detector's box is square, so it is the height too. ``frames`` is the first and last frame (from 1,
    inclusive) the person is on screen; None: the whole video. A larger ``z`` is nearer: drawn later, in front.
    ``name`` is an LFW identity and ``photo`` one of its photos; None: chosen from the video's seed.
    """

    start: tuple[float, float]
    end: tuple[float, float] | None = None
    via: tuple[float, float] | None = None
    size: tuple[float, float] = (80.0, 80.0)
    frames: tuple[int, int] | None = None
    z: int = 0
    name: str | None = None
    photo: str | Path | None = None

    def at(self, frame: int, total: int) -> tuple[float, float, float] | None:
        """``(centre x, centre y, box width)`` in ``frame`` of a ``total``-frame video, or None outside the
        person's frames (a face partly or wholly past the frame's edge still has a position)."""
        first, last = self.frames or (1, total)
        if not first <= frame <= last:
            return None
        t = 0.0 if last == first else (frame - first) / (last - first)
        a = np.asarray(self.start, dtype=np.float64)
        b = a if self.end is None else np.asarray(self.end, dtype=np.float64)
        if self.via is None:
            point = (1 - t) * a + t * b
        else:
            # The quadratic Bézier curve whose control point makes it pass through ``via`` at t = 1/2.
            control = 2 * np.asarray(self.via, dtype=np.float64) - (a + b) / 2
            point = (1 - t) ** 2 * a + 2 * (1 - t) * t * control + t**2 * b
        width = (1 - t) * self.size[0] + t * self.size[1]
        return float(point[0]), float(point[1]), float(width)


@dataclass(frozen=True)
class PhotoFace:
    """An LFW photo and the detector's box around its face, in the photo's pixels (``x1 y1 x2 y2``)."""

    path: Path
    image: np.ndarray = field(repr=False)  # RGB uint8
    box: tuple[float, float, float, float]
    score: float


@dataclass
class GroundTruth:
    """What a synthetic video shows: MOT rows and who each track is."""

    video: Path
    frames: int
    size: tuple[int, int]  # width, height
    fps: float
    rows: list[MotRow]
    people: dict[int, str]  # track id → LFW name
    photos: dict[int, Path]  # track id → the photo pasted (a gallery for the test must use the person's others)
    scene: Path | None

    def track(self, track_id: int) -> list[MotRow]:
        """The rows of one track, in frame order."""
        return [r for r in self.rows if r.track_id == track_id]

    def frame(self, frame: int) -> list[MotRow]:
        """The rows of one frame (from 1)."""
        return [r for r in self.rows if r.frame == frame]

    def write(self, gt_path: str | Path | None = None, people_path: str | Path | None = None) -> tuple[Path, Path]:
        """``VIDEO.gt.txt`` (MOT) and ``VIDEO.people.json`` beside the video unless told otherwise.

        The people file maps each track id (a string, as JSON keys are) to ``{"name", "photo"}``, the photo as
        ``Name/Name_0003.jpg`` relative to the LFW image root.
        """
        stem = self.video.with_suffix("")
        gt_path = Path(gt_path or stem.with_name(stem.name + ".gt.txt"))
        people_path = Path(people_path or stem.with_name(stem.name + ".people.json"))
        write_mot(gt_path, self.rows)
        people = {str(tid): {"name": name, "photo": f"{self.photos[tid].parent.name}/{self.photos[tid].name}"}
                  for tid, name in sorted(self.people.items())}
        atomic_write_text(people_path, json.dumps(people, indent=2) + "\n")
        return gt_path, people_path


def read_people(path: str | Path) -> dict[int, str]:
    """Track id → LFW name from a ``.people.json`` written by :meth:`GroundTruth.write`."""
    data = json.loads(Path(path).read_text())
    return {int(tid): (entry["name"] if isinstance(entry, dict) else entry) for tid, entry in data.items()}


def person_photos(lfw_root: str | Path, name: str) -> list[Path]:
    """Every photo of one LFW person, in file-name order."""
    folder = Path(lfw_root) / name
    return sorted(p for p in folder.glob("*.jpg") if p.is_file())


def people_with_photos(lfw_root: str | Path, min_photos: int = 2) -> list[str]:
    """LFW names with at least ``min_photos`` photos, sorted (a test needs other photos for its gallery)."""
    names = []
    with os.scandir(lfw_root) as entries:
        for entry in entries:
            if entry.is_dir() and sum(1 for f in os.scandir(entry.path) if f.name.endswith(".jpg")) >= min_photos:
                names.append(entry.name)
    return sorted(names)


def scene_paths(scene_root: str | Path, min_size: tuple[int, int] = (0, 0)) -> list[Path]:
    """Scene images in ``scene_root``, sorted; with ``min_size`` (width, height), only those at least that big."""
    paths = sorted(p for p in Path(scene_root).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if min_size == (0, 0):
        return paths
    keep = []
    for p in paths:
        image = cv2.imread(str(p), cv2.IMREAD_REDUCED_GRAYSCALE_2)  # half size is enough to know the size
        if image is not None and image.shape[1] * 2 >= min_size[0] and image.shape[0] * 2 >= min_size[1]:
            keep.append(p)
    return keep


def background(scene: str | Path, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """The scene scaled to cover ``size`` (width, height) and centre-cropped to it: RGB uint8 (grey scenes are
    repeated into three channels)."""
    image = decode_image(Path(scene))
    width, height = size
    scale = max(width / image.shape[1], height / image.shape[0])
    new = (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale)))
    image = cv2.resize(image, new, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    x0, y0 = (new[0] - width) // 2, (new[1] - height) // 2
    return np.ascontiguousarray(image[y0 : y0 + height, x0 : x0 + width])


def calibrate_photo(path: str | Path, detector: FaceDetector) -> PhotoFace | None:
    """The detector's box around the face near the middle of an LFW photo, or None when it finds none there.

    This is the ground-truth calibration: the box is what the detector draws around this face unpasted, and
    pasting moves it with the photo.
    """
    path = Path(path)
    image = decode_image(path)
    h, w = image.shape[:2]
    for face in detector.detect(image):  # best first
        x1, y1, x2, y2 = face.box
        if abs((x1 + x2) / 2 - w / 2) <= _CENTRE_TOLERANCE * w and abs((y1 + y2) / 2 - h / 2) <= _CENTRE_TOLERANCE * h:
            return PhotoFace(path, image, tuple(map(float, face.box)), float(face.score))
    return None


def face_mask(shape: tuple[int, int], box: Sequence[float]) -> np.ndarray:
    """A soft ellipse around ``box`` in a photo of ``shape`` (height, width): float32 alpha in [0, 1].

    It fades to 0 at the photo's border too, so a face near the edge of its crop leaves no straight seam.
    """
    h, w = shape
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    ax, ay = MASK_AXES[0] * (x2 - x1) / 2, MASK_AXES[1] * (y2 - y1) / 2
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5  # pixel centres, in the boxes' continuous coordinates
    radius = np.sqrt(((xs - cx) / ax) ** 2 + ((ys - cy) / ay) ** 2)
    alpha = np.clip((1 - radius) / MASK_FEATHER + 0.5, 0, 1)
    border = np.minimum.reduce([xs, ys, w - xs, h - ys])
    return (alpha * np.clip(border / 3, 0, 1)).astype(np.float32)


@dataclass
class _Layer:
    """One person's face drawn into one frame: where, and how opaque."""

    track_id: int
    box: np.ndarray  # ground-truth x1 y1 x2 y2, unclipped
    origin: tuple[int, int]  # top-left of ``alpha`` in the frame (x, y)
    alpha: np.ndarray  # float32, the warped mask
    colour: np.ndarray  # float32 RGB, the warped photo


def _warp(face: PhotoFace, mask: np.ndarray, cx: float, cy: float, width: float,
          size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int], np.ndarray, np.ndarray]:
    """Scale the photo so its face box is ``width`` wide and centred at ``(cx, cy)``; returns the ground-truth
    box, and the warped mask and photo over the frame region they cover (empty arrays when off the frame)."""
    x1, y1, x2, y2 = face.box
    s = width / (x2 - x1)
    # A point u of the photo (continuous coordinates) lands at s·u + t in the frame; t puts the box centre at c.
    tx, ty = cx - s * (x1 + x2) / 2, cy - s * (y1 + y2) / 2
    box = np.array([s * x1 + tx, s * y1 + ty, s * x2 + tx, s * y2 + ty])
    ph, pw = face.image.shape[:2]
    left, top = max(0, int(np.floor(tx))), max(0, int(np.floor(ty)))
    right, bottom = min(size[0], int(np.ceil(tx + s * pw))), min(size[1], int(np.ceil(ty + s * ph)))
    if right <= left or bottom <= top:
        return box, (left, top), np.zeros((0, 0), np.float32), np.zeros((0, 0, 3), np.float32)
    image = face.image.astype(np.float32)
    if s < 0.8:  # shrinking: low-pass first so the face does not alias (warpAffine samples, it does not average)
        image = cv2.GaussianBlur(image, (0, 0), 0.5 * np.sqrt(1 / s**2 - 1))
    # Pixel indices: centre of destination pixel i is i + 0.5 = s (j + 0.5) + t for source pixel j.
    matrix = np.array([[s, 0, tx + 0.5 * s - 0.5 - left], [0, s, ty + 0.5 * s - 0.5 - top]])
    out = (right - left, bottom - top)
    colour = cv2.warpAffine(image, matrix, out, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, matrix, out, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return box, (left, top), alpha, colour


def _visibility(layer: _Layer, in_front: list[_Layer], size: tuple[int, int]) -> float:
    """The fraction of the layer's (unclipped) box inside the frame and not covered by the layers in front."""
    x1, y1, x2, y2 = layer.box
    area = max((x2 - x1) * (y2 - y1), 1e-9)
    inside = max(0.0, min(x2, size[0]) - max(x1, 0)) * max(0.0, min(y2, size[1]) - max(y1, 0))
    # The pixels whose centres fall inside the box stand for it when measuring cover; the part cut off by the
    # frame's edge is measured exactly.
    left, top = max(0, int(np.ceil(x1 - 0.5))), max(0, int(np.ceil(y1 - 0.5)))
    right, bottom = min(size[0], int(np.ceil(x2 - 0.5))), min(size[1], int(np.ceil(y2 - 0.5)))
    if right <= left or bottom <= top:
        return 0.0
    seen = np.ones((bottom - top, right - left), np.float32)
    for other in in_front:
        ox, oy = other.origin
        oh, ow = other.alpha.shape[:2]
        ix1, iy1, ix2, iy2 = max(left, ox), max(top, oy), min(right, ox + ow), min(bottom, oy + oh)
        if ix2 > ix1 and iy2 > iy1:
            seen[iy1 - top : iy2 - top, ix1 - left : ix2 - left] *= 1 - other.alpha[iy1 - oy : iy2 - oy,
                                                                                   ix1 - ox : ix2 - ox]
    return float(seen.mean() * inside / area)


def render(base: np.ndarray, people: Sequence[tuple[PersonSpec, PhotoFace]], frames: int,
           size: tuple[int, int]) -> Iterator[tuple[np.ndarray, list[MotRow]]]:
    """Each frame (RGB uint8) and its ground-truth rows; track ids are positions in ``people`` from 1."""
    masks = [face_mask(face.image.shape[:2], face.box) for _, face in people]
    # Depth order: larger z in front; equal z keeps list order, so later people are drawn over earlier ones.
    order = sorted(range(len(people)), key=lambda i: people[i][0].z)
    still = all(spec.end is None and spec.size[0] == spec.size[1] and spec.frames is None for spec, _ in people)
    cached: tuple[np.ndarray, list[MotRow]] | None = None
    for frame in range(1, frames + 1):
        if still and cached is not None:  # nothing moves: every frame is the first one, bit for bit
            yield cached[0], [MotRow(frame, r.track_id, r.x, r.y, r.w, r.h, r.conf, r.label, r.vis) for r in cached[1]]
            continue
        canvas = base.astype(np.float32)
        layers: list[_Layer] = []
        for i in order:
            spec, face = people[i]
            where = spec.at(frame, frames)
            if where is None:
                continue
            box, (ox, oy), alpha, colour = _warp(face, masks[i], *where, size)
            layers.append(_Layer(i + 1, box, (ox, oy), alpha, colour))
            if alpha.size:
                region = canvas[oy : oy + alpha.shape[0], ox : ox + alpha.shape[1]]
                region += alpha[..., None] * (colour - region)
        image = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
        rows = []
        for k, layer in enumerate(layers):
            x1, y1, x2, y2 = (float(v) for v in layer.box)
            cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(size[0])), min(y2, float(size[1]))
            if cx2 <= cx1 or cy2 <= cy1:
                continue  # wholly outside the frame: not in the ground truth
            vis = _visibility(layer, layers[k + 1 :], size)
            # 0.01 px and 0.001 visibility are far below what a detector resolves, and keep the files readable.
            rows.append(MotRow(frame, layer.track_id, round(cx1, 2), round(cy1, 2), round(cx2 - cx1, 2),
                               round(cy2 - cy1, 2), 1.0, FACE_LABEL, round(vis, 3)))
        rows.sort(key=lambda r: r.track_id)
        if still:
            cached = (image, rows)
        yield image, rows


def _open_writer(path: Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    # mp4v (MPEG-4 part 2) is in every OpenCV wheel's FFmpeg and reads back with cv2.VideoCapture; MJPG for .avi.
    fourcc = {".mp4": "mp4v", ".m4v": "mp4v", ".avi": "MJPG"}.get(path.suffix.lower())
    if fourcc is None:
        raise DataError(f"cannot write video {path}", [Problem(path, "use a .mp4 (mp4v) or .avi (MJPG) file name")])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(fps), size)
    if not writer.isOpened():
        raise DataError(f"cannot write video {path}", [Problem(path, f"OpenCV could not open a {fourcc} writer")])
    return writer


def detectable(face: PhotoFace, width: float, base: np.ndarray, where: tuple[float, float],
               detector: FaceDetector) -> bool:
    """Whether the detector finds ``face`` pasted ``width`` wide at ``where`` on ``base`` (IoU ≥ 0.5 with its
    ground-truth box).

    The whole frame is searched, not the face's neighbourhood: the detector's windows sit on a grid fixed to
    the image's corner, and the same face can be found at one offset from it and missed at another.
    """
    from finegrain.boxes import iou_matrix

    spec = PersonSpec(start=where, size=(width, width))
    image, rows = next(render(base, [(spec, face)], 1, (base.shape[1], base.shape[0])))
    found = np.array([f.box for f in detector.detect(image)]).reshape(-1, 4)
    return bool(rows) and float(iou_matrix(np.array([rows[0].box]), found).max(initial=0.0)) >= 0.5


def _inside(where: tuple[float, float, float] | None, shape: tuple[int, ...]) -> bool:
    if where is None:
        return False
    cx, cy, width = where
    return width / 2 <= cx <= shape[1] - width / 2 and width / 2 <= cy <= shape[0] - width / 2


def choose_photos(specs: Sequence[PersonSpec], detector: FaceDetector, rng: np.random.Generator,
                  lfw_root: str | Path = LFW_ROOT, min_photos: int = 4, base: np.ndarray | None = None,
                  frames: int = 1, tries: int = 3) -> list[PhotoFace]:
    """A calibrated photo for every person: the given one, or one of the given (or a random) person's photos
    in which the detector finds the face. Random people are distinct and have at least ``min_photos`` photos,
    so a test can still build a gallery from their other ones.

    With ``base`` (the background), a photo left to chance must also be found by the detector once pasted, at
    the first and last place and size where the person is wholly in view: the videos test tracking, and a face
    the detector never finds (a hand over the chin, a strong profile) would test nothing. ``tries``: photos
    tried per random person.
    """
    taken = {s.name for s in specs if s.name}
    candidates: list[str] | None = None
    chosen = []

    def usable(path: Path, spec: PersonSpec) -> PhotoFace | None:
        face = calibrate_photo(path, detector)
        if face is None or base is None:
            return face
        first, last = spec.frames or (1, frames)
        inside = [f for f in range(first, last + 1) if _inside(spec.at(f, frames), base.shape)]
        # The first and last frame where the whole face is in view: entering and leaving are not checked.
        for frame in sorted({inside[0], inside[-1]}) if inside else []:
            cx, cy, width = spec.at(frame, frames)
            if not detectable(face, width, base, (cx, cy), detector):
                return None
        return face

    for spec in specs:
        if spec.photo is not None:
            face = calibrate_photo(spec.photo, detector)  # the caller's choice: calibrated, never second-guessed
            if face is None:
                raise DataError("no usable face photo", [Problem(spec.photo, "the face detector finds no face "
                                                                              "near the middle of this photo")])
            chosen.append(face)
            continue
        if spec.name:
            names, per_name = [spec.name], None
        else:
            if candidates is None:
                candidates = [n for n in people_with_photos(lfw_root, min_photos) if n not in taken]
            names, per_name = [candidates[i] for i in rng.permutation(len(candidates))], tries
        face = None
        for name in names:
            photos = person_photos(lfw_root, name)
            for j in rng.permutation(len(photos))[:per_name]:
                face = usable(photos[j], spec)
                if face is not None:
                    break
            if face is not None:
                taken.add(name)
                if candidates is not None and name in candidates:
                    candidates.remove(name)
                break
        if face is None:
            raise DataError("no usable face photo", [Problem(Path(lfw_root) / (spec.name or "*"),
                                                             "the face detector finds no face in these photos")])
        chosen.append(face)
    return chosen


def make_video(
    path: str | Path,
    people: Sequence[PersonSpec] | None,
    scene: str | Path | None = None,
    frames: int = 100,
    size: tuple[int, int] = (640, 480),
    fps: float = 25.0,
    seed: int = 0,
    lfw_root: str | Path = LFW_ROOT,
    scene_root: str | Path = SCENE_ROOT,
    detector: FaceDetector | None = None,
) -> GroundTruth:
    """Write a synthetic video of ``people`` (None: two random walkers) to ``path`` (``.mp4`` or ``.avi``).

    ``scene`` is an image file, or a file name in ``scene_root``; None: a scene chosen by ``seed`` among those
    at least half the frame size. Names, photos and the scene left open are drawn from ``seed`` alone, so the
    same arguments give the same video. ``detector`` (default: the bundled one) calibrates the ground truth,
    and photos left to chance are ones it finds once pasted (see :func:`choose_photos`).
    Returns the ground truth; call its ``write()`` to save it beside the video.
    """
    path = Path(path)
    if frames < 1:
        raise ValueError("a video needs at least one frame")
    rng = np.random.default_rng(seed)
    if people is None:
        people = random_people(2, frames, size, seed=seed)
    if detector is None:
        from finegrain.detect.faces import FaceDetector

        detector = FaceDetector.load()
    if scene is None:
        options = scene_paths(scene_root, (size[0] // 2, size[1] // 2))
        scene = options[int(rng.integers(len(options)))]
    else:
        scene = Path(scene)
        if not scene.exists() and (Path(scene_root) / scene).exists():
            scene = Path(scene_root) / scene
    base = background(scene, size)
    faces = choose_photos(people, detector, rng, lfw_root, base=base, frames=frames)

    path.parent.mkdir(parents=True, exist_ok=True)
    # The writer needs the real extension to pick the container, so the temporary file keeps it.
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    writer = _open_writer(tmp, fps, size)
    rows: list[MotRow] = []
    try:
        for image, frame_rows in render(base, list(zip(people, faces)), frames, size):
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            rows += frame_rows
        writer.release()
        os.replace(tmp, path)
    finally:
        writer.release()
        if tmp.exists():
            tmp.unlink()
    names = {i + 1: face.path.parent.name for i, face in enumerate(faces)}
    return GroundTruth(path, frames, size, fps, rows, names, {i + 1: f.path for i, f in enumerate(faces)}, scene)


def crossing_people(frames: int, size: tuple[int, int] = (640, 480), near: float = 110.0, far: float = 70.0,
                    span: float = 0.4, names: tuple[str | None, str | None] = (None, None)) -> list[PersonSpec]:
    """Two people crossing at the frame centre half-way through: track 1 (farther, smaller) walks left to
    right, track 2 (nearer, larger, drawn in front) right to left, each covering ``span`` of the frame width,
    so track 2 hides track 1 for several frames.

    With the defaults in a 60-frame, 640 px video the pair close at ≈ 9 px a frame and track 1 is less than
    10 % visible for about 6 frames; longer videos make longer occlusions.
    """
    w, h = size
    cx, cy = w / 2, h / 2
    half = span * w / 2
    return [
        PersonSpec(start=(cx - half, cy + 0.04 * h), end=(cx + half, cy - 0.04 * h), size=(far, far), z=0,
                   name=names[0]),
        PersonSpec(start=(cx + half, cy), end=(cx - half, cy), size=(0.95 * near, near), z=1, name=names[1]),
    ]


def random_people(n: int, frames: int, size: tuple[int, int] = (640, 480), seed: int = 0,
                  face_sizes: tuple[float, float] = (40.0, 120.0)) -> list[PersonSpec]:
    """``n`` people on random curved paths that keep the face box inside the frame, each growing or shrinking
    by up to a third, in random depth order."""
    rng = np.random.default_rng([seed, 1])  # apart from make_video's stream (names, photos, scene) for the same seed
    w, h = size
    out = []
    for z in rng.permutation(n):
        s0 = float(rng.uniform(*face_sizes))
        s1 = float(np.clip(s0 * rng.uniform(0.75, 1.33), *face_sizes))
        margin = max(s0, s1) / 2 + 2

        def point(margin: float = margin) -> tuple[float, float]:
            return (float(rng.uniform(margin, w - margin)), float(rng.uniform(margin, h - margin)))

        start, end = point(), point()
        mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        via = point() if rng.random() < 0.5 else None
        if via is not None:  # a gentle bend: the via point a quarter of the way from the midpoint to a random one
            via = (mid[0] + 0.25 * (via[0] - mid[0]), mid[1] + 0.25 * (via[1] - mid[1]))
        out.append(PersonSpec(start=start, end=end, via=via, size=(s0, s1), z=int(z)))
    return out
