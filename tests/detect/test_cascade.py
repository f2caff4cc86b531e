import numpy as np
import pytest
import torch

from finegrain.detect.cascade import Cascade, CascadeSettings


@pytest.mark.parametrize("size", [24, 48])
def test_mirror_averages_each_window_with_its_mirror_image(size):
    torch.manual_seed(0)
    cascade = Cascade(settings=CascadeSettings(mirror=True))
    windows = torch.rand(5, 1, size, size) * 255
    net = cascade.nets[f"detect{size}"]
    with torch.inference_mode():
        plain = torch.softmax(net(windows), 1)[:, 1]
        mirrored = torch.softmax(net(windows.flip(-1)), 1)[:, 1]
    expected = ((plain + mirrored) / 2).numpy()
    np.testing.assert_allclose(cascade.face_probability(size, windows), expected, rtol=1e-5)
    assert not np.allclose(expected, plain.numpy())  # the mirror image really scores differently
    single = Cascade(dict(cascade.nets), CascadeSettings(mirror=False))
    np.testing.assert_allclose(single.face_probability(size, windows), plain.numpy(), rtol=1e-5)


def test_mirror_changes_nothing_for_symmetric_windows():
    torch.manual_seed(1)
    half = torch.rand(3, 1, 48, 24) * 255
    symmetric = torch.cat([half, half.flip(-1)], dim=-1)
    cascade = Cascade(settings=CascadeSettings(mirror=True))
    single = Cascade(dict(cascade.nets), CascadeSettings(mirror=False))
    np.testing.assert_allclose(cascade.face_probability(48, symmetric), single.face_probability(48, symmetric),
                               rtol=1e-5)
