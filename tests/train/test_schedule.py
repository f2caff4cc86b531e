import math

import pytest
import torch

from finegrain.train.schedule import build_scheduler, warmup_cosine


def test_warmup_is_linear_then_cosine_reaches_zero():
    total, warm = 100, 10
    assert [warmup_cosine(s, total, warm) for s in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    assert warmup_cosine(9, total, warm) == pytest.approx(1.0)
    assert warmup_cosine(10, total, warm) == pytest.approx(1.0)
    mid = 10 + 45
    assert warmup_cosine(mid, total, warm) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert warmup_cosine(100, total, warm) == pytest.approx(0.0)


def test_scheduler_drives_the_optimizer():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=2.0)
    sched = build_scheduler(opt, total_steps=4, warmup_steps=2)
    seen = []
    for _ in range(4):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([1.0, 2.0, 2.0, 1.0])
