"""Body keypoint sequences per clip, from pose_smoothing's MediaPipe Pose person follower, cached to disk.

For each clip: frames are upscaled (the UCF101 frames are 64 px; MediaPipe and the HOG people
detector need more), `pose_smoothing.follow.PersonFollower` picks the central person (HOG boxes,
largest then most central) and follows them through the clip; low-visibility landmarks become gaps
and short gaps are filled by `pose_smoothing.gaps.fill_array`. Each frame is then normalised: x, y
relative to the centre of the visible body, divided by the body's size (so position and scale in the
picture do not matter), plus visibility. A frame with nobody is all zeros, so the sequence model sees
"no person" rather than a made-up pose; `detected` records which frames had one.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from action_recognition.features import CACHE_ROOT, ClipCache
from pose_smoothing.data import LANDMARK_INDEX, NUM_LANDMARKS
from pose_smoothing.gaps import fill_array

KEYPOINT_CACHE = CACHE_ROOT / "keypoints"
FEATURES_PER_FRAME = NUM_LANDMARKS * 3            # x, y, visibility
TORSO = [LANDMARK_INDEX[n] for n in ("LEFT_SHOULDER", "RIGHT_SHOULDER", "LEFT_HIP", "RIGHT_HIP")]


@dataclass
class ClipKeypoints:
    features: np.ndarray   # (N, T, 99) float32, normalised; zeros where nobody was found
    detected: np.ndarray   # (N, T) bool

    @property
    def clip_detection_rate(self) -> float:
        """Share of clips with a person in at least one frame."""
        return float(self.detected.any(axis=1).mean()) if len(self.detected) else 0.0

    @property
    def frame_detection_rate(self) -> float:
        return float(self.detected.mean()) if self.detected.size else 0.0


def normalise_pose(image: np.ndarray, visibility: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """(T, 33, 3) image landmarks + (T, 33) visibility -> (T, 99): centred, size-normalised x, y and
    visibility per landmark; NaN landmarks and empty frames become 0."""
    frames = image.shape[0]
    out = np.zeros((frames, NUM_LANDMARKS, 3), dtype=np.float32)
    for t in range(frames):
        xy = image[t, :, :2]
        valid = np.isfinite(xy[:, 0]) & (visibility[t] >= threshold)
        if valid.sum() < 3:
            continue
        torso = [i for i in TORSO if valid[i]]
        centre = xy[torso].mean(axis=0) if torso else xy[valid].mean(axis=0)
        extent = xy[valid].max(axis=0) - xy[valid].min(axis=0)
        scale = max(float(extent.max()), 1e-3)
        out[t, valid, :2] = (xy[valid] - centre) / scale
        out[t, valid, 2] = visibility[t, valid]
    return out.reshape(frames, FEATURES_PER_FRAME)


class KeypointExtractor:
    """One PersonFollower reused across clips (loading MediaPipe once); its tracking state is cleared
    between clips, so one clip's person never carries into the next."""

    def __init__(self, upscale: int = 256, detect_people: bool = True, max_gap: int = 2, fps: float = 25.0):
        from pose_smoothing.follow import PersonFollower

        self.upscale, self.max_gap = upscale, max_gap
        self.follower = PersonFollower(fps, detect_people=detect_people)

    def _reset(self) -> None:
        # pose_smoothing.follow.PersonFollower has no reset; these are the fields that carry state across frames.
        self.follower.tracker.reset()
        self.follower.target, self.follower.crop_mode, self.follower.missed = None, False, 0

    def __call__(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(T, H, W, 3) uint8 -> (normalised (T, 99), detected (T,))."""
        image, visibility, detected = self.landmarks(frames)
        return normalise_pose(image, visibility), detected

    def landmarks(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(T, H, W, 3) uint8 -> image landmarks (T, 33, 3) in [0, 1] (short gaps filled), visibility (T, 33),
        detected (T,) before filling."""
        import cv2

        self._reset()
        images, visibilities = [], []
        for frame in frames:
            height, width = frame.shape[:2]
            scale = self.upscale / min(height, width)
            if scale > 1:
                frame = cv2.resize(frame, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_CUBIC)
            result = self.follower(np.ascontiguousarray(frame))
            if result is None:
                images.append(np.full((NUM_LANDMARKS, 3), np.nan))
                visibilities.append(np.zeros(NUM_LANDMARKS))
            else:
                images.append(result.image)
                visibilities.append(result.visibility)
        image, visibility = np.array(images), np.array(visibilities)
        detected = np.isfinite(image[:, 0, 0])
        if detected.any() and not detected.all():
            image = fill_array(image, self.max_gap)                      # short gaps, pose_smoothing's rule
            filled = ~detected & np.isfinite(image[:, 0, 0])
            visibility[filled] = 0.5
        return image, visibility, detected

    def close(self) -> None:
        self.follower.close()


def cached_keypoints(sources: Sequence[str], clips: Sequence[np.ndarray], upscale: int = 256,
                     detect_people: bool = True, cache_dir: Path | None = KEYPOINT_CACHE,
                     progress: bool = False) -> ClipKeypoints:
    """Keypoints for every clip through a ClipCache (one file per setting); None = no cache."""
    from tqdm import tqdm

    lengths = "-".join(map(str, sorted({len(c) for c in clips})))
    name = f"keypoints_{upscale}px{'_hog' if detect_people else ''}_{lengths}frames.npz"
    cache = ClipCache(Path(cache_dir) / name if cache_dir is not None else None)

    def compute(indices: list[int]) -> dict[str, np.ndarray]:
        extractor = KeypointExtractor(upscale, detect_people)
        try:
            pairs = [extractor(np.asarray(clips[i])) for i in tqdm(indices, desc="keypoints", unit="clip", disable=not progress)]
        finally:
            extractor.close()
        return {"features": _stack([p[0] for p in pairs]).astype(np.float32), "detected": _stack([p[1] for p in pairs])}

    stored = cache.get(list(sources), compute)
    return ClipKeypoints(stored["features"], stored["detected"].astype(bool))


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    """Stack per-clip arrays; clips of different lengths are zero-padded at the end (no person there)."""
    length = max(len(a) for a in arrays)
    out = np.zeros((len(arrays), length, *arrays[0].shape[1:]), dtype=arrays[0].dtype)
    for i, array in enumerate(arrays):
        out[i, :len(array)] = array
    return out
