import numpy as np
import pytest
import torch

from finegrain.detect.cascade import Cascade
from finegrain.detect.nets import NETS, Detect12, fold_batch_norm
from finegrain.detect.windows import grid_windows, level_patches


@pytest.fixture
def trained_looking_12net():
    torch.manual_seed(0)
    net = Detect12()
    for module in net.modules():  # non-trivial batch-norm statistics, as after training
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return net.eval()


@pytest.mark.parametrize("shape", [(12, 12), (13, 13), (40, 57), (101, 64)])
def test_fully_convolutional_12net_equals_the_12net_on_every_window(trained_looking_12net, shape):
    image = torch.rand(1, 1, *shape) * 255
    with torch.no_grad():
        dense = trained_looking_12net.score_map(image)[0]  # (2, rows, cols)
        rows, cols = np.meshgrid(np.arange(dense.shape[1]), np.arange(dense.shape[2]), indexing="ij")
        rows, cols = rows.ravel(), cols.ravel()
        windows = torch.stack([image[0, :, 2 * r : 2 * r + 12, 2 * c : 2 * c + 12] for r, c in zip(rows, cols)])
        one_by_one = trained_looking_12net(windows)
    assert dense.shape[1:] == ((shape[0] - 12) // 2 + 1, (shape[1] - 12) // 2 + 1)
    torch.testing.assert_close(dense[:, rows, cols].T, one_by_one, rtol=1e-5, atol=1e-5)
    # The fast path (folded batch norm, channels-last pooling) gives the same probabilities.
    torch.testing.assert_close(trained_looking_12net.face_probability_map(image)[0],
                               torch.softmax(dense, dim=0)[1], rtol=1e-4, atol=1e-5)
    # The vectorised patch extraction cuts the very same windows.
    torch.testing.assert_close(level_patches(image, rows, cols), windows)


def test_grid_windows_map_cells_back_to_original_pixels():
    boxes = grid_windows(np.array([0, 3]), np.array([5, 0]), scale=0.5)
    np.testing.assert_allclose(boxes, [[20, 0, 44, 24], [0, 12, 24, 36]])


@pytest.mark.parametrize("name", sorted(NETS))
def test_each_net_gives_the_right_outputs_and_gradients(name):
    net = NETS[name]()
    size = int(name[-2:])
    x = (torch.rand(4, 1, size, size) * 255).requires_grad_()
    out = net(x)
    assert out.shape == (4, 2 if name.startswith("detect") else 45)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(NETS))
def test_window_nets_refuse_the_wrong_size(name):
    size = int(name[-2:])
    with pytest.raises(ValueError, match=f"{size}×{size}"):
        NETS[name]()(torch.zeros(1, 1, size + 4, size + 4))


@pytest.mark.parametrize("name", ["detect24", "detect48"])
def test_window_contrast_ignores_brightness_and_fixed_normalisation_does_not(name):
    torch.manual_seed(0)
    size = int(name[-2:])
    windows = torch.rand(4, 1, size, size) * 150 + 20
    contrast, fixed = NETS[name]().eval(), NETS[name](window_contrast=False).eval()
    with torch.no_grad():
        torch.testing.assert_close(contrast(windows + 60), contrast(windows), rtol=0, atol=1e-4)
        assert not torch.allclose(fixed(windows + 60), fixed(windows), atol=1e-2)
        # contrast is normalised too, up to the 4-grey-level floor (window std here is about 43)
        torch.testing.assert_close(contrast(2 * windows), contrast(windows), rtol=0, atol=0.05)


def _with_trained_looking_batch_norm(net: torch.nn.Module) -> torch.nn.Module:
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


@pytest.mark.parametrize("name", sorted(NETS))
def test_folding_batch_norm_keeps_every_output(name):
    torch.manual_seed(0)
    net = _with_trained_looking_batch_norm(NETS[name]())
    folded = fold_batch_norm(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # the original is untouched
    size = int(name[-2:])
    x = torch.rand(6, 1, size, size) * 255
    with torch.inference_mode():
        torch.testing.assert_close(folded(x), net(x), rtol=1e-4, atol=1e-4)


def test_the_cascade_refolds_a_net_whose_weights_changed():
    torch.manual_seed(0)
    cascade = Cascade()
    windows = torch.rand(8, 1, 24, 24) * 255
    before = cascade.face_probability(24, windows)
    assert cascade._inference_net("detect24") is cascade._inference_net("detect24")  # cached
    with torch.no_grad():
        cascade.nets["detect24"].head[-1].bias.add_(torch.tensor([-3.0, 3.0]))  # in place, as an optimiser step
    after = cascade.face_probability(24, windows)
    assert (after > before).all()
