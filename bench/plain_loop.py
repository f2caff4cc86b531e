"""The baseline every default-path benchmark is measured against: what a user would write instead.

A deliberately ordinary PyTorch loop: a small batch-norm CNN (four conv-BN-ReLU-pool blocks), Adam at
1e-3, random horizontal flips, the same input size as finegrain's run, trained until a wall-clock
budget is spent. Identities are learned as a softmax classifier whose pooled features are the
embedding (the usual first attempt); ratings with the Huber loss. No validation, no schedule, no tricks.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def cnn(outputs: int) -> nn.Sequential:
    def block(i: int, o: int) -> list[nn.Module]:
        return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(*block(3, 32), *block(32, 64), *block(64, 128), *block(128, 256),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, outputs))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5)


def train(images: np.ndarray, targets: np.ndarray, task: str, seconds: float, seed: int = 0,
          batch: int = 64) -> nn.Sequential:
    """Train until ``seconds`` have passed (whole batches); ``task`` is "embed" (class ids) or "score"."""
    torch.manual_seed(seed)
    x = to_tensor(images)
    classes = int(targets.max()) + 1 if task == "embed" else 1
    y = torch.as_tensor(targets, dtype=torch.long if task == "embed" else torch.float32)
    model = cnn(classes)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    end = time.time() + seconds
    while time.time() < end:
        for idx in torch.randperm(len(x)).split(batch):
            xb = x[idx]
            flip = torch.rand(len(xb)) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            out = model(xb)
            loss = F.cross_entropy(out, y[idx]) if task == "embed" else F.huber_loss(out[:, 0], y[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if time.time() >= end:
                break
    return model.eval()


@torch.no_grad()
def encode(model: nn.Sequential, images: np.ndarray, task: str) -> np.ndarray:
    """Unit-length pooled features (before the classifier) for embeddings; the output for scores."""
    x = to_tensor(images)
    out = []
    for chunk in x.split(256):
        if task == "embed":
            out.append(F.normalize(model[:-1](chunk), dim=1))
        else:
            out.append(model(chunk)[:, 0])
    return torch.cat(out).numpy()
