import io

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from core.io import (AtomicVideoWriter, InputError, atomic_open, atomic_path, check_decoded_length, iter_video_frames,
                     list_files, read_audio, read_image, video_info, write_csv, write_json)
from tests.conftest import write_faststart_mp4


def test_atomic_path_keeps_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"version": 1})
    with pytest.raises(RuntimeError):
        with atomic_open(target) as handle:
            handle.write('{"version": 2, "half')
            raise RuntimeError("crash mid-write")
    assert target.read_text().strip().startswith('{\n  "version": 1')
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"], "temporary file left behind"


def test_atomic_path_keeps_suffix_for_format_sniffing_writers(tmp_path):
    with atomic_path(tmp_path / "clip.mp4") as tmp:
        assert tmp.suffix == ".mp4" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "clip.mp4").read_bytes() == b"x"


def test_write_csv_has_header_and_rows(tmp_path):
    path = write_csv(tmp_path / "a.csv", [{"path": "x.wav", "speaker": "ann", "probability": 0.5}])
    assert path.read_text().splitlines() == ["path,speaker,probability", "x.wav,ann,0.5"]


def test_read_audio_mixes_down_and_resamples(tmp_path):
    stereo = np.stack([np.sin(np.linspace(0, 100, 16000)), np.zeros(16000)], axis=1).astype(np.float32)
    sf.write(tmp_path / "s.wav", stereo, 16000)
    mono = read_audio(tmp_path / "s.wav", sample_rate=8000)
    assert mono.ndim == 1 and mono.dtype == np.float32
    assert abs(len(mono) - 8000) <= 1
    assert np.abs(mono).max() == pytest.approx(0.5, abs=0.05)  # mean of the two channels


@pytest.mark.parametrize("content, reason", [(b"", "empty file"), (b"RIFF not really a wav", "cannot decode audio")])
def test_read_audio_names_file_and_reason(tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(InputError, match=reason) as error:
        read_audio(path)
    assert str(path) in str(error.value)


def test_read_audio_rejects_too_short(tmp_path):
    sf.write(tmp_path / "short.wav", np.zeros(200, dtype=np.float32), 8000)  # 25 ms
    with pytest.raises(InputError, match="too short: 25 ms < 50 ms"):
        read_audio(tmp_path / "short.wav", min_seconds=0.05)


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P", "I;16"])
def test_read_image_any_mode_gives_rgb(tmp_path, mode):
    image = Image.new("RGB", (20, 10), (200, 30, 30)).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="TIFF" if mode in ("CMYK", "I;16") else "PNG")
    rgb = read_image(buffer.getvalue(), name=f"x.{mode}")
    assert rgb.shape == (10, 20, 3) and rgb.dtype == np.uint8


def test_read_image_errors(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buffer, format="JPEG")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(buffer.getvalue()[:200])
    with pytest.raises(InputError, match="cut.jpg: cannot decode image"):
        read_image(truncated)
    with pytest.raises(InputError, match="too small"):
        read_image(buffer.getvalue(), name="tiny.jpg", min_side=100)
    with pytest.raises(InputError, match="file not found"):
        read_image(tmp_path / "missing.png")


def test_read_image_error_is_clear_after_ultralytics_patches_pillow(tmp_path):
    import ultralytics  # noqa: F401  (patches PIL.Image.open process-wide)

    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match=r"bad.png: cannot decode image \(not an image format PIL reads"):
        read_image(tmp_path / "bad.png")


def test_list_files_empty_folder_is_an_error(tmp_path):
    (tmp_path / "notes.txt").write_text("no audio here")
    with pytest.raises(InputError, match="no files with extension"):
        list_files(tmp_path, [".wav"])


def test_video_round_trip_and_bad_video(tmp_path):
    frames = [np.full((48, 64, 3), i * 20, dtype=np.uint8) for i in range(10)]
    with AtomicVideoWriter(tmp_path / "v.mp4", fps=10, size=(64, 48)) as writer:
        for frame in frames:
            writer.write(frame)
    info = video_info(tmp_path / "v.mp4")
    assert (info.width, info.height, info.frame_count) == (64, 48, 10) and info.fps == pytest.approx(10)
    decoded = list(iter_video_frames(tmp_path / "v.mp4"))
    assert [i for i, _, _ in decoded] == list(range(10))
    assert decoded[5][1] == pytest.approx(0.5, abs=1e-3)  # timestamps from the container
    assert abs(int(decoded[5][2].mean()) - 100) < 8
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(InputError, match="broken.mp4"):
        list(iter_video_frames(tmp_path / "broken.mp4"))


def test_video_writer_discards_on_error(tmp_path):
    with pytest.raises(ValueError):
        with AtomicVideoWriter(tmp_path / "v.mp4", fps=10, size=(32, 32)) as writer:
            writer.write(np.zeros((32, 32, 3), np.uint8))
            raise ValueError("stop")
    assert list(tmp_path.iterdir()) == []


def test_truncated_video_is_reported_with_name_and_both_lengths(tmp_path, capsys):
    whole, cut = tmp_path / "whole.mp4", tmp_path / "cut.mp4"
    write_faststart_mp4(whole, frames=40)
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])

    decoded = list(iter_video_frames(whole))
    check = check_decoded_length(whole, len(decoded), decoded[-1][1])
    assert not check.truncated and check.missing_frames == 0
    assert capsys.readouterr().err == ""

    decoded = list(iter_video_frames(cut))
    assert 0 < len(decoded) < 40
    check = check_decoded_length(cut, len(decoded), decoded[-1][1])
    assert check.truncated and check.header_frames == 40 and check.header_seconds == pytest.approx(4.0, abs=0.05)
    assert check.missing_frames == 40 - len(decoded)
    warning = capsys.readouterr().err
    assert "warning:" in warning and "cut.mp4" in warning and f"decoded {len(decoded)} frames" in warning
    assert "40 frames (4.00 s)" in warning
    assert check.as_dict()["truncated"] is True


def test_ffmpeg_prints_nothing_of_its_own_on_a_cut_mp4(tmp_path):
    """A fresh process that imports `core` first (as every command does): OpenCV's FFmpeg backend opens an mp4
    cut before its index without FFmpeg's own "moov atom not found" on stderr; the caller's message is the one."""
    import subprocess
    import sys

    whole, cut = tmp_path / "whole.mp4", tmp_path / "cut.mp4"
    with AtomicVideoWriter(whole, fps=10, size=(32, 32)) as writer:  # OpenCV writes the index (moov) last
        for _ in range(10):
            writer.write(np.zeros((32, 32, 3), np.uint8))
    data = whole.read_bytes()
    cut.write_bytes(data[:data.index(b"moov") - 4])  # everything before the index box
    script = f"import core, cv2; print(cv2.VideoCapture({str(cut)!r}).isOpened())"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "False" and run.stderr == ""


def test_one_frame_short_header_is_not_truncation(tmp_path, capsys):
    # AVI headers are often one frame longer than what decodes (the dancer video: 1,572 vs 1,571)
    video = tmp_path / "v.mp4"
    write_faststart_mp4(video, frames=20)
    check = check_decoded_length(video, 19, 1.8)
    assert not check.truncated and check.missing_frames == 1
    assert check_decoded_length(video, 17, 1.6, warn=False).truncated
    assert capsys.readouterr().err == ""
