"""Readers that name the file and the reason when they fail, and writers that never leave half a file.

Every output goes through `atomic_path`: the data is written to a temporary file beside the target and
renamed over it only when writing succeeded, so a crash or a bad input never leaves a truncated output.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


class InputError(ValueError):
    """A bad input file or folder; the message starts with its path."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


# ----------------------------------------------------------------------------------------- writing
@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target` (same suffix, so format-by-extension writers work);
    rename it to `target` on success, delete it on failure."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600; outputs get the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def check_output(target: str | os.PathLike, folder: bool = False, suffixes: Iterable[str] = ()) -> Path:
    """Say before any work starts whether `target` can be written: a file (or with `folder`, a folder to write
    files into) whose folder exists or can be made, and takes a new file. `suffixes`: the extensions a writer
    needs (a video writer picks its container by the name). An InputError naming `target` otherwise."""
    target = Path(target)
    suffixes = tuple(s.lower() for s in suffixes)
    if folder and target.exists() and not target.is_dir():
        raise InputError(target, "exists and is not a folder")
    if not folder and target.is_dir():
        raise InputError(target, "is a folder; give a file name")
    if suffixes and target.suffix.lower() not in suffixes:
        raise InputError(target, f"needs one of the extensions {', '.join(suffixes)}")
    # the nearest folder that exists must take a new entry (the writers make the missing ones; nothing is made here)
    directory = (target if folder else target.parent).absolute()
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    if not directory.is_dir():
        raise InputError(target, f"cannot be written: {directory} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-check.", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except (FileExistsError, NotADirectoryError):
        raise InputError(target, "cannot be written: part of its folder path is a file") from None
    except PermissionError:
        raise InputError(target, f"cannot be written: no permission to write in {directory}") from None
    except OSError as error:
        raise InputError(target, f"cannot be written ({error.strerror or error})") from None
    if not folder and target.exists() and not os.access(target, os.W_OK):
        raise InputError(target, "cannot be written: the existing file is read-only")
    return target


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(target: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[io.IOBase]:
    """Open a temporary file for writing that replaces `target` only when the block finishes."""
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
        kwargs.setdefault("newline", "")
    with atomic_path(target) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def write_json(target: str | os.PathLike, data: Any) -> Path:
    with atomic_open(target) as handle:
        json.dump(data, handle, indent=2, default=_json_default)
        handle.write("\n")
    return Path(target)


def write_csv(target: str | os.PathLike, table: Any, **to_csv_kwargs: Any) -> Path:
    """Write a pandas DataFrame (or anything `pandas.DataFrame` accepts) as CSV, atomically."""
    import pandas as pd

    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    to_csv_kwargs.setdefault("index", False)
    with atomic_open(target) as handle:
        frame.to_csv(handle, **to_csv_kwargs)
    return Path(target)


def save_figure(figure: Any, target: str | os.PathLike, dpi: int = 120) -> Path:
    import matplotlib.pyplot as plt

    with atomic_path(target) as tmp:
        figure.savefig(tmp, dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return Path(target)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


# ----------------------------------------------------------------------------------------- listing
def list_files(folder: str | os.PathLike, extensions: Iterable[str], recursive: bool = True) -> list[Path]:
    """Files under `folder` with one of `extensions` (case-insensitive), sorted; an error if none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "not a folder")
    extensions = tuple(e.lower() for e in extensions)
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in extensions)
    if not files:
        raise InputError(folder, f"no files with extension {', '.join(extensions)}")
    return files


# ----------------------------------------------------------------------------------------- audio
def _nonempty_file(path: str | os.PathLike) -> Path:
    """`path` if it is a file with something in it; the InputError every reader gives otherwise."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    if path.stat().st_size == 0:
        raise InputError(path, "empty file (0 bytes)")
    return path


def _audio_file(path: str | os.PathLike) -> Any:
    """An open soundfile.SoundFile, or an InputError: missing, empty or undecodable."""
    import soundfile as sf

    path = _nonempty_file(path)
    try:
        return sf.SoundFile(str(path))
    except Exception as error:  # soundfile raises several types for undecodable data
        raise InputError(path, f"cannot decode audio ({error})") from error


def read_audio(path: str | os.PathLike, sample_rate: int | None = None, min_seconds: float = 0.0) -> np.ndarray:
    """Read an audio file as mono float32 in [-1, 1], resampled to `sample_rate` when given."""
    path = Path(path)
    with _audio_file(path) as handle:
        rate = handle.samplerate
        try:
            samples = handle.read(dtype="float32", always_2d=True)
        except Exception as error:
            raise InputError(path, f"cannot decode audio ({error})") from error
    if samples.shape[0] == 0:
        raise InputError(path, "audio has no samples")
    _warn_if_truncated_wav(path, samples.shape[0], rate)
    mono = samples.mean(axis=1)
    if sample_rate is not None and rate != sample_rate:
        mono = resample(mono, rate, sample_rate)
        rate = sample_rate
    if mono.shape[0] < min_seconds * rate:
        raise InputError(path, f"too short: {mono.shape[0] / rate * 1000:.0f} ms < {min_seconds * 1000:.0f} ms")
    if not np.isfinite(mono).all():
        raise InputError(path, "audio contains NaN or infinite samples")
    return np.ascontiguousarray(mono, dtype=np.float32)


def iter_audio_blocks(path: str | os.PathLike, sample_rate: int | None = None,
                      block_seconds: float = 10.0) -> Iterator[np.ndarray]:
    """A recording as mono float32 blocks of `block_seconds`, resampled to `sample_rate`, read one block at a
    time (memory flat in its length). The errors of `read_audio`; a truncated WAV is warned about at its end.
    Each block is resampled on its own (no state across block edges: a sample of error at each edge)."""
    path = Path(path)
    with _audio_file(path) as handle:
        rate = handle.samplerate
        if handle.frames == 0:
            raise InputError(path, "audio has no samples")
        decoded, block = 0, max(1, int(block_seconds * rate))
        while True:
            try:
                samples = handle.read(block, dtype="float32", always_2d=True)
            except Exception as error:
                raise InputError(path, f"cannot decode audio after {decoded / rate:.1f} s ({error})") from error
            if not len(samples):
                break
            decoded += len(samples)
            mono = samples.mean(axis=1)
            if not np.isfinite(mono).all():
                raise InputError(path, "audio contains NaN or infinite samples")
            yield resample(mono, rate, sample_rate) if sample_rate is not None and rate != sample_rate else mono
        _warn_if_truncated_wav(path, decoded, rate)


def _warn_if_truncated_wav(path: Path, decoded_frames: int, rate: int) -> None:
    """A WAV whose data chunk states more bytes than the file holds lost its end (an interrupted copy or
    download); libsndfile reads what is there without a word, so say so: `warning: <path>: truncated audio?`."""
    if path.suffix.lower() != ".wav":
        return
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return
    position = 12
    while position + 8 <= len(head):
        chunk, size = head[position:position + 4], int.from_bytes(head[position + 4:position + 8], "little")
        if chunk == b"data":
            stated_bytes, present_bytes = size, path.stat().st_size - (position + 8)
            if 0 < present_bytes < stated_bytes and stated_bytes != 0xFFFFFFFF:  # 0xFFFFFFFF: a stream of unknown length
                stated_seconds = decoded_frames / rate * stated_bytes / present_bytes
                print(f"warning: {path}: truncated audio? {decoded_frames / rate:.2f} s decoded, its header says "
                      f"{stated_seconds:.2f} s; only the part that is there is used", file=sys.stderr)
            return
        position += 8 + size + (size & 1)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    import torch
    import torchaudio.functional as AF

    return AF.resample(torch.from_numpy(np.ascontiguousarray(samples)), from_rate, to_rate).numpy()


def write_audio(target: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> Path:
    import soundfile as sf

    with atomic_path(target) as tmp:
        sf.write(str(tmp), samples, sample_rate, subtype="PCM_16")
    return Path(target)


# ----------------------------------------------------------------------------------------- images
def read_image(source: str | os.PathLike | bytes, name: str | None = None, min_side: int = 1) -> np.ndarray:
    """Decode an image (path or raw bytes) to an RGB uint8 array, whatever its mode (gray, RGBA, CMYK, palette).

    `name` is the file name used in errors when `source` is bytes (for example a zip member)."""
    from PIL import Image, UnidentifiedImageError

    label = name or (str(source) if not isinstance(source, bytes) else "<bytes>")
    if not isinstance(source, bytes):
        path = Path(source)
        if not path.is_file():
            raise InputError(label, "file not found")
        source = path.read_bytes()
    if not source:
        raise InputError(label, "empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(source)) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                image = _flatten_alpha(image)
            rgb = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, ImportError) as error:
        # UnidentifiedImageError's message is the repr of the in-memory buffer, which says nothing. ImportError:
        # once ultralytics is imported it patches Image.open to retry unidentified bytes with the optional
        # pi-heif plugin, which raises ModuleNotFoundError where that plugin is not installed.
        raise InputError(label, "cannot decode image (not an image format PIL reads, or a damaged file)") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise InputError(label, f"cannot decode image ({error})") from error
    if min(rgb.shape[:2]) < min_side:
        raise InputError(label, f"image too small ({rgb.shape[1]}x{rgb.shape[0]} px, need {min_side} px per side)")
    return rgb


def _flatten_alpha(image: Any) -> Any:
    """Composite transparent images on white, as a viewer would show them."""
    from PIL import Image

    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba)


def write_image(target: str | os.PathLike, rgb: np.ndarray) -> Path:
    import cv2

    with atomic_path(target) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise InputError(target, "OpenCV could not encode the image")
    return Path(target)


# ----------------------------------------------------------------------------------------- video
@dataclass(frozen=True)
class VideoInfo:
    path: Path
    fps: float
    frame_count: int
    width: int
    height: int

    @property
    def duration_seconds(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


def _open_video(path: str | os.PathLike) -> Any:
    import cv2

    path = _nonempty_file(path)
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError(path, "cannot open video (unknown container or codec)")
    return capture


def video_info(path: str | os.PathLike) -> VideoInfo:
    capture = _open_video(path)
    try:
        return _capture_info(capture, path)
    finally:
        capture.release()


def _capture_info(capture: Any, path: str | os.PathLike) -> VideoInfo:
    """What an opened cv2.VideoCapture's container states."""
    import cv2

    return VideoInfo(path=Path(path), fps=float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
                     frame_count=int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
                     width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))


VIDEO_DECODERS = ("opencv", "av")


class VideoFrames:
    """The frames of a video file, one at a time: (index, timestamp in seconds from the container, RGB frame).
    An iterator, so nothing holds the whole video. After the last frame, `decoded_length` compares what
    decoded with what the container states (`check_decoded_length`), and a truncated file has been warned
    about on stderr; `note` is then the line an output keeps. An InputError if no frame decodes.
    Decoded by OpenCV; `AvVideoFrames` is the same with PyAV (`iter_video_frames(path, decoder="av")`)."""

    def __init__(self, path: str | os.PathLike, check_length: bool = True):
        self.path, self.check_length = Path(path), check_length
        self.decoded_length: DecodedLength | None = None
        self._frames = self._decode()

    def __iter__(self) -> "VideoFrames":
        return self

    def __next__(self) -> tuple[int, float, np.ndarray]:
        return next(self._frames)

    @property
    def note(self) -> str:
        length = self.decoded_length
        if length is None or not length.truncated:
            return ""
        return (f"truncated: decoded {length.decoded_frames} of {length.header_frames} frames "
                f"({length.decoded_seconds:.2f} of {length.header_seconds:.2f} s)")

    def _decode(self) -> Iterator[tuple[int, float, np.ndarray]]:
        import cv2

        capture = _open_video(self.path)
        info = _capture_info(capture, self.path)
        index, seconds = 0, 0.0
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                milliseconds = capture.get(cv2.CAP_PROP_POS_MSEC)
                # Some containers report 0 ms for every frame; fall back to index / fps then.
                seconds = (milliseconds / 1000.0 if (milliseconds > 0 or index == 0)
                           else index / info.fps if info.fps else 0.0)
                yield index, seconds, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                index += 1
        finally:
            capture.release()
        if index == 0:
            raise InputError(self.path, "no frame could be decoded")
        if self.check_length:
            self.decoded_length = check_decoded_length(self.path, index, seconds, info)


def iter_video_frames(path: str | os.PathLike, check_length: bool = True, decoder: str = "opencv") -> VideoFrames:
    """(index, seconds, RGB frame) of a video file, streamed; see `VideoFrames` (a truncated file is warned about).
    `decoder`: "opencv" (cv2.VideoCapture) or "av" (PyAV: what ffmpeg reads, GIF, MKV and WebM included, with
    each frame's own timestamp; `AvVideoFrames`)."""
    if decoder not in VIDEO_DECODERS:
        raise ValueError(f"decoder must be one of {VIDEO_DECODERS}, not {decoder!r}")
    return AvVideoFrames(path, check_length) if decoder == "av" else VideoFrames(path, check_length)


class AvVideoFrames(VideoFrames):
    """`VideoFrames` decoded by PyAV (ffmpeg's libraries), opened at once so a bad file fails here and the
    container's header is known before the first frame: `fps`, `header_frames` (0 when the container does not
    state it) and `header_seconds` (the video stream's duration, else the container's; 0.0 when neither is known).
    `lazy_frames()` yields (index, seconds, frame) where `frame.to_rgb(size)` converts only the frames a caller
    keeps (converting costs about as much as decoding). `threads`: ffmpeg's decoding threads (0: its choice).
    Timestamps are the frames' own, from the stream's start.
    The length check compares the decoded time with the container's duration where it states one (a header's frame
    count can include frames a decoder drops; the time they span still decodes), else the frame counts."""

    def __init__(self, path: str | os.PathLike, check_length: bool = True, threads: int = 0):
        self.path, self.check_length, self.decoder = Path(path), check_length, "av"
        self.decoded_length = None
        self._container = _open_av(self.path, threads)
        stream = self._container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self.width, self.height = stream.codec_context.width, stream.codec_context.height
        self.header_frames = max(int(stream.frames or 0), 0)
        self._stream_seconds = (float(stream.duration * stream.time_base)
                                if stream.duration and stream.time_base else 0.0)
        self._container_seconds = (self._container.duration / 1e6 if self._container.duration
                                   and self._container.duration > 0 else 0.0)
        self.header_seconds = self._stream_seconds or self._container_seconds
        self._frames = self._decode_av(lazy=False)

    def lazy_frames(self) -> Iterator[tuple[int, float, "AvFrame"]]:
        """(index, seconds, AvFrame) without converting each frame to RGB; use instead of iterating."""
        return self._decode_av(lazy=True)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def _decode_av(self, lazy: bool) -> Iterator[tuple[int, float, Any]]:
        import av

        container = self._container
        stream = container.streams.video[0]
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None and stream.time_base else 0.0
        fps = self.fps if self.fps > 0 else 30.0
        index, seconds = 0, 0.0
        try:
            frames = container.decode(stream)
            while True:
                try:
                    frame = next(frames)
                except StopIteration:
                    break
                except (av.error.FFmpegError, ValueError):   # a damaged packet past the good part: stop there, check below
                    break
                seconds = frame.time - start if frame.time is not None else index / fps
                yield index, max(seconds, 0.0), (AvFrame(frame) if lazy else frame.to_ndarray(format="rgb24"))
                index += 1
        finally:
            self.close()
        if index == 0:
            raise InputError(self.path, "no frame could be decoded")
        if self.check_length:
            # the container's duration counts every stream (audio may run on past the picture): allow half a second then
            tolerance = 1 if (self._stream_seconds or not self._container_seconds) else max(1, int(round(fps / 2)))
            check = DecodedLength(path=self.path, fps=fps, decoded_frames=index, decoded_seconds=seconds + 1.0 / fps,
                                  header_frames=self.header_frames, header_seconds=self.header_seconds,
                                  tolerance_frames=tolerance, count_frames=False)
            if check.truncated:
                print(f"warning: {check.warning()}", file=sys.stderr)
            self.decoded_length = check


class AvFrame:
    """A decoded frame not yet converted: `to_rgb()` as (H, W, 3) uint8, `to_rgb(size)` with its short side scaled
    to `size` by ffmpeg's scaler while converting (cheaper than converting the full frame, then resizing)."""

    __slots__ = ("frame",)

    def __init__(self, frame: Any):
        self.frame = frame

    def to_rgb(self, short_side: int | None = None) -> np.ndarray:
        if short_side is None:
            return self.frame.to_ndarray(format="rgb24")
        width, height = self.frame.width, self.frame.height
        scale = short_side / min(width, height)
        return self.frame.reformat(width=max(short_side, round(width * scale)), height=max(short_side, round(height * scale)),
                                   format="rgb24", interpolation="AREA" if scale < 1 else "BILINEAR").to_ndarray()


def _open_av(path: Path, threads: int = 0) -> Any:
    import av

    path = _nonempty_file(path)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as error:
        raise InputError(path, f"cannot open video (unknown container or codec: {error})") from None
    if not container.streams.video:
        container.close()
        raise InputError(path, "no video stream in the file")
    context = container.streams.video[0].codec_context
    context.thread_type, context.thread_count = "AUTO", threads   # 0: as many decoding threads as ffmpeg likes
    return container


def container_duration_seconds(path: str | os.PathLike) -> float:
    """The duration ffmpeg reads from the container's header (0.0 when it states none or cannot be read);
    it does not decode the video, so it still tells the full length of a file whose end is cut off."""
    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        try:
            meta = next(reader)
        finally:
            reader.close()
    except (OSError, RuntimeError, StopIteration):  # imageio-ffmpeg raises these for unreadable headers
        return 0.0
    duration = meta.get("duration")
    return float(duration) if duration and duration > 0 else 0.0


@dataclass(frozen=True)
class DecodedLength:
    """How much of a video decoded, against what its container says. `truncated` when more than
    `tolerance_frames` frames are missing by count or by duration (headers are often one frame off)."""

    path: Path
    fps: float
    decoded_frames: int
    decoded_seconds: float      # last decoded frame's timestamp plus one frame
    header_frames: int          # 0 when the container states none
    header_seconds: float       # 0.0 when the container states none
    tolerance_frames: int = 1
    count_frames: bool = True   # False: the frame count is compared only when the container states no duration

    @property
    def missing_frames(self) -> int:
        by_count = (self.header_frames - self.decoded_frames
                    if self.header_frames > 0 and (self.count_frames or self.header_seconds <= 0) else 0)
        by_duration = (self.header_seconds - self.decoded_seconds) * self.fps if self.header_seconds > 0 else 0.0
        return max(0, by_count, int(round(by_duration)))

    @property
    def truncated(self) -> bool:
        return self.missing_frames > self.tolerance_frames

    def warning(self) -> str:
        return (f"{self.path}: truncated video? decoded {self.decoded_frames} frames ({self.decoded_seconds:.2f} s), "
                f"the container says {self.header_frames} frames ({self.header_seconds:.2f} s); "
                f"the output covers only the decoded part")

    def as_dict(self) -> dict:
        return {"truncated": self.truncated, "decoded_frames": self.decoded_frames,
                "decoded_seconds": self.decoded_seconds, "header_frames": self.header_frames,
                "header_seconds": self.header_seconds, "missing_frames": self.missing_frames}


def check_decoded_length(path: str | os.PathLike, decoded_frames: int, last_timestamp: float,
                         info: VideoInfo | None = None, tolerance_frames: int = 1, warn: bool = True) -> DecodedLength:
    """Compare what a reader decoded (frame count, timestamp of the last frame) with the container's
    frame count and duration; with `warn`, a truncated video prints `warning: <path>: ...` to stderr."""
    info = info or video_info(path)
    fps = info.fps if info.fps > 0 else 30.0  # a container with no frame rate: the readers' own fallback
    check = DecodedLength(path=Path(path), fps=fps, decoded_frames=decoded_frames,
                          decoded_seconds=(last_timestamp + 1.0 / fps) if decoded_frames else 0.0,
                          header_frames=max(info.frame_count, 0), header_seconds=container_duration_seconds(path),
                          tolerance_frames=tolerance_frames)
    if warn and check.truncated:
        print(f"warning: {check.warning()}", file=sys.stderr)
    return check


def open_capture(source: str | os.PathLike, file_hint: str = "pass a video file with --source FILE") -> Any:
    """cv2.VideoCapture for a camera index ('0', '1', ...) or a video file, with a clear error when it cannot open
    (`file_hint`: how the command takes a file instead of a camera)."""
    import cv2

    source = str(source)
    if source.isdigit():
        capture = cv2.VideoCapture(int(source))
        if not capture.isOpened():
            raise InputError(f"camera {source}", f"cannot open the camera (no device, busy, or no permission); {file_hint}")
        return capture
    path = Path(source)
    if not path.is_file():
        raise InputError(path, "video file not found")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError(path, "cannot open video (unknown container or codec)")
    return capture


class AtomicVideoWriter:
    """cv2.VideoWriter that appears at `target` only after `close()` succeeds. Frames are RGB."""

    def __init__(self, target: str | os.PathLike, fps: float, size: tuple[int, int], codec: str = "mp4v"):
        import cv2

        self.target = Path(target)
        self._context = atomic_path(self.target)
        self._tmp = self._context.__enter__()
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*codec), fps, size)
        if not self._writer.isOpened():
            self._discard()
            raise InputError(self.target, f"cannot open a video writer (codec {codec})")
        self.size = size

    def write(self, rgb: np.ndarray) -> None:
        import cv2

        if (rgb.shape[1], rgb.shape[0]) != self.size:
            rgb = cv2.resize(rgb, self.size)
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self, keep: bool = True) -> None:
        self._writer.release()
        if keep:
            self._context.__exit__(None, None, None)
        else:
            self._discard()

    def _discard(self) -> None:
        """Leave nothing at the target (an exit with an error deletes the temporary file)."""
        self._context.__exit__(RuntimeError, RuntimeError("discarded"), None)

    def __enter__(self) -> "AtomicVideoWriter":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(keep=exc_type is None)
