import numpy as np
import pytest
import torch

from finegrain.detect.windows import crop_windows, octaves, pyramid_scales, to_grey


def test_a_pixel_aligned_box_of_the_output_size_is_cut_exactly():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (60, 80), dtype=np.uint8)
    out = crop_windows(octaves(image), np.array([[10, 5, 34, 29], [0, 0, 24, 24]]), 24)
    torch.testing.assert_close(out[0, 0], torch.from_numpy(image[5:29, 10:34]).float(), rtol=0, atol=2e-3)
    torch.testing.assert_close(out[1, 0], torch.from_numpy(image[:24, :24]).float(), rtol=0, atol=2e-3)


def test_large_boxes_are_read_from_a_coarser_octave_without_aliasing():
    # Vertical stripes 1 pixel wide average to mid-grey; naive bilinear sampling of a 8× shrink would not.
    image = np.tile(np.array([0, 255], dtype=np.uint8), (256, 128))
    out = crop_windows(octaves(image), np.array([[0, 0, 192, 192]]), 24)
    assert abs(out.mean().item() - 127.5) < 3 and out.std().item() < 10


def test_windows_outside_the_image_repeat_the_border():
    image = np.full((30, 30), 200, dtype=np.uint8)
    out = crop_windows(octaves(image), np.array([[-20, -20, 4, 4]]), 12)
    assert torch.all(out == 200)


def test_pyramid_reaches_from_min_face_to_the_whole_image():
    scales = pyramid_scales(480, 640, min_face=24, factor=0.5)
    assert scales[0] == pytest.approx(0.5) and 480 * scales[-1] >= 12 > 480 * scales[-1] * 0.5


def test_to_grey_accepts_colour_and_grey():
    colour = np.zeros((4, 4, 3), dtype=np.uint8)
    colour[..., 0] = 255
    assert to_grey(colour).shape == (4, 4) and to_grey(colour)[0, 0] == 76  # 0.299 · 255
    grey = colour[..., 0]
    assert to_grey(grey) is grey  # already grey: passed through, not copied
