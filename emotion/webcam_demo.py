"""Live emotion demo: camera (index) or video file -> face box, label, per-class probability bars,
valence-arousal and FPS drawn on each frame; shown in a window, or written to `--output` (headless).

    python -m emotion.webcam_demo --source 0                                # webcam, window (q quits)
    python -m emotion.webcam_demo --source clip.mp4 --output annotated.mp4  # headless, writes a video

A frame without a face is labelled "no face" and classified whole only with --classify-no-face.
A camera that cannot be opened exits with code 2 and a message saying which source failed.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401

import numpy as np  # noqa: E402

from core.cli import InputArgument, ModelArgument, OutputFile, VIDEO_OUTPUT_SUFFIXES, run_main  # noqa: E402
from core.io import AtomicVideoWriter, InputError, open_capture  # noqa: E402
from core.live import capture_frames  # noqa: E402
from core.live import LiveFrame, LiveStage, clear_labels, put_label  # noqa: E402
from core.onnx import BACKENDS  # noqa: E402
from core.weights import released  # noqa: E402

GREEN, WHITE, GREY, RED = (60, 200, 60), (255, 255, 255), (90, 90, 90), (220, 60, 60)


def draw_prediction(rgb: np.ndarray, prediction, fps: float | None) -> np.ndarray:
    """Annotate an RGB frame in place: face box and label, probability bars (top-left), VA and FPS."""
    import cv2

    height, width = rgb.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    clear_labels()   # the only drawer of this frame
    if prediction is not None and prediction.box is not None:
        draw_face(rgb, prediction)
    elif prediction is None or not prediction.face_found:
        cv2.putText(rgb, "no face", (10, height - 16), font, 0.7, RED, 2, cv2.LINE_AA)
    if prediction is not None:
        bar_width, row = min(140, width // 4), 16
        for i, (label, p) in enumerate(prediction.probabilities.items()):
            y = 10 + i * row
            cv2.rectangle(rgb, (80, y), (80 + bar_width, y + row - 4), GREY, 1)
            cv2.rectangle(rgb, (80, y), (80 + int(bar_width * p), y + row - 4),
                          GREEN if label == prediction.label else WHITE, -1)
            cv2.putText(rgb, label, (4, y + row - 5), font, 0.4, WHITE, 1, cv2.LINE_AA)
        y = 26 + len(prediction.probabilities) * row
        cv2.putText(rgb, f"V {prediction.valence:+.2f} A {prediction.arousal:+.2f}", (4, y), font, 0.45, WHITE, 1, cv2.LINE_AA)
    if fps is not None:
        cv2.putText(rgb, f"{fps:.1f} FPS", (width - 110, 24), font, 0.6, WHITE, 2, cv2.LINE_AA)
    return rgb


def draw_face(rgb: np.ndarray, prediction, valence_arousal: bool = False) -> None:
    """A face's box and its label with the probability (and with `valence_arousal`, V and A under the box)."""
    import cv2

    box, font = prediction.box, cv2.FONT_HERSHEY_SIMPLEX
    cv2.rectangle(rgb, (box.x, box.y), (box.x + box.w, box.y + box.h), GREEN, 2)
    viewer = f"#{prediction.viewer} " if prediction.viewer is not None else ""
    text = f"{viewer}{prediction.label} {prediction.confidence:.0%}"
    # core.live.put_label moves a label off any other task's label already on this frame
    put_label(rgb, text, (box.x, max(box.y - 8, 16)), GREEN, 0.7, 2)
    if valence_arousal:
        put_label(rgb, f"V {prediction.valence:+.2f} A {prediction.arousal:+.2f}", (box.x, box.y + box.h + 18), GREEN, 0.5, 2)


class EmotionStage(LiveStage):
    """Each face's emotion with valence-arousal, for the root webcam_demo.py, through the timeline's
    `EmotionTracker`: one identity per viewer (`#1`, `#2` on the labels), faces followed on every frame the stage
    works on (a heavy stage: on light frames only the odd ones) and classified on every `every`-th of them, the
    answer kept in between. A new face is shown from its second frame (a false face seldom comes back)."""

    name = "emotion"
    phase = 1

    def __init__(self, weights: str | Path, detector: str = "mediapipe", threads: int = 2, max_faces: int = 4,
                 every: int = 2, detect_every: float = 1.0):
        from emotion.recognizer import EmotionRecognizer
        from emotion.timeline import EmotionTracker, FaceTracker

        self.recognizer = EmotionRecognizer(weights, detector=detector, threads=threads)
        self.faces = EmotionTracker(self.recognizer, FaceTracker(self.recognizer.detector, detect_every), max_faces)
        self.every, self.looks = max(every, 1), 0
        self.last: list | None = None

    def __call__(self, frame: LiveFrame) -> list:
        if self.last is None or frame.runs(self.phase):
            faces = self.faces.push(frame.rgb, frame.seconds, look=True, classify=self.looks % self.every == 0)
            self.looks += 1
            self.last = [self.recognizer.prediction(f.probabilities, f.va, f.box, f.viewer) for f in faces]
        return self.last

    def draw(self, canvas: np.ndarray, faces: list) -> None:
        for prediction in faces:
            draw_face(canvas, prediction, valence_arousal=True)

    def summary(self, faces: list) -> str:
        if not faces:
            return "emotion: no face"
        first = faces[0]
        more = f" (+{len(faces) - 1} faces)" if len(faces) > 1 else ""
        return f"emotion: {first.label} {first.confidence:.2f}, V {first.valence:+.2f} A {first.arousal:+.2f}{more}"

    def row(self, faces: list) -> dict:
        first = faces[0] if faces else None
        return {"emotion_faces": len(faces), "emotion": first.label if first else "",
                "emotion_p": round(first.confidence, 4) if first else float("nan"),
                "valence": round(first.valence, 4) if first else float("nan"),
                "arousal": round(first.arousal, 4) if first else float("nan"),
                "emotion_each": ";".join(f"{f.viewer}:{f.label}:{f.confidence:.3f}:{f.valence:+.3f}:{f.arousal:+.3f}" for f in faces)}

    def close(self) -> None:
        self.recognizer.close()


