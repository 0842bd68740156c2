"""Live gestures: camera, video file or folder of frames -> MediaPipe Hands in tracking mode -> each hand's
gesture and its probability from the landmark classifier, drawn on the frame; in a window, or written to
`--output` with a per-frame log.

    python -m gesture_detection.live --source 0                                   # webcam, window (q quits)
    python -m gesture_detection.live --source clip.mp4 --output annotated.mp4     # headless: video + annotated.csv
    python -m gesture_detection.live --source frames/ --gesture-model runs/gesture_detection/lm_linto/landmark.joblib

The classifier is the released one (`core.weights`, gesture_detection/landmark_linto) unless
`--gesture-model` names a landmark.joblib from `python -m gesture_detection.train --classifier landmark`.
A hand's answer is its best class, `no_gesture` below `--threshold`; the frame's answer is the hand most
likely to show a gesture (`pipeline.decide`), reported once it has been the answer for `--hold` seconds (a
gesture is held; a hand passing through a gesture-like pose for a frame or two is not one). The stages here (`LiveHands`, `GestureStage`) are the ones
the root `webcam_demo.py` composes; `LiveHands` is shared with the dynamic-gesture stage.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401  (offline environment first)
from core.cli import ModelArgument, run_main  # noqa: E402
from core.live import LiveFrame, LiveStage, add_live_arguments, put_label, run_from_args  # noqa: E402

HAND_COLOUR, IDLE_COLOUR = (40, 200, 60), (200, 200, 200)
# A static gesture is reported once the frame's answer has been the same for this long. People hold a command
# gesture for the best part of a second; the blips of a moving hand last 1-2 frames (33-67 ms at 30 frames/s).
# 0.3 s is 9 frames at 30 frames/s (5 fresh MediaPipe frames when light frames reuse the last hands).
HOLD_SECONDS = 0.3


@dataclass
class HandsResult:
    detections: list    # detect.Detection per hand, sorted by score
    fresh: bool         # MediaPipe ran on this frame (False: the last frame's hands, reused)


class LiveHands:
    """MediaPipe Hands in tracking mode, run at most once per frame: every stage that needs hands asks
    `detect(frame)` and gets the same result. On a light frame of the other phase the last hands are
    reused (`fresh` False)."""

    phase = 0

    def __init__(self, max_hands: int = 2, model_complexity: int = 1, min_confidence: float = 0.5, detector=None):
        """`detector`: rgb -> list of detect.Detection instead of MediaPipe (the tests)."""
        from gesture_detection.detect import MediaPipeHands

        self.detector = detector or MediaPipeHands(max_hands, min_confidence, model_complexity, tracking=True)
        self._index: int | None = None
        self._last: HandsResult | None = None

    def detect(self, frame: LiveFrame) -> HandsResult:
        if self._last is not None and self._index == frame.index:
            return self._last
        if self._last is None or frame.runs(self.phase):
            self._last = HandsResult(self.detector(frame.rgb), True)
        else:
            self._last = HandsResult(self._last.detections, False)
        self._index = frame.index
        return self._last

    def close(self) -> None:
        if self.detector is not None and hasattr(self.detector, "close"):
            self.detector.close()
        self.detector = None


def add_hands_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hands (MediaPipe Hands, tracking mode)")
    group.add_argument("--max-hands", type=int, default=2, help="hands to follow (default %(default)s)")
    group.add_argument("--hand-complexity", type=int, choices=(0, 1), default=1,
                       help="MediaPipe Hands model: 1 full (what the classifiers were trained on), 0 lite (faster)")
    group.add_argument("--min-hand-confidence", type=float, default=0.5, help="MediaPipe detection confidence")


def hands_from_args(args: argparse.Namespace) -> LiveHands:
    return LiveHands(args.max_hands, args.hand_complexity, args.min_hand_confidence)


# ----------------------------------------------------------------------------------------- gestures
@dataclass
class HandGesture:
    box: np.ndarray          # pixels, the classifier's box style
    handedness: str          # as MediaPipe says ("Left" / "Right"; it assumes a mirrored selfie view)
    label: str               # no_gesture below the threshold
    probability: float
    landmarks: np.ndarray    # (21, 3) pixels


@dataclass
class GestureAnswer:
    gesture: str             # the frame's answer (the hand most likely to show a gesture) once held, else no_gesture
    probability: float
    hands: list[HandGesture]
    pending: str = ""        # a gesture the hands show but not yet for `hold` seconds (then `gesture` is no_gesture)


class GestureStage(LiveStage):
    """Each hand's gesture with its probability: the shared hands -> `features.hand_features` -> the
    landmark classifier (`GesturePipeline` in landmark mode, with the hands given). Hands reused from the
    last frame keep the last answer. The frame's gesture is reported once it has been the answer of every
    fresh frame for `hold` seconds (0: at once); until then the frame's answer is no_gesture."""

    name = "gestures"

    def __init__(self, model: str | Path, hands: LiveHands, threshold: float | None = 0.5, hold: float = HOLD_SECONDS):
        from gesture_detection.model import LandmarkClassifier
        from gesture_detection.pipeline import GesturePipeline

        if hold < 0:
            raise ValueError(f"hold must be 0 seconds or more, got {hold}")
        self.hands, self.hold = hands, hold
        self.pipeline = GesturePipeline("landmark", LandmarkClassifier.load(model), threshold=threshold)
        self.last: GestureAnswer | None = None
        self._candidate: tuple[str, float] | None = None   # (the frame's answer, since when in seconds)

    def __call__(self, frame: LiveFrame) -> GestureAnswer:
        from gesture_detection.data import NO_GESTURE
        from gesture_detection.detect import postprocess

        found = self.hands.detect(frame)
        if not found.fresh and self.last is not None:
            return self.last
        height, width = frame.rgb.shape[:2]
        ordered = postprocess(found.detections, width, height)  # the order the pipeline's boxes come in
        prediction = self.pipeline.predict(frame.rgb, mediapipe_hands=ordered)
        hands = []
        for detection, box in zip(ordered, prediction.boxes):
            label, probability = box.label, box.probability
            if label != NO_GESTURE and probability < self.pipeline.threshold:  # as pipeline.decide answers
                label, probability = NO_GESTURE, 1.0 - probability
            hands.append(HandGesture(box.box, detection.handedness or "", label, probability, detection.landmarks))
        if self._candidate is None or self._candidate[0] != prediction.gesture:
            self._candidate = (prediction.gesture, frame.seconds)
        held = frame.seconds - self._candidate[1] >= self.hold - 1e-6
        pending = "" if held or prediction.gesture == NO_GESTURE else prediction.gesture
        self.last = GestureAnswer(NO_GESTURE if pending else prediction.gesture, prediction.probability, hands, pending)
        return self.last

    def draw(self, canvas: np.ndarray, answer: GestureAnswer) -> None:
        import cv2

        from gesture_detection.data import NO_GESTURE

        for hand in answer.hands:
            colour = IDLE_COLOUR if hand.label == NO_GESTURE else HAND_COLOUR
            x0, y0, x1, y1 = (int(round(float(v))) for v in hand.box)
            cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, 2)
            for x, y in hand.landmarks[:, :2].astype(int):
                cv2.circle(canvas, (int(x), int(y)), 2, colour, -1, cv2.LINE_AA)
            put_label(canvas, f"{hand.label} {hand.probability:.2f}", (x0, max(y0 - 6, 14)), colour)  # never over a face's

    def summary(self, answer: GestureAnswer) -> str:
        if not answer.hands:
            return "gesture: no hand"
        shown = f"{answer.pending} {answer.probability:.2f}, held < {self.hold:g} s" if answer.pending else \
            f"{answer.gesture} {answer.probability:.2f}"
        return f"gesture: {shown} ({len(answer.hands)} hand{'s' * (len(answer.hands) > 1)})"

    def row(self, answer: GestureAnswer) -> dict:
        return {"gesture": answer.gesture, "gesture_p": round(answer.probability, 4), "gesture_hands": len(answer.hands),
                "gesture_each": ";".join(f"{h.handedness}:{h.label}:{h.probability:.3f}" for h in answer.hands)}

    def close(self) -> None:
        self.hands.close()


def add_gesture_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("gestures (landmark classifier)")
    group.add_argument("--gesture-model", type=ModelArgument("gesture_detection", ("joblib",)), default=None,
                       help="landmark.joblib from `gesture_detection.train --classifier landmark` "
                            "(default: the released gesture_detection/landmark_linto)")
    group.add_argument("--threshold", type=float, default=None,
                       help="below this probability a hand's answer is no_gesture (default: the classifier's "
                            "own, chosen on held-out recording sessions when it was trained; 0.5 for older models)")
    group.add_argument("--hold", type=float, default=HOLD_SECONDS,
                       help="seconds a static gesture must be the answer before it is reported (0: at once) "
                            "(default %(default)s)")


def gesture_stage_from_args(args: argparse.Namespace, hands: LiveHands) -> GestureStage:
    from core.weights import released

    return GestureStage(args.gesture_model or released("gesture_detection", "landmark_linto"), hands, args.threshold,
                        args.hold)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_live_arguments(parser)
    add_hands_arguments(parser)
    add_gesture_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run_from_args(args, lambda source: [gesture_stage_from_args(args, hands_from_args(args))], title="gestures")
    return 0


if __name__ == "__main__":
    run_main(main)
