"""Static gestures where nobody makes one: the live path (`live.LiveHands` in tracking mode -> `live.GestureStage`
with the released landmark classifier and its own threshold) over videos of people who show no gesture, the
shared pose videos (a man walking with a cane, a dancer). Every frame is processed. An occurrence is a run of
frames whose answer is the same gesture (not `no_gesture`); `false_triggers.static_per_minute` counts them per
minute of video, the number a user would see pop up in the live demo.

    python -m gesture_detection.bench --only false_triggers
"""
from __future__ import annotations

from pathlib import Path

from core.env import SHARED_DATA
from gesture_detection.data import NO_GESTURE

NO_GESTURE_VIDEOS = (SHARED_DATA / "pose_smoothing" / "assemblyai_walking.mp4",
                     SHARED_DATA / "pose_smoothing" / "mgt_dancer.avi")
GESTURE_VIDEOS = SHARED_DATA / "video_gestures" / "zsgl_demo_videos"


def gesture_runs(answers: list[str], no_gesture: str) -> list[tuple[str, int, int]]:
    """(label, first frame, last frame) of each run of frames with the same gesture answer."""
    runs: list[tuple[str, int, int]] = []
    for index, label in enumerate(answers):
        if label == no_gesture:
            continue
        if runs and runs[-1][0] == label and runs[-1][2] == index - 1:
            runs[-1] = (label, runs[-1][1], index)
        else:
            runs.append((label, index, index))
    return runs


def static_false_triggers(model: str | Path, videos=NO_GESTURE_VIDEOS, threshold: float | None = None,
                          hold: float | None = None) -> dict:
    """{video stem: {frames, seconds, gesture_frames, occurrences, per_minute, labels, at_once}} and the overall
    rate, with the stage's hold (`live.HOLD_SECONDS` when None)."""
    from gesture_detection.live import HOLD_SECONDS

    hold = HOLD_SECONDS if hold is None else hold
    per_video = {}
    for path, (held, at_once, fps) in live_answers(model, videos, threshold, hold).items():
        seconds = len(held) / fps
        runs = gesture_runs(held, NO_GESTURE)
        per_video[path.stem] = {
            "frames": len(held), "seconds": round(seconds, 2),
            "gesture_frames": sum(label != NO_GESTURE for label in held), "occurrences": len(runs),
            "per_minute": round(len(runs) / (seconds / 60), 2) if seconds else 0.0,
            "labels": sorted({label for label, _, _ in runs}),
            "at_once": {"gesture_frames": sum(label != NO_GESTURE for label in at_once),
                        "occurrences": len(gesture_runs(at_once, NO_GESTURE))}}
    minutes = sum(v["seconds"] for v in per_video.values()) / 60
    return {"static_per_minute": round(sum(v["occurrences"] for v in per_video.values()) / minutes, 2) if minutes else None,
            "static_by_video": per_video, "static_model": str(model), "static_hold_seconds": hold}


def held_gestures_kept(model: str | Path, videos, threshold: float | None = None, hold: float | None = None,
                       held_for: float = 0.5) -> dict:
    """Runs of the same gesture lasting at least `held_for` seconds when answered at once, over `videos` of real
    gestures, and how many of them the stage with `hold` still reports (an occurrence overlaps them)."""
    from gesture_detection.live import HOLD_SECONDS

    hold = HOLD_SECONDS if hold is None else hold
    runs, kept = 0, 0
    for held, at_once, fps in live_answers(model, videos, threshold, hold).values():
        reported = gesture_runs(held, NO_GESTURE)
        for label, first, last in gesture_runs(at_once, NO_GESTURE):
            if (last - first + 1) / fps >= held_for:
                runs += 1
                kept += any(l == label and f <= last and first <= e for l, f, e in reported)
    return {"videos": len(list(videos)), "held_for_seconds": held_for, "runs": runs, "kept": kept,
            "share": round(kept / runs, 4) if runs else None, "hold_seconds": hold}


def live_answers(model: str | Path, videos, threshold: float | None, hold: float) -> dict:
    """{video path: (frame answers with the hold, the answers at once, frames per second)} of the live path."""
    from core.io import iter_video_frames, video_info
    from core.live import LiveFrame
    from gesture_detection.live import GestureStage, LiveHands

    answers = {}
    for path in map(Path, videos):
        if not path.is_file():
            continue
        stage = GestureStage(model, LiveHands(), threshold=threshold, hold=hold)
        found = [stage(LiveFrame(index, seconds, rgb)) for index, seconds, rgb in iter_video_frames(path)]
        stage.close()
        answers[path] = ([a.gesture for a in found], [a.pending or a.gesture for a in found], video_info(path).fps or 30.0)
    return answers
