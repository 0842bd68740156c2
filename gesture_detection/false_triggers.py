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

NO_GESTURE_VIDEOS = (SHARED_DATA / "pose_smoothing" / "assemblyai_walking.mp4",
                     SHARED_DATA / "pose_smoothing" / "mgt_dancer.avi")


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


def static_false_triggers(model: str | Path, videos=NO_GESTURE_VIDEOS, threshold: float | None = None) -> dict:
    """{video stem: {frames, seconds, gesture_frames, occurrences, per_minute, labels}} and the overall rate."""
    from core.io import iter_video_frames, video_info
    from core.live import LiveFrame
    from gesture_detection.data import NO_GESTURE
    from gesture_detection.live import GestureStage, LiveHands

    per_video = {}
    for path in videos:
        if not Path(path).is_file():
            continue
        stage = GestureStage(model, LiveHands(), threshold=threshold)
        answers = [stage(LiveFrame(index, seconds, rgb)).gesture for index, seconds, rgb in iter_video_frames(path)]
        stage.close()
        info = video_info(path)
        seconds = len(answers) / (info.fps or 30.0)
        runs = gesture_runs(answers, NO_GESTURE)
        per_video[Path(path).stem] = {
            "frames": len(answers), "seconds": round(seconds, 2),
            "gesture_frames": sum(label != NO_GESTURE for label in answers), "occurrences": len(runs),
            "per_minute": round(len(runs) / (seconds / 60), 2) if seconds else 0.0,
            "labels": sorted({label for label, _, _ in runs})}
    minutes = sum(v["seconds"] for v in per_video.values()) / 60
    return {"static_per_minute": round(sum(v["occurrences"] for v in per_video.values()) / minutes, 2) if minutes else None,
            "static_by_video": per_video, "static_model": str(model)}
