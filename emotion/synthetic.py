"""Generated cartoon faces for the demo and the tests: a face whose mouth, brows and eyes depend on the
emotion, on a random colour background, so a tiny model can learn them in seconds. Plus photos that
installed packages ship (matplotlib's Grace Hopper portrait, ultralytics' zidane.jpg and bus.jpg)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from emotion.data import CLASSES


def draw_face(emotion: str, size: int = 160, rng: np.random.Generator | None = None) -> np.ndarray:
    """An RGB uint8 cartoon face showing `emotion`, with random position, scale, colours and noise."""
    import cv2

    if emotion not in CLASSES:
        raise ValueError(f"unknown emotion {emotion!r}")
    rng = rng or np.random.default_rng()
    image = np.full((size, size, 3), rng.integers(30, 225, 3), dtype=np.uint8)
    cx, cy = size // 2 + int(rng.integers(-size // 16, size // 16 + 1)), size // 2 + int(rng.integers(-size // 16, size // 16 + 1))
    r = int(size * rng.uniform(0.3, 0.38))
    skin = tuple(int(v) for v in rng.integers(150, 245, 3))
    cv2.ellipse(image, (cx, cy), (int(r * 0.85), r), 0, 0, 360, skin, -1, cv2.LINE_AA)
    ink = (25, 25, 25)
    eye_y, eye_dx = cy - r // 4, int(r * 0.38)
    eye_open = {"surprise": 0.16, "fear": 0.15, "sad": 0.06, "contempt": 0.06, "disgust": 0.05}.get(emotion, 0.1)
    for side in (-1, 1):
        cv2.ellipse(image, (cx + side * eye_dx, eye_y), (int(r * 0.12), max(int(r * eye_open), 1)), 0, 0, 360, ink, -1, cv2.LINE_AA)
        # Brows: anger/disgust slant down to the middle, sad/fear up to the middle, surprise raised high.
        tilt = {"anger": 0.18, "disgust": 0.12, "sad": -0.15, "fear": -0.12, "uncertain": 0.08 * side}.get(emotion, 0.0)
        lift = 0.42 if emotion == "surprise" else 0.3
        inner = (cx + side * int(r * 0.15), eye_y - int(r * (lift - tilt)))
        outer = (cx + side * int(r * 0.55), eye_y - int(r * (lift + tilt)))
        cv2.line(image, inner, outer, ink, max(size // 60, 1), cv2.LINE_AA)
    mouth_y, mouth_w = cy + int(r * 0.45), int(r * 0.4)
    thickness = max(size // 50, 1)
    if emotion == "happy":
        cv2.ellipse(image, (cx, mouth_y - r // 8), (mouth_w, r // 5), 0, 10, 170, ink, thickness + 1, cv2.LINE_AA)
    elif emotion in ("sad", "anger"):
        cv2.ellipse(image, (cx, mouth_y + r // 8), (mouth_w, r // 6), 0, 190, 350, ink, thickness, cv2.LINE_AA)
    elif emotion in ("surprise", "fear"):
        cv2.ellipse(image, (cx, mouth_y), (r // 6 if emotion == "surprise" else r // 4, r // 5), 0, 0, 360, ink, -1, cv2.LINE_AA)
    elif emotion == "contempt":
        cv2.line(image, (cx - mouth_w, mouth_y), (cx + mouth_w, mouth_y - r // 6), ink, thickness, cv2.LINE_AA)
    elif emotion == "disgust":
        points = np.array([[cx - mouth_w, mouth_y], [cx - mouth_w // 3, mouth_y - r // 8], [cx + mouth_w // 3, mouth_y + r // 10],
                           [cx + mouth_w, mouth_y - r // 10]], np.int32)
        cv2.polylines(image, [points], False, ink, thickness, cv2.LINE_AA)
    elif emotion == "uncertain":
        cv2.line(image, (cx - mouth_w, mouth_y + r // 12), (cx + mouth_w, mouth_y - r // 12), ink, thickness, cv2.LINE_AA)
    else:  # neutral
        cv2.line(image, (cx - mouth_w, mouth_y), (cx + mouth_w, mouth_y), ink, thickness, cv2.LINE_AA)
    noise = rng.normal(0, 6, image.shape)
    return np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def package_photos() -> list[Path]:
    """Real photos with faces that installed packages ship (works offline)."""
    import matplotlib

    photos = [Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"]
    try:
        import importlib.util

        spec = importlib.util.find_spec("ultralytics")
        if spec and spec.origin:
            assets = Path(spec.origin).parent / "assets"
            photos += [assets / "zidane.jpg", assets / "bus.jpg"]
    except ImportError:
        pass
    try:  # scikit-image's astronaut, when scikit-image is installed
        import skimage

        photos.append(Path(skimage.__file__).parent / "data" / "astronaut.png")
    except ImportError:
        pass
    return [p for p in photos if p.is_file()]


def write_competition_folder(root: str | Path, per_class: int = 12, n_test: int = 20, size: int = 160, seed: int = 0,
                             extra_test_photos: list[Path] | None = None) -> Path:
    """A tiny competition layout: train/<emotion>/<n>.jpg, test_kaggle/<n>.jpg, sample_submission.csv."""
    import cv2

    from core.io import write_image

    root = Path(root)
    rng = np.random.default_rng(seed)
    for emotion in CLASSES:
        for i in range(per_class):
            write_image(root / "train" / emotion / f"{i}.jpg", draw_face(emotion, size, rng))
    test_names = []
    for i in range(n_test):
        write_image(root / "test_kaggle" / f"{i}.jpg", draw_face(CLASSES[i % len(CLASSES)], size, rng))
        test_names.append(f"{i}.jpg")
    for photo in extra_test_photos or []:
        name = f"{len(test_names)}.jpg"
        image = cv2.imread(str(photo))
        cv2.imwrite(str(root / "test_kaggle" / name), image)
        test_names.append(name)
    with open(root / "sample_submission.csv", "w", encoding="utf-8") as handle:
        handle.write("image_path,emotion\n" + "".join(f"{name},neutral\n" for name in sorted(test_names)))
    return root


def write_face_video(target: str | Path, frames: int = 30, size: tuple[int, int] = (640, 480), fps: float = 15.0,
                     photo: Path | None = None, seed: int = 0) -> Path:
    """A 640x480 video: a moving face (a package photo when given, else a cartoon) with a few faceless frames."""
    from core.io import AtomicVideoWriter, read_image
    import cv2

    rng = np.random.default_rng(seed)
    width, height = size
    face = read_image(photo) if photo is not None else draw_face("happy", 200, rng)
    scale = min(height * 0.8 / face.shape[0], width * 0.6 / face.shape[1])
    face = cv2.resize(face, None, fx=scale, fy=scale)
    with AtomicVideoWriter(target, fps, size) as writer:
        for i in range(frames):
            canvas = np.full((height, width, 3), 40, np.uint8)
            if i % 10 != 9:  # every tenth frame has no face
                x = int((width - face.shape[1]) * (0.5 + 0.4 * np.sin(i / 8)))
                y = (height - face.shape[0]) // 2
                canvas[y:y + face.shape[0], x:x + face.shape[1]] = face
            writer.write(canvas)
    return Path(target)
