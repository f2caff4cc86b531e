"""Face models take photos: the main face cropped the same way in training (the decode cache) and in use."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from finegrain.data import prepare
from finegrain.data.cache import DecodeCache
from finegrain.data.images import resize_square
from finegrain.data.records import Record
from finegrain.detect.faces import Face, crop_face
from finegrain.detect.main_face import MainFaceCropper


class FakeDetector:
    """Faces at fixed boxes for images whose top-left pixel is bright, none otherwise."""

    def detect(self, image):
        if image[0, 0, 0] < 128:
            return []
        return [Face((10.0, 10.0, 30.0, 30.0), 0.9), Face((40.0, 20.0, 90.0, 70.0), 0.8)]


def _photo(path, bright: bool, seed: int):
    img = np.random.default_rng(seed).integers(0, 255, (100, 120, 3), dtype=np.uint8)
    img[0, 0] = 255 if bright else 0
    cv2.imwrite(str(path), img)  # PNG: lossless, so the crop oracle below is exact
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_the_largest_face_is_cropped_and_a_faceless_photo_kept_whole(tmp_path):
    cropper = MainFaceCropper(0.2, detector=FakeDetector())
    face = _photo(tmp_path / "a.png", True, 0)
    crop, found = cropper.crop(face, 32)
    assert found and np.array_equal(crop, crop_face(face, (40, 20, 90, 70), 0.2, 32))  # the larger box
    plain = _photo(tmp_path / "b.png", False, 1)
    whole, found = cropper.crop(plain, 32)
    assert not found and np.array_equal(whole, resize_square(plain, 32))


def test_cache_rows_are_crops_kept_apart_from_plain_rows_and_prepare_notes_faceless(tmp_path):
    images = [_photo(tmp_path / f"{i}.png", bright=i != 2, seed=i) for i in range(4)]
    cropper = MainFaceCropper(0.2, detector=FakeDetector())
    cache = tmp_path / "cache"
    for _ in range(2):  # the second load is served from the cache, with the same answer
        loaded = DecodeCache(cache, 32, crop=cropper).load([tmp_path / f"{i}.png" for i in range(4)], progress=False)
        assert np.array_equal(loaded[0], crop_face(images[0], (40, 20, 90, 70), 0.2, 32))
        assert np.array_equal(loaded[2], resize_square(images[2], 32))
        assert [p.name for p in loaded.without_face] == ["2.png"]
    plain = DecodeCache(cache, 32).load([tmp_path / "0.png"], progress=False)
    assert np.array_equal(plain[0], resize_square(images[0], 32)) and not plain.without_face
    records = [Record(tmp_path / f"{i}.png", label=f"p{i % 2}") for i in range(4)]
    data = prepare(records, 32, cache_dir=cache, faces=cropper, progress=False)
    assert any("no face found in 1 image of 4" in note and "2.png" in note for note in data.notes)


def test_a_face_model_crops_photos_in_every_use(tmp_path, class_folder_factory):
    """Trained with --faces, the model records the margin; its encoder crops each photo's main face."""
    from finegrain.config import TrainConfig
    from finegrain.encoders import load_encoder
    from finegrain.train.run import train

    data = class_folder_factory(tmp_path / "photos", classes=3, per_class=3, size=48)
    out = tmp_path / "run"
    train(TrainConfig(data=str(data), out=str(out), faces=True, epochs=1, image_size=32, val=0, p=3, k=2,
                      progress=False, workers=0), quiet=True, tensorboard=False)
    encoder = load_encoder(out)
    assert encoder.face_cropper is not None and encoder.face_cropper.margin == pytest.approx(0.2)
    assert encoder.manifest["preprocessing"]["faces"] == {"margin": 0.2}
    encoder.face_cropper._detector = FakeDetector()
    photo = _photo(tmp_path / "face.png", True, 5)
    expected = encoder.encode_array(crop_face(photo, (40, 20, 90, 70), 0.2, 32)[None])
    assert np.allclose(encoder.encode_files([tmp_path / "face.png"], progress=False).vectors, expected, atol=1e-6)
