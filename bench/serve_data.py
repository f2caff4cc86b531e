"""What ``bench/serve.py`` serves and sends: the model, the two collections, the query photos and group photos.

Everything comes from ``../shared/data`` (LFW photos, CMU-MIT non-face scenes) and is written into the service's
data folder the way the service itself writes collections (``GalleryIndex`` bound to the model), so building is
quick and never part of a measurement.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from finegrain.encoders import Encoder, load_encoder
from finegrain.index.gallery import GalleryIndex, IndexBinding
from finegrain.verification.protocol import THRESHOLD_KEY

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LFW = SHARED / "lfw" / "images"
SCENES = SHARED / "cmu-mit-faces" / "train_non_face_scenes"
NOISE = 0.05  # per-dimension sigma of the Gaussian noise that turns real embeddings into more gallery items
MARKER = "serve-bench.json"  # in DATA: how each collection there was built, so a rerun can reuse it


def untrained_default_model(path: Path) -> dict:
    """Write (or reuse) an untrained model of ``finegrain train``'s default embedding architecture and image size;
    returns what it is. Throughput does not depend on the weights."""
    import torch

    from finegrain.config import TrainConfig
    from finegrain.encoders import Preprocess
    from finegrain.models import save_model
    from finegrain.train.build import build_embedding_model

    cfg = TrainConfig(data="(unused)").validate()  # the defaults a plain `finegrain train DATA` resolves to
    about = {"untrained": True, "backbone": cfg.backbone, "width": cfg.width, "image_size": cfg.image_size,
             "embedding_size": cfg.embedding_size, "pooling": cfg.pooling}
    if not path.exists():
        torch.manual_seed(0)
        save_model(build_embedding_model(cfg).eval(), path, preprocessing=Preprocess(cfg.image_size).to_dict())
    return about


def service_encoder(model: str | Path) -> Encoder:
    """The embedding encoder exactly as ``finegrain serve`` loads it (the stored threshold's TTA, if any)."""
    encoder = load_encoder(model, need="embedding")
    stored = encoder.thresholds.get(THRESHOLD_KEY)
    if stored and list(stored.get("tta") or []) != list(encoder.tta):
        encoder = load_encoder(model, need="embedding", tta=stored.get("tta") or "none")
    return encoder


def lfw_people() -> dict[str, list[Path]]:
    """Every LFW person and their photos, in name order."""
    if not LFW.is_dir():
        raise SystemExit(f"LFW images not found at {LFW} (see ../shared/data/README.md)")
    return {d.name: sorted(d.glob("*.jpg")) for d in sorted(LFW.iterdir()) if d.is_dir()}


def _recipe_matches(data: Path, name: str, recipe: dict) -> bool:
    marker = data / MARKER
    built = json.loads(marker.read_text()).get(name) if marker.exists() else None
    return built == recipe and GalleryIndex.exists(data / "collections" / name)


def _remember(data: Path, name: str, recipe: dict) -> None:
    marker = data / MARKER
    built = json.loads(marker.read_text()) if marker.exists() else {}
    built[name] = recipe
    marker.write_text(json.dumps(built, indent=2) + "\n")


def _write_collection(data: Path, name: str, encoder: Encoder, vectors: np.ndarray, labels: list[str]) -> None:
    """A collection folder as the service writes it; item ids are 32 hex digits, with no stored photos."""
    folder = data / "collections" / name
    if folder.exists():
        print(f"  replacing {folder}", flush=True)
        shutil.rmtree(folder)
    gallery = GalleryIndex(encoder.output_size, binding=IndexBinding.from_model(encoder.path, tta=encoder.tta))
    items = folder / "items"
    gallery.add(vectors, [items / f"{i:032x}.jpg" for i in range(len(vectors))], labels)
    gallery.save(folder, model_source=encoder.path)
    items.mkdir(exist_ok=True)


def build_search_collection(data: Path, name: str, encoder: Encoder, people: dict[str, list[Path]], items: int,
                            real: int, seed: int) -> dict:
    """``items`` unit vectors: ``real`` embedded LFW photos, then noisy copies of them (σ = NOISE per dimension,
    re-normalised); labels are the LFW person names."""
    recipe = {"items": items, "real": real, "seed": seed, "noise": NOISE, "fingerprint": encoder.fingerprint,
              "tta": list(encoder.tta)}
    about = {"items": items, "real_embedded": min(real, items), "noise_sigma": NOISE}
    if _recipe_matches(data, name, recipe):
        print(f"  reusing collection {name!r} ({items:,} items)", flush=True)
        return about
    rng = np.random.default_rng(seed)
    photos = [(person, p) for person, paths in people.items() for p in paths]
    chosen = [photos[i] for i in rng.choice(len(photos), size=min(real, items, len(photos)), replace=False)]
    base = encoder.encode_files([p for _, p in chosen], progress=False).vectors
    reps = rng.integers(0, len(base), size=items - len(base))
    noisy = base[reps] + rng.normal(0.0, NOISE, size=(len(reps), base.shape[1])).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    vectors = np.concatenate([base, noisy]).astype(np.float32)
    labels = [person for person, _ in chosen] + [chosen[i][0] for i in reps]
    _write_collection(data, name, encoder, vectors, labels)
    _remember(data, name, recipe)
    about["real_embedded"] = len(base)
    return about


def pick_people(people: dict[str, list[Path]], count: int, per_person: int, seed: int) -> dict[str, list[Path]]:
    """``count`` people with more than ``per_person`` photos (at least one is left for group photos)."""
    eligible = [name for name, paths in people.items() if len(paths) > per_person]
    if len(eligible) < count:
        raise SystemExit(f"only {len(eligible)} LFW people have more than {per_person} photos; ask for fewer")
    rng = np.random.default_rng(seed + 1)
    return {name: people[name] for name in sorted(rng.choice(eligible, size=count, replace=False))}


def build_people_collection(data: Path, name: str, encoder: Encoder, chosen: dict[str, list[Path]],
                            per_person: int, seed: int) -> dict:
    """The first ``per_person`` photos of each chosen person, labelled with their name."""
    recipe = {"people": sorted(chosen), "per_person": per_person, "seed": seed, "fingerprint": encoder.fingerprint,
              "tta": list(encoder.tta)}
    about = {"people": len(chosen), "items": len(chosen) * per_person}
    if _recipe_matches(data, name, recipe):
        print(f"  reusing collection {name!r} ({about['items']:,} items)", flush=True)
        return about
    photos = [(person, p) for person, paths in chosen.items() for p in paths[:per_person]]
    vectors = encoder.encode_files([p for _, p in photos], progress=False).vectors
    _write_collection(data, name, encoder, vectors, [person for person, _ in photos])
    _remember(data, name, recipe)
    return about


def query_photos(people: dict[str, list[Path]], count: int, seed: int) -> list[bytes]:
    """``count`` LFW JPEG files, as uploaded (bytes unchanged)."""
    rng = np.random.default_rng(seed + 2)
    photos = [p for paths in people.values() for p in paths]
    return [photos[i].read_bytes() for i in rng.choice(len(photos), size=min(count, len(photos)), replace=False)]


@dataclass
class GroupPhotos:
    jpegs: list[bytes]
    sizes: list[tuple[int, int]]  # width, height
    pasted: list[int]  # LFW photos pasted into each
    detected: list[int]  # faces the service's detector finds in each


def _scene(scenes: list[Path], rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A random non-face scene, scaled to cover width × height and centre-cropped (BGR)."""
    image = cv2.imread(str(scenes[rng.integers(len(scenes))]), cv2.IMREAD_COLOR)
    scale = max(width / image.shape[1], height / image.shape[0])
    image = cv2.resize(image, (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return np.ascontiguousarray(image[top : top + height, left : left + width])


def group_photos(chosen: dict[str, list[Path]], per_person: int, count: int, seed: int) -> GroupPhotos:
    """``count`` photos of 2–4 people: LFW photos of the chosen people that are not in the collection (so
    identify answers are real look-ups), scaled to 100–200 px and pasted side by side on CMU-MIT non-face scenes
    of 500×250 to 640×480; every photo is checked with the service's face detector."""
    from finegrain.detect.faces import FaceDetector
    from finegrain.serve.uploads import decode_upload

    rng = np.random.default_rng(seed + 3)
    scenes = sorted(SCENES.glob("*.jpg"))
    if not scenes:
        raise SystemExit(f"CMU-MIT non-face scenes not found at {SCENES} (see ../shared/data/README.md)")
    held_out = [p for paths in chosen.values() for p in paths[per_person:]]
    detector = FaceDetector.load()
    out = GroupPhotos([], [], [], [])
    for _ in range(count):
        width, height = int(rng.integers(500, 641)), int(rng.integers(250, 481))
        canvas = _scene(scenes, rng, width, height)
        n = int(rng.integers(2, 5))
        slot = width // n
        for i, k in enumerate(rng.choice(len(held_out), size=n, replace=False)):
            side = int(min(slot, height, 200) * rng.uniform(0.8, 1.0))
            face = cv2.resize(cv2.imread(str(held_out[k]), cv2.IMREAD_COLOR), (side, side),
                              interpolation=cv2.INTER_LINEAR)
            left = i * slot + int(rng.integers(0, slot - side + 1))
            top = int(rng.integers(0, height - side + 1))
            canvas[top : top + side, left : left + side] = face
        jpeg = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
        rgb = decode_upload(jpeg, "group.jpg", 40_000_000)  # as the service decodes it
        out.jpegs.append(jpeg)
        out.sizes.append((width, height))
        out.pasted.append(n)
        out.detected.append(len(detector.detect(rgb)))
    return out
