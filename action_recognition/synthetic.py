"""Generated action videos and a local video server, for the demo, the tests and the downloader benchmark.

Three "actions" that a frame model can tell apart only partly: a ball moving left-to-right, the same
ball moving right-to-left (same frames, reversed order: only a temporal model separates these two),
and a square bouncing up and down. `serve_videos` serves a folder on 127.0.0.1 with injected faults:
ids that answer 404 (gone), 403 (forbidden) or 503 for their first N requests (a flaky server).
"""
from __future__ import annotations

import contextlib
import csv
import threading
from collections import Counter
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from core.io import AtomicVideoWriter, atomic_open

ACTIONS = ("ball_left_to_right", "ball_right_to_left", "square_bouncing")


def action_frames(action: str, seed: int, frames: int = 40, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """(frames, H, W, 3) uint8 RGB: textured background, one moving object."""
    rng = np.random.default_rng(seed)
    width, height = size
    background = rng.integers(40, 120, 3)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.clip(background + 20 * np.sin(xx / rng.uniform(6, 14))[..., None], 0, 255).astype(np.uint8)
    colour = rng.integers(160, 256, 3)
    radius = int(rng.integers(10, 16))
    out = np.repeat(base[None], frames, axis=0)
    phase = rng.uniform(0, 0.2)
    for t in range(frames):
        progress = phase + 0.8 * t / max(frames - 1, 1)
        if action == "ball_left_to_right":
            cx, cy = radius + progress * (width - 2 * radius), height / 2
        elif action == "ball_right_to_left":
            cx, cy = width - radius - progress * (width - 2 * radius), height / 2
        elif action == "square_bouncing":
            cx, cy = width / 2, radius + abs(np.sin(3 * np.pi * progress)) * (height - 2 * radius)
        else:
            raise ValueError(f"unknown action {action!r}; choose one of {', '.join(ACTIONS)}")
        if action == "square_bouncing":
            mask = (abs(xx - cx) < radius) & (abs(yy - cy) < radius)
        else:
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 < radius ** 2
        out[t][mask] = colour
    return out


def write_action_video(path: str | Path, action: str, seed: int, seconds: float = 4.0, fps: float = 10.0,
                       size: tuple[int, int] = (160, 120)) -> Path:
    frames = action_frames(action, seed, int(round(seconds * fps)), size)
    with AtomicVideoWriter(path, fps, size) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)


# a codec each container holds, among those the PyAV wheels encode
CONTAINER_CODECS = {".mp4": "libx264", ".mkv": "libx264", ".avi": "mpeg4", ".mov": "libx264", ".webm": "libvpx",
                    ".gif": "gif"}


def write_video(path: str | Path, frames, fps: float = 25.0, codec: str | None = None) -> Path:
    """Write RGB frames (an iterable of (H, W, 3) uint8, even sizes) with PyAV in the container its suffix names
    (mp4, mkv, avi, mov, webm, gif), atomically; frames are streamed, so a long video needs no memory. MP4 and MOV
    keep their index first (faststart), so a file cut short still states its full length."""
    import av
    from fractions import Fraction

    from core.io import atomic_path

    path = Path(path)
    codec = codec or CONTAINER_CODECS[path.suffix.lower()]
    with atomic_path(path) as tmp:
        suffix = path.suffix.lower()
        options = {"movflags": "faststart"} if suffix in (".mp4", ".mov") else {}   # index first, as downloads are
        with av.open(str(tmp), "w", format=suffix.lstrip(".").replace("mkv", "matroska"), options=options) as container:
            stream = None
            for frame in frames:
                if stream is None:
                    stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
                    stream.height, stream.width = frame.shape[:2]
                    stream.pix_fmt = "rgb8" if codec == "gif" else "yuv420p"
                    if codec == "libx264":
                        stream.options = {"preset": "ultrafast", "crf": "23"}
                    elif codec != "gif":
                        stream.bit_rate = 4_000_000   # the encoders' defaults blur flat test frames
                    stream.codec_context.thread_count = 1
                packet = stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24"))
                container.mux(packet)
            if stream is not None:
                container.mux(stream.encode())
    return path


def make_source_videos(folder: str | Path, per_class: int = 6, actions: Sequence[str] = ACTIONS, seed: int = 0,
                       seconds: float = 4.0) -> list[dict]:
    """Write `per_class` videos per action as `<folder>/<id>.mp4`; returns Kinetics rows for them
    (window [0.5, seconds - 0.5], every fourth clip of a class in val)."""
    rows = []
    for a, action in enumerate(actions):
        for k in range(per_class):
            video_id = f"{action[:4]}{a}{k:03d}"
            write_action_video(Path(folder) / f"{video_id}.mp4", action, seed * 1000 + a * 100 + k, seconds)
            rows.append({"label": action, "youtube_id": video_id, "time_start": 0.5, "time_end": seconds - 0.5,
                         "split": "val" if k % 4 == 3 else "train"})
    return rows


def write_kinetics_csv(path: str | Path, rows: Sequence[dict]) -> Path:
    with atomic_open(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=["label", "youtube_id", "time_start", "time_end", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


class _FaultyHandler(SimpleHTTPRequestHandler):
    """Serves files, except: ids in `gone` -> 404, in `forbidden` -> 403, in `flaky` -> 503 for the first N requests."""

    gone: frozenset = frozenset()
    forbidden: frozenset = frozenset()
    flaky: dict = {}
    requests: Counter

    def log_message(self, *args) -> None:  # keep test and demo output clean
        pass

    def _fault(self) -> int | None:
        stem = Path(self.path.split("?")[0]).stem
        self.requests[stem] += 1
        if stem in self.gone:
            return 404
        if stem in self.forbidden:
            return 403
        if self.requests[stem] <= self.flaky.get(stem, 0):
            return 503
        return None

    def do_GET(self) -> None:
        code = self._fault()
        if code:
            self.send_error(code)
            return
        super().do_GET()

    def do_HEAD(self) -> None:
        code = self._fault()
        if code:
            self.send_error(code)
            return
        super().do_HEAD()


@contextlib.contextmanager
def serve_videos(folder: str | Path, gone: Sequence[str] = (), forbidden: Sequence[str] = (),
                 flaky: dict[str, int] | None = None) -> Iterator[tuple[str, Counter]]:
    """Serve `folder` on 127.0.0.1 (a free port) in a thread; yields (URL template with {youtube_id},
    request counter per id)."""
    counter: Counter = Counter()
    handler = type("Handler", (_FaultyHandler,), {"gone": frozenset(gone), "forbidden": frozenset(forbidden),
                                                  "flaky": dict(flaky or {}), "requests": counter})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{{youtube_id}}.mp4", counter
    finally:
        server.shutdown()
        server.server_close()
