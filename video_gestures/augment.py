"""The original's Albumentations list, applied with the same random parameters to every frame of a clip.

Horizontal flip (switch it off for direction-dependent classes such as swipe left/right); optical or grid
distortion 50%; brightness/contrast or colour jitter 80%; Gaussian or ISO noise 60%; motion or Gaussian blur
60%; resize (640 in the original). Albumentations' `images` target draws the parameters once per call, so a
clip is transformed as one: a flip flips every frame, a brightness change is the same in every frame.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def clip_augmentation(size: int = 640, flips: bool = True, seed: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """A function (T, H, W, 3) uint8 → (T, size, size, 3) uint8 with one draw of parameters per clip."""
    import albumentations as A

    transform = A.Compose([
        A.HorizontalFlip(p=0.5 if flips else 0.0),
        A.OneOf([A.OpticalDistortion(), A.GridDistortion()], p=0.5),
        A.OneOf([A.RandomBrightnessContrast(), A.ColorJitter()], p=0.8),
        A.OneOf([A.GaussNoise(), A.ISONoise()], p=0.6),
        A.OneOf([A.MotionBlur(), A.GaussianBlur()], p=0.6),
        A.Resize(size, size),
    ], seed=seed)

    def augment(clip: np.ndarray) -> np.ndarray:
        return np.asarray(transform(images=np.ascontiguousarray(clip))["images"])

    return augment
