"""Albumentations presets for training; inputs are already size×size rows from the cache."""

from __future__ import annotations

import random

import albumentations as A
import cv2
import numpy as np

from finegrain.errors import ConfigError

PRESETS = ("none", "flip", "light", "heavy")


def _flip(flip: bool) -> list[A.BasicTransform]:
    # Mirroring alone (the plain PyTorch loop's augmentation); with --no-flip it is "none".
    return [A.HorizontalFlip(p=0.5)] if flip else []


def _light(flip: bool) -> list[A.BasicTransform]:
    return [
        *([A.HorizontalFlip(p=0.5)] if flip else []),
        A.Affine(rotate=(-10, 10), scale=(0.9, 1.1), border_mode=cv2.BORDER_REFLECT_101, p=0.5),
        A.ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0.02, p=0.5),
    ]


def _heavy(flip: bool) -> list[A.BasicTransform]:
    # Aimed at small, noisy real-world sets (phone photos, old scans): sensor noise, blur, colour
    # casts, viewpoint and occlusion. Each step is probabilistic so clean images still occur.
    return [
        *([A.HorizontalFlip(p=0.5)] if flip else []),
        A.Affine(
            rotate=(-20, 20),
            shear=(-8, 8),
            translate_percent=(-0.06, 0.06),
            scale=(0.85, 1.15),
            border_mode=cv2.BORDER_REFLECT_101,
            p=0.7,
        ),
        A.Perspective(scale=(0.02, 0.06), keep_size=True, border_mode=cv2.BORDER_REFLECT_101, p=0.3),
        A.ElasticTransform(alpha=20, sigma=5, border_mode=cv2.BORDER_REFLECT_101, p=0.15),
        A.OneOf(
            [A.GaussianBlur(blur_limit=(3, 5)), A.MotionBlur(blur_limit=(3, 7))],
            p=0.3,
        ),
        A.GaussNoise(std_range=(0.02, 0.08), p=0.3),
        A.RGBShift(r_shift_limit=15, g_shift_limit=15, b_shift_limit=15, p=0.3),
        A.HueSaturationValue(hue_shift_limit=8, sat_shift_limit=20, val_shift_limit=15, p=0.3),
        A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
        A.Sharpen(alpha=(0.1, 0.3), lightness=(0.8, 1.0), p=0.2),
        A.CoarseDropout(
            num_holes_range=(1, 4),
            hole_height_range=(0.05, 0.15),
            hole_width_range=(0.05, 0.15),
            fill=0,
            p=0.4,
        ),
    ]


def seed_transform(transform: A.BaseCompose, seed: int) -> None:
    """Reproducible draws from `seed`, through one generator shared by every step.

    Not `A.Compose(seed=...)`/`set_random_seed`: in albumentations 2.0.8 those seed every child
    transform with the same value, so all `p=0.5` steps fire together or not at all.
    """
    seed = int(seed) % 2**63
    transform.set_random_state(np.random.default_rng(seed), random.Random(seed))


def build_augmentation(preset: str, image_size: int, flip: bool = True, seed: int | None = None) -> A.Compose:
    """A Compose for `preset` ("none", "flip", "light", "heavy"); outputs stay image_size×image_size.

    flip=False for classes that mirroring would confuse (left/right flukes, text, chirality).
    """
    if preset not in PRESETS:
        raise ConfigError(f"--augment must be one of {', '.join(PRESETS)}, got {preset!r}")
    steps = {"none": lambda _: [], "flip": _flip, "light": _light, "heavy": _heavy}[preset](flip)
    # The closing Resize is a no-op on cache rows but guarantees the size for any other input.
    transform = A.Compose([*steps, A.Resize(image_size, image_size)])
    if seed is not None:
        seed_transform(transform, seed)
    return transform