def run(recognizer, source: str, output: Path | None = None, max_frames: int = 0, show: bool = False,
        classify_no_face: bool = False) -> dict:
    """Process frames; returns {'frames', 'faces', 'fps'} where fps is the pipeline rate (read + detect + classify + draw).
    The largest face is followed by the timeline's `EmotionTracker` (its box looked for again around the last one,
    the whole frame searched every second) and classified on every frame."""
    import cv2

    from emotion.data import to_gray_square
    from emotion.timeline import EmotionTracker, FaceTracker

    capture = open_capture(source)
    fps_in = capture.get(cv2.CAP_PROP_FPS) or 25.0
    camera = str(source).isdigit()
    decoded = capture_frames(capture, camera, fps_in, None if camera else source)  # warns if a file is truncated
    writer = None
    frames = faces = 0
    fps = None
    tracked = EmotionTracker(recognizer, FaceTracker(recognizer.detector), max_faces=1)
    started = time.perf_counter()
    try:
        while max_frames <= 0 or frames < max_frames:
            tick = time.perf_counter()
            _, seconds, rgb = next(decoded, (None, None, None))
            if rgb is None:
                break
            found = tracked.push(rgb, seconds)
            if found:
                face = found[0]
                prediction = recognizer.prediction(face.probabilities, face.va, face.box, face.viewer)
            elif classify_no_face:   # the whole frame, said so (face_found False)
                probabilities, va = recognizer.predict_faces(to_gray_square(rgb, recognizer.input_size)[None])
                prediction = recognizer.prediction(probabilities[0], va[0], None)
            else:
                prediction = None
            faces += prediction is not None
            elapsed = time.perf_counter() - tick
            fps = 1 / elapsed if fps is None else 0.9 * fps + 0.1 / max(elapsed, 1e-6)  # smoothed for display
            draw_prediction(rgb, prediction, fps)
            if output is not None:
                if writer is None:
                    writer = AtomicVideoWriter(output, fps_in, (rgb.shape[1], rgb.shape[0]))
                writer.write(rgb)
            if show:
                cv2.imshow("emotion", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    break
            frames += 1
    except BaseException:
        if writer is not None:
            writer.close(keep=False)
        raise
    finally:
        capture.release()
        if show:
            cv2.destroyAllWindows()
    if writer is not None:
        writer.close()
    if frames == 0:
        raise InputError(source, "no frame could be read")
    seconds = time.perf_counter() - started
    return {"frames": frames, "faces": faces, "fps": frames / seconds if seconds > 0 else 0.0}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="0", type=InputArgument("video", as_path=False), help="camera index (0, 1, ...) or a video file (default %(default)s)")
    parser.add_argument("--weights", type=ModelArgument("emotion"), help="checkpoint or .onnx (default: the released recognizer, "
                        "weights/emotion/emotion.onnx)")
    parser.add_argument("--output", type=OutputFile(VIDEO_OUTPUT_SUFFIXES), default=None, help="write the annotated video here (no window)")
    parser.add_argument("--show", action="store_true", help="show a window even when writing --output")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0 = until the end)")
    parser.add_argument("--detector", choices=("mediapipe", "haar"), default="mediapipe", help="face detector")
    parser.add_argument("--backend", choices=BACKENDS, default="auto", help="inference engine")
    parser.add_argument("--classify-no-face", action="store_true", help="classify the whole frame when no face is found")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from emotion.recognizer import EmotionRecognizer

    recognizer = EmotionRecognizer(args.weights or released("emotion", "recognizer"), detector=args.detector,
                                   backend=args.backend, threads=args.threads)
    stats = run(recognizer, args.source, args.output, args.max_frames, show=args.show or args.output is None,
                classify_no_face=args.classify_no_face)
    print(f"{stats['frames']} frames, {stats['faces']} with a face, {stats['fps']:.1f} FPS"
          + (f"; wrote {args.output}" if args.output else ""))
    recognizer.close()
    return 0


if __name__ == "__main__":
    run_main(main)
