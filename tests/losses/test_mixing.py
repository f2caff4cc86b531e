import torch
import torch.nn.functional as F

from finegrain.losses.mixing import Mixed, cutmix, mix_batch, mixup


def test_mixup_is_the_convex_combination_with_a_permutation():
    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 4, 4), torch.arange(8)
    m = mixup(x, y, alpha=0.4)
    partner = x[m.partner]  # labels are positions here, so the partner labels are the permutation
    assert torch.allclose(m.images, m.lam * x + (1 - m.lam) * partner, atol=1e-6)
    assert sorted(m.partner.tolist()) == list(range(8))


def test_cutmix_lambda_is_the_share_of_original_pixels():
    torch.manual_seed(3)
    x = torch.zeros(6, 1, 16, 16) + torch.arange(6).view(6, 1, 1, 1).float()
    y = torch.arange(6)
    for _ in range(10):
        m = cutmix(x, y, alpha=1.0)
        own = (m.images == x).float().mean(dim=(1, 2, 3))
        moved = m.partner != y  # a sample paired with itself keeps every pixel
        assert torch.allclose(own[moved], torch.full_like(own[moved], m.lam))


def test_mixed_loss_weights_both_targets_and_off_means_none():
    logits, y, partner = torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), torch.tensor([1, 1, 0, 2])
    m = Mixed(torch.zeros(4), y, partner, 0.3)
    expected = 0.3 * F.cross_entropy(logits, y) + 0.7 * F.cross_entropy(logits, partner)
    assert torch.allclose(m.loss(F.cross_entropy, logits), expected)
    assert mix_batch(torch.zeros(2, 3, 4, 4), torch.arange(2), 0.0, 0.0) is None
