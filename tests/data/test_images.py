import cv2
import numpy as np
import pytest
from PIL import Image

from finegrain.data.images import ImageError, decode_image, header_size, resize_square

from .conftest import SHARED, jpeg_bytes, noise_image, write_image


def test_convertible_images_decode_to_rgb_uint8(bad_tree):
    for name in bad_tree.convertible:
        img = decode_image(bad_tree.odd / name)
        assert img.dtype == np.uint8, name
        assert img.ndim == 3 and img.shape[2] == 3, name
        expected = (64, 48) if name == "exif6.jpg" else (48, 64)  # orientation 6 turns it upright
        assert img.shape[:2] == expected, name


def test_channel_order_is_rgb(tmp_path):
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 255
    img = decode_image(write_image(tmp_path / "red.png", red))
    assert img[0, 0].tolist() == [255, 0, 0]


def test_16bit_is_scaled_not_clipped(bad_tree):
    img = decode_image(bad_tree.odd / "gray16.png")
    assert img.max() > 200  # 257 * v scaled back to about v, not saturated or zeroed
    assert 0 < img.mean() < 255


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("not_image.jpg", "not an image or unsupported format"),
        ("empty.jpg", "empty file"),
        ("trunc_tail.jpg", "truncated JPEG (no end-of-image marker)"),
        ("trunc_half.jpg", "truncated JPEG (no end-of-image marker)"),
        ("tiny.png", "image too small (4×4, minimum 8 px)"),
    ],
)
def test_broken_images_raise_with_reason(bad_tree, name, reason):
    with pytest.raises(ImageError) as err:
        decode_image(bad_tree.odd / name)
    assert err.value.problem.reason == reason
    assert err.value.problem.path == bad_tree.odd / name
    assert name in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="file not found"):
        decode_image(tmp_path / "nope.jpg")


def test_jpeg_padding_after_end_marker_is_fine(tmp_path):
    data = jpeg_bytes(noise_image(32, 32)) + b"\x00\x00\n"
    assert decode_image(tmp_path / "padded.jpg", data).shape == (32, 32, 3)


def test_truncated_png(tmp_path):
    path = write_image(tmp_path / "a.png", size=(64, 64))
    data = path.read_bytes()
    with pytest.raises(ImageError, match="truncated PNG"):
        decode_image(path, data[:-30])


NO_SCUT = f"real data not available: {SHARED / 'scut-fbp5500'} (the shared folder sits beside the repository)"


@pytest.mark.skipif(not (SHARED / "scut-fbp5500").is_dir(), reason=NO_SCUT)
def test_missing_end_marker_caught_where_opencv_decodes():
    # AF10.jpg without its last two bytes (FF D9) still decodes in OpenCV 4.14.
    data = (SHARED / "scut-fbp5500" / "images" / "AF10.jpg").read_bytes()[:-2]
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None
    with pytest.raises(ImageError, match="truncated JPEG"):
        decode_image(SHARED / "AF10.jpg", data)


def test_size_limits(tmp_path):
    png = write_image(tmp_path / "a.png", size=(20, 30))
    bmp = write_image(tmp_path / "a.bmp", size=(20, 30))  # no header parsing: checked after decoding
    for path in (png, bmp):
        assert decode_image(path, min_side=20).shape == (20, 30, 3)
        with pytest.raises(ImageError, match=r"image too small \(30×20, minimum 21 px\)"):
            decode_image(path, min_side=21)
        with pytest.raises(ImageError, match=r"image too large \(30×20"):
            decode_image(path, max_pixels=599)


def test_header_size(tmp_path):
    img = noise_image(40, 70)
    assert header_size(jpeg_bytes(img)) == (70, 40)
    assert header_size(write_image(tmp_path / "a.png", img).read_bytes()) == (70, 40)
    assert header_size(write_image(tmp_path / "a.bmp", img).read_bytes()) is None
    assert header_size(b"\xff\xd8\xff") is None


def test_reduced_jpeg_decode_keeps_enough_resolution(tmp_path):
    data = jpeg_bytes(noise_image(600, 800))
    full = decode_image(tmp_path / "x.jpg", data)
    reduced = decode_image(tmp_path / "x.jpg", data, target_size=140)
    assert full.shape == (600, 800, 3)
    assert reduced.shape == (150, 200, 3)  # 1/4: the largest scale keeping the short side >= 140
    ref = cv2.resize(full, (140, 140), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(resize_square(reduced, 140).astype(int) - ref).mean() < 3


def test_resize_square():
    img = noise_image(30, 50)
    assert resize_square(img, 30) is not img
    assert resize_square(img, 20).shape == (20, 20, 3)
    assert resize_square(img, 100).shape == (100, 100, 3)
    same = noise_image(16, 16)
    assert resize_square(same, 16) is same
    # Squash, not crop: the left and right edge columns survive.
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, :4] = 255
    assert resize_square(img, 40)[:, 0].min() == 255


def test_pillow_written_formats(tmp_path):
    img = noise_image(24, 24)
    for suffix in ("webp", "tif", "ppm", "bmp"):
        path = tmp_path / f"x.{suffix}"
        Image.fromarray(img).save(path)
        assert decode_image(path).shape == (24, 24, 3), suffix
