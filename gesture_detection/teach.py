"""Teach your own gestures: a few photos (or a few seconds of video) of each gesture -> a landmark classifier
that `predict`, `live` and `webcam_demo.py` load with `--landmark-model` / `--gesture-model`.

    python -m gesture_detection.teach photos/ --output my_gestures.joblib        # photos/<gesture>/*.jpg
    python -m gesture_detection.teach --video clip.mp4 --gestures fist palm victory --seconds 3 --output my_gestures.joblib
    python -m gesture_detection.teach --camera 0 --gestures fist palm victory --seconds 3 --output my_gestures.joblib
    python -m gesture_detection.teach photos_more/ --output my_gestures.joblib --add   # more gestures into it

No boxes are needed: in every photo (or sampled video frame) MediaPipe Hands, with its rescues, finds the
hands, and the largest one is the example. A video (or the camera) shows the gestures one after another,
`--seconds` each, in the order `--gestures` names them; the first `--settle` seconds of each are left out
(the hand is still changing), and at most `--sample-fps` frames per second are used. From the camera a
countdown is drawn before each gesture.

The model is `model.LandmarkClassifier` as `train.py` makes it (logistic regression on the hand features,
augmented copies, a `no_gesture` class of generated idle hands, temperature and threshold fitted out of
fold). Its folds are groups of examples: the photos' recording sessions where the file names say them
(`data.recording_session`), else each photo alone; for a video, each gesture's recording cut into 5
consecutive parts, so neighbouring frames are never on both sides of a fold.

Warnings: a photo with no hand is left out (`skipped <photo>: no hand found`, exit status 1, the model is
still written); two gestures whose examples the cross-validated classifier confuses (accuracy between the
two under `--min-separability`) are named. Refused (status 2, nothing written): an empty gesture folder, a
gesture with no hand in any example, only one gesture, an `--output` that exists (unless `--replace`, which
overwrites it, or `--add`, which teaches the new gestures into it; a gesture it already has is then
refused unless `--replace` too, which replaces that gesture's examples).
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

import core  # noqa: F401  (offline environment first)
from core.cli import InputArgument, OutputFile, run_main, skip
from core.io import IMAGE_EXTENSIONS, InputError, iter_video_frames

from gesture_detection.data import NO_GESTURE, load_image, recording_session
from gesture_detection.detect import Detection

FOLDS = 5            # calibration and separability folds (groups of examples)
VIDEO_PARTS = 5      # each gesture's recording is cut into this many consecutive groups


@dataclass
class Example:
    source: str                 # the photo, or `<video>@<seconds>`
    gesture: str
    group: str                  # fold group: recording session, the photo itself, or a part of a recording
    hand: Detection | None      # the largest hand found; None: no hand


@dataclass
class TaughtModel:
    classifier: object                      # model.LandmarkClassifier
    cv_accuracy: float                      # out-of-fold accuracy over the taught hands (gestures only)
    confusions: list[tuple[str, str, float]]  # (gesture, gesture, accuracy between the two) under the bar
    pair_accuracy: dict[tuple[str, str], float]
    seconds: float


def largest_hand(detections: Sequence[Detection] | None) -> Detection | None:
    """The hand with the largest box: the one held up to the camera (a second, resting hand is smaller or
    further away)."""
    if not detections:
        return None
    return max(detections, key=lambda d: float((d.box[2] - d.box[0]) * (d.box[3] - d.box[1])))


def default_detector(rescue: bool = True, tracking: bool = False):
    from gesture_detection.detect import MediaPipeHands, RescuedHands

    if tracking:
        return MediaPipeHands(tracking=True)
    return RescuedHands() if rescue else MediaPipeHands()


# ----------------------------------------------------------------------------------------- examples
def gesture_folders(root: Path) -> dict[str, list[Path]]:
    """{gesture: its photos} of `root/<gesture>/` (searched recursively); photos lying in `root` itself
    are listed under "" (they name no gesture). An InputError for a missing root, one with no photo at all,
    or an empty gesture folder."""
    root = Path(root)
    if not root.exists():
        raise InputError(root, "no such folder")
    if not root.is_dir():
        raise InputError(root, "is not a folder; give a folder with a subfolder of photos per gesture "
                               "(photos/<gesture>/*.jpg)")
    folders: dict[str, list[Path]] = {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            folders[entry.name] = sorted(p for p in entry.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        elif entry.suffix.lower() in IMAGE_EXTENSIONS:
            folders.setdefault("", []).append(entry)
    if not any(folders.values()):
        raise InputError(root, f"no photos ({', '.join(IMAGE_EXTENSIONS)}) in it; put each gesture's photos in "
                               f"{root}/<gesture>/")
    return folders


def photo_examples(root: Path, detector, cache_root: Path | None = None, min_gestures: int = 2) -> list[Example]:
    """One example per readable photo of `root/<gesture>/`, with the largest hand MediaPipe finds (None where
    it finds none). An unreadable photo, or one outside a gesture folder, is reported with `skip`; nothing
    readable at all is an InputError naming the first. An empty gesture folder, or fewer than `min_gestures`
    gesture folders, is an InputError."""
    from gesture_detection.landmarks import cached_hand_detections

    folders = gesture_folders(root)
    for gesture, photos in folders.items():
        if gesture and not photos:
            raise InputError(Path(root) / gesture, f"no photo in this gesture folder ({', '.join(IMAGE_EXTENSIONS)})")
    named = [g for g in folders if g]
    if 0 < len(named) < min_gestures:
        raise InputError(root, f"only one gesture ({named[0]}); teach at least two (a folder per gesture)")
    failures: list[InputError] = []
    readable: list[tuple[Path, str]] = []
    for gesture, photos in folders.items():
        for photo in photos:
            try:
                load_image(photo)
            except InputError as error:
                failures.append(error)
                continue
            if not gesture:
                failures.append(InputError(photo, f"not in a gesture folder (put it in {Path(root)}/<gesture>/)"))
                continue
            readable.append((photo, gesture))
    if not readable:
        first = failures[0]
        raise first if len(failures) == 1 else InputError(first.path, f"{first.reason} (and {len(failures) - 1} more "
                                                                       "photos, none usable)")
    for error in failures:
        skip(error.path, error.reason)
    found, _ = cached_hand_detections([p for p, _ in readable], detector, cache_root)
    sessions = [recording_session(p) for p, _ in readable]
    by_session = len(set(sessions) - {None}) >= 2
    return [Example(str(photo), gesture, (session or "(no session)") if by_session else str(photo), largest_hand(hands))
            for (photo, gesture), session, hands in zip(readable, sessions, found)]


def recording_examples(frames: Iterable[tuple[int, float, np.ndarray]], gestures: Sequence[str], seconds: float,
                       name: str, detector, settle: float = 0.5, sample_fps: float = 10.0) -> list[Example]:
    """Examples from a recording that shows `gestures` one after another, `seconds` each from its start:
    per gesture the frames after its first `settle` seconds, at most `sample_fps` a second. Frames after the
    last gesture's time are not read."""
    examples: list[Example] = []
    next_time = {g: 0.0 for g in range(len(gestures))}
    end = seconds * len(gestures)
    for _, t, rgb in frames:
        if t >= end:
            break
        which = int(t // seconds)
        into = t - which * seconds
        if into < settle or into < next_time[which]:
            continue
        next_time[which] = into + 1.0 / sample_fps
        part = min(int((into - settle) / max(seconds - settle, 1e-9) * VIDEO_PARTS), VIDEO_PARTS - 1)
        examples.append(Example(f"{name}@{t:.2f}", gestures[which], f"part {part}", largest_hand(detector(rgb))))
    return examples


def video_examples(video: str, gestures: Sequence[str], seconds: float, detector, settle: float = 0.5,
                   sample_fps: float = 10.0) -> list[Example]:
    """`recording_examples` of a video file (checked first: a missing, empty or undecodable file is an
    InputError; a truncated one is warned about). Without `gestures`, an InputError saying how many fit."""
    frames = iter_video_frames(video)
    if not gestures:
        count, last = 0, 0.0
        for count, last, _ in frames:  # the whole file: it must decode, and its length says how many gestures it holds
            pass
        length = last * (count + 1) / count if count else 0.0
        raise InputError(video, f"name the gestures it shows, in order, with --gestures (its {length:.1f} s hold "
                                f"{int((length + 1e-6) // seconds)} of --seconds {seconds:g})")
    examples = recording_examples(frames, gestures, seconds, video, detector, settle, sample_fps)
    for _ in frames:  # read to the end, so that a truncated file is still warned about
        pass
    shown = {e.gesture for e in examples}
    if len(shown) < len(set(gestures)):
        missing = [g for g in gestures if g not in shown]
        raise InputError(video, f"too short for {len(gestures)} gestures of {seconds:g} s: no frame for "
                                f"{', '.join(missing)}")
    return examples


def camera_examples(camera: int, gestures: Sequence[str], seconds: float, detector, countdown: float = 3.0,
                    sample_fps: float = 10.0) -> list[Example]:
    """`recording_examples` from a camera: before each gesture a countdown is drawn in a window (its name
    and the seconds left), then it is recorded for `seconds`. q or Esc stops."""
    from core.io import open_capture

    capture = open_capture(str(camera), file_hint="pass a video file with --video FILE")
    try:
        frames = _camera_frames(capture, gestures, seconds, countdown)
        return recording_examples(frames, gestures, seconds, f"camera {camera}", detector, settle=0.0,
                                  sample_fps=sample_fps)
    finally:
        capture.release()
        import cv2

        cv2.destroyAllWindows()


def _camera_frames(capture, gestures: Sequence[str], seconds: float, countdown: float) -> Iterator[tuple[int, float, np.ndarray]]:
    """The recorded frames (index, seconds on the recording's clock: gesture i starts at i x `seconds`, RGB);
    the countdown's frames are shown, not yielded."""
    import cv2

    index = 0
    for i, gesture in enumerate(gestures):
        for phase, length in (("get ready", countdown), ("recording", seconds)):
            started = time.perf_counter()
            while (elapsed := time.perf_counter() - started) < length:
                ok, bgr = capture.read()
                if not ok:
                    raise InputError("camera", "no frame from the camera")
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                canvas = bgr.copy()
                text = (f"{gesture}: {length - elapsed:.0f}" if phase == "get ready"
                        else f"{gesture}: recording {length - elapsed:.1f} s")
                colour = (0, 200, 255) if phase == "get ready" else (0, 0, 255)
                cv2.putText(canvas, text, (20, 50), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 6, cv2.LINE_AA)
                cv2.putText(canvas, text, (20, 50), cv2.FONT_HERSHEY_SIMPLEX, 1.2, colour, 2, cv2.LINE_AA)
                try:
                    cv2.imshow("teach", canvas)
                except cv2.error as error:
                    raise InputError("window", f"cannot show a window ({error.msg.strip() or 'no display'}); "
                                               "record a video and pass it with --video") from error
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    raise KeyboardInterrupt
                if phase == "recording":
                    yield index, i * seconds + elapsed, rgb
                    index += 1


# ----------------------------------------------------------------------------------------- teaching
def check_examples(examples: Sequence[Example], where: str | Path) -> list[Example]:
    """The examples with a hand; an InputError when a gesture has none, or when fewer than two gestures are left."""
    gestures = list(dict.fromkeys(e.gesture for e in examples))
    with_hand = [e for e in examples if e.hand is not None]
    for gesture in gestures:
        if not any(e.gesture == gesture for e in with_hand):
            n = sum(e.gesture == gesture for e in examples)
            place = Path(where) / gesture if Path(where).is_dir() else Path(where)
            raise InputError(place, f"no hand found in any of its {n} example{'s' * (n != 1)} of {gesture!r}; "
                                    "show the hand larger, lit from the front, with the whole hand in the picture")
    if len(gestures) < 2:
        raise InputError(where, f"only one gesture ({gestures[0] if gestures else 'none'}); teach at least two "
                                "(a folder, or a --gestures name, per gesture)")
    return with_hand


def teach(hands: Sequence[Detection], gestures: Sequence[str], groups: Sequence[str], *, idle_hands: float = 1.0,
          oriented: bool = False, asymmetric: Sequence[str] = (), seed: int = 0, folds: int = FOLDS,
          min_separability: float = 0.9, **options):
    """A `LandmarkClassifier` taught on `hands` of `gestures` (`options`: more of its arguments), calibrated out
    of fold over `groups`, and how separable the gestures are: each hand predicted by a copy trained on the other
    folds; two gestures are confused when, over the hands of the two, fewer than `min_separability` are not taken
    for the other one. The model keeps the taught hands' landmarks (`classifier.taught`, for `--add`)."""
    from gesture_detection.model import LandmarkClassifier

    started = time.perf_counter()
    labels = sorted(set(gestures))
    classifier = LandmarkClassifier(labels, seed=seed, oriented=oriented, asymmetric=asymmetric, idle_hands=idle_hands,
                                    **options)
    template = copy.deepcopy(classifier)
    # out of fold needs two groups and two examples of every gesture (else T = 1, threshold 0.5, no check)
    sessions = list(groups) if len(set(groups)) >= 2 and min(list(gestures).count(g) for g in labels) >= 2 else None
    classifier.fit(list(hands), list(gestures), sessions=sessions, folds=folds)
    pair_accuracy: dict[tuple[str, str], float] = {}
    cv_accuracy = float("nan")
    if sessions is not None:
        raw, truth = template._out_of_session_probabilities(list(hands), list(gestures), sessions, folds)
        predicted = raw.argmax(axis=1)
        all_labels = classifier.labels
        cv_accuracy = float((predicted == truth).mean())
        for i, a in enumerate(labels):
            for b in labels[i + 1:]:
                ia, ib = all_labels.index(a), all_labels.index(b)
                rows = (truth == ia) | (truth == ib)
                if rows.any():
                    mixed = ((truth == ia) & (predicted == ib)) | ((truth == ib) & (predicted == ia))
                    pair_accuracy[(a, b)] = 1.0 - float(mixed[rows].mean())
    confusions = sorted(((a, b, acc) for (a, b), acc in pair_accuracy.items() if acc < min_separability), key=lambda x: x[2])
    classifier.taught = {"gestures": list(gestures), "groups": [str(g) for g in groups],
                         "landmarks": np.stack([h.landmarks for h in hands]).astype(np.float32),
                         "world": np.stack([h.world_landmarks if h.world_landmarks is not None else h.landmarks
                                            for h in hands]).astype(np.float32)}
    return TaughtModel(classifier, cv_accuracy, confusions, pair_accuracy, time.perf_counter() - started)


def taught_hands(classifier) -> tuple[list[Detection], list[str], list[str]]:
    """The hands a taught model was taught on (for `--add`)."""
    taught = getattr(classifier, "taught", None)
    if not taught:
        return [], [], []
    hands = [Detection(np.zeros(4, dtype=np.float32), 1.0, p, world_landmarks=w)
             for p, w in zip(taught["landmarks"], taught["world"])]
    return hands, list(taught["gestures"]), list(taught["groups"])


# ----------------------------------------------------------------------------------------- command line
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_argument_group("examples (one source)")
    source.add_argument("photos", nargs="?", type=InputArgument("image_folder"), default=None,
                        help="a folder with a subfolder of photos per gesture: photos/<gesture>/*.jpg")
    source.add_argument("--video", type=InputArgument("video", as_path=False), default=None,
                        help="a video showing the --gestures one after another, --seconds each")
    source.add_argument("--camera", type=int, default=None, help="a camera index (0, 1, ...): the same, with a countdown")
    source.add_argument("--gestures", nargs="+", default=None, help="video or camera: the gestures' names, in order")
    source.add_argument("--seconds", type=float, default=3.0, help="video or camera: seconds per gesture (default %(default)s)")
    source.add_argument("--settle", type=float, default=0.5,
                        help="video: seconds left out at the start of each gesture (default %(default)s)")
    source.add_argument("--countdown", type=float, default=3.0, help="camera: seconds to get ready for each gesture")
    source.add_argument("--sample-fps", type=float, default=10.0,
                        help="video or camera: frames used per second at most (default %(default)s)")
    parser.add_argument("--output", type=OutputFile((".joblib",)), default="my_gestures.joblib",
                        help="the landmark model to write (default %(default)s)")
    parser.add_argument("--add", action="store_true",
                        help="teach these gestures into the existing --output model (made by teach) as well")
    parser.add_argument("--replace", action="store_true",
                        help="overwrite an existing --output; with --add, replace the examples of gestures it already has")
    parser.add_argument("--min-separability", type=float, default=0.9,
                        help="warn about two gestures when the cross-validated accuracy between them is lower (default %(default)s)")
    parser.add_argument("--idle-hands", type=float, default=1.0,
                        help="a no_gesture class of generated idle hands, this many times the hands per gesture "
                             "(0: none; default %(default)s)")
    parser.add_argument("--oriented", action="store_true",
                        help="gestures that differ by where the hand points (thumb up / down): keep the orientation")
    parser.add_argument("--asymmetric-gestures", nargs="*", default=[],
                        help="gestures a mirror would change (pointing left / right): never mirrored in training")
    parser.add_argument("--no-rescue", dest="rescue", action="store_false",
                        help="photos: MediaPipe once only (by default it looks again where it finds no hand)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the augmentation (default %(default)s)")
    args = parser.parse_args(argv)
    chosen = [name for name, value in (("photos", args.photos), ("--video", args.video), ("--camera", args.camera))
              if value is not None]
    if len(chosen) != 1:
        parser.error("give one source: a photos folder, --video FILE or --camera INDEX")
    if args.seconds <= args.settle or args.sample_fps <= 0:
        parser.error("--seconds must be longer than --settle, and --sample-fps positive")
    if args.camera is not None and not args.gestures:
        parser.error("--camera: name the gestures to record, in order, with --gestures")
    if args.gestures and len(set(args.gestures)) != len(args.gestures):
        parser.error("--gestures: each name once")
    if args.gestures and NO_GESTURE in args.gestures:
        parser.error(f"--gestures: {NO_GESTURE} is the model's own idle class; name your gestures otherwise")
    return args


def check_target(args: argparse.Namespace):
    """The existing model to add to (None when not adding), or an InputError for an --output that exists."""
    from gesture_detection.model import LandmarkClassifier

    if not args.output.exists():
        if args.add:
            raise InputError(args.output, "--add: no such model to add to (leave --add out to make it)")
        return None
    if not args.add:
        if args.replace:
            return None
        raise InputError(args.output, "exists; --replace overwrites it, --add teaches these gestures into it")
    existing = LandmarkClassifier.load(args.output)
    if not getattr(existing, "taught", None):
        raise InputError(args.output, "--add: not a model made by gesture_detection.teach (it keeps no taught examples)")
    return existing


def main(argv=None) -> dict:
    args = parse_args(argv)
    existing = check_target(args)  # before any work: a name that exists is refused
    started = time.perf_counter()
    if args.photos is not None:
        where: str | Path = args.photos
        examples = photo_examples(args.photos, default_detector(args.rescue), min_gestures=1 if args.add else 2)
        for e in examples:
            if e.hand is None:
                skip(e.source, "no hand found; left out")
    else:
        where = args.video if args.video is not None else f"camera {args.camera}"
        if args.gestures and len(args.gestures) < 2 and not args.add:
            raise InputError(where, f"only one gesture ({args.gestures[0]}); name at least two with --gestures")
        detector = default_detector(tracking=True)
        examples = video_examples(args.video, args.gestures, args.seconds, detector, args.settle, args.sample_fps) \
            if args.video is not None else camera_examples(args.camera, args.gestures or [], args.seconds, detector,
                                                           args.countdown, args.sample_fps)
        for gesture in dict.fromkeys(e.gesture for e in examples):
            mine = [e for e in examples if e.gesture == gesture]
            found = sum(e.hand is not None for e in mine)
            if 0 < found < len(mine) / 2:
                print(f"warning: {where}: a hand in only {found} of {len(mine)} frames of {gesture!r}", file=sys.stderr)
    kept = check_examples(examples, where) if existing is None else [e for e in examples if e.hand is not None]
    hands, gestures, groups = [e.hand for e in kept], [e.gesture for e in kept], [e.group for e in kept]
    if existing is not None:
        old_hands, old_gestures, old_groups = taught_hands(existing)
        new_names = set(e.gesture for e in examples)
        clash = sorted(new_names & set(old_gestures))
        if clash and not args.replace:
            raise InputError(args.output, f"already has the gesture{'s' * (len(clash) > 1)} {', '.join(clash)}; "
                                          "--replace replaces its examples, or give another name")
        missing = sorted(new_names - set(gestures))
        if missing:
            raise InputError(where, f"no hand found in any example of {', '.join(missing)}")
        keep = [i for i, g in enumerate(old_gestures) if g not in new_names]
        hands = [old_hands[i] for i in keep] + hands
        gestures = [old_gestures[i] for i in keep] + gestures
        groups = [f"taught before: {old_groups[i]}" for i in keep] + groups
    unknown = sorted(set(args.asymmetric_gestures) - set(gestures))
    if unknown:
        raise InputError(where, f"--asymmetric-gestures names gestures not taught: {', '.join(unknown)}")
    result = teach(hands, gestures, groups, idle_hands=args.idle_hands, oriented=args.oriented,
                   asymmetric=args.asymmetric_gestures, seed=args.seed, min_separability=args.min_separability)
    if result.cv_accuracy != result.cv_accuracy:  # nan: not cross-validated
        print(f"warning: {where}: too few examples to cross-validate (a gesture with one example, or all in "
              "one group): no separability check, probabilities not calibrated; give 10 or more per gesture",
              file=sys.stderr)
    for a, b, accuracy in result.confusions:
        print(f"warning: gestures {a!r} and {b!r} are hard to tell apart: cross-validated accuracy between them "
              f"{accuracy:.2f} (under {args.min_separability:g}); show them more differently, or give more examples",
              file=sys.stderr)
    classifier = result.classifier
    classifier.save(args.output)
    counts = {g: gestures.count(g) for g in sorted(set(gestures))}
    summary = {"output": str(args.output), "gestures": counts, "classes": classifier.labels,
               "cross_validated_accuracy": result.cv_accuracy, "threshold": classifier.threshold,
               "temperature": classifier.calibration.temperature, "calibration": classifier.calibration_fit,
               "seconds": round(time.perf_counter() - started, 1)}
    print(f"taught {len(hands)} hands of {len(counts)} gestures ({', '.join(f'{g} {n}' for g, n in counts.items())}) "
          f"in {summary['seconds']} s; cross-validated accuracy {result.cv_accuracy:.3f}, threshold "
          f"{classifier.threshold:g}\nmodel: {args.output}  (use it with `python -m gesture_detection.predict PHOTOS "
          f"--landmark-model {args.output}` or `python -m gesture_detection.live --gesture-model {args.output}`)")
    return summary


if __name__ == "__main__":
    run_main(main)
