"""What cameras do to faces, twice: as random training augmentations, and as fixed test degradations.

FER2013/FER+ faces are 48 px gray crops framed one way. Real faces arrive at every resolution (a face
12-16 px wide in a webcam frame, upscaled), JPEG-compressed, blurred, framed looser or tighter by another
detector, tilted, lit from one side. `robust_augmentation` trains on all of that; `degrade` builds the
benchmark's robustness rows, each kind applied once to every test face with a fixed seed, so a model is
scored on the same degraded faces every time.
"""
from __future__ import annotations

import numpy as np

DEGRADATIONS = ("downscale16", "jpeg20", "crop15", "rotate20")
MAX_SHIFT = MAX_SCALE = 0.15  # crop position and scale: a detector's box against FER's framing
ROTATION_DEGREES = 20


def robust_augmentation():
    """Albumentations pipeline for gray uint8 faces: framing, tilt, resolution, JPEG, blur, lighting, occlusion."""
    import albumentations as A
    import cv2

    return A.Compose([
        A.HorizontalFlip(p=0.5),
        A.Affine(scale=(1 - MAX_SCALE, 1 + MAX_SCALE), translate_percent=(-MAX_SHIFT, MAX_SHIFT),
                 rotate=(-ROTATION_DEGREES, ROTATION_DEGREES), border_mode=1, p=0.9),  # 1 = replicate the edge
        A.OneOf([A.Downscale(scale_range=(0.25, 0.6), p=1.0,  # 12-29 px of detail, back to 48 as a camera's scaler would
                             interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR}),
                 A.GaussianBlur(blur_limit=(3, 5), p=1.0),
                 A.MotionBlur(blur_limit=(3, 7), p=1.0)], p=0.5),
        A.ImageCompression(quality_range=(15, 90), p=0.4),
        A.RandomBrightnessContrast(0.25, 0.25, p=0.7),
        A.RandomGamma(gamma_limit=(60, 160), p=0.3),
        A.RandomShadow(shadow_roi=(0, 0, 1, 1), num_shadows_limit=(1, 1), p=0.1),  # light from one side
        A.CoarseDropout(num_holes_range=(1, 2), hole_height_range=(0.1, 0.25), hole_width_range=(0.1, 0.25), p=0.3),
    ])


def degrade(images: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """A degraded copy of gray faces (N, S, S) uint8: `downscale16` (to 16 px and back), `jpeg20` (quality 20),
    `crop15` (box shifted and scaled by up to 15%), `rotate20` (tilted 20 degrees either way)."""
    import cv2

    if kind not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {kind!r}; choose from {', '.join(DEGRADATIONS)}")
    images = np.asarray(images, dtype=np.uint8)
    rng = np.random.default_rng(seed)
    out = np.empty_like(images)
    for i, face in enumerate(images):
        size = face.shape[0]
        if kind == "downscale16":
            small = cv2.resize(face, (16, 16), interpolation=cv2.INTER_AREA)
            out[i] = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
        elif kind == "jpeg20":
            encoded = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, 20])[1]
            out[i] = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)
        else:
            if kind == "crop15":
                angle, scale = 0.0, 1 + rng.uniform(-MAX_SCALE, MAX_SCALE)
                shift = rng.uniform(-MAX_SHIFT, MAX_SHIFT, size=2) * size
            else:
                angle, scale, shift = float(rng.choice([-1, 1]) * ROTATION_DEGREES), 1.0, np.zeros(2)
            matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
            matrix[:, 2] += shift
            out[i] = cv2.warpAffine(face, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out
