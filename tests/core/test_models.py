"""core.models: a model file's format from its first bytes and its task from its metadata, without PyTorch for
the checks; core.io.check_output: outputs refused before any work."""
import sys

import numpy as np
import pytest
import torch

from core.io import InputError, check_output, iter_video_frames
from core.models import (CHECKPOINT, JOBLIB, NPZ, ONNX, checked_model, checkpoint_header, load_lightning_checkpoint,
                         onnx_metadata, onnx_model_session, sniff_format)
from core.onnx import export_onnx
from core.weights import weights_path


@pytest.fixture()
def tiny_onnx(tmp_path):
    return export_onnx(torch.nn.Linear(3, 2), torch.zeros(1, 3), tmp_path / "tiny.onnx", ["x"], ["y"],
                       {"labels": '["a", "b"]'}, task="emotion")


def test_formats_come_from_the_bytes_not_the_name(tmp_path, tiny_onnx):
    import joblib

    torch.save({"task": "emotion", "state_dict": {}}, tmp_path / "model.onnx")   # a checkpoint with the wrong name
    joblib.dump({"labels": ["a"]}, tmp_path / "model.ckpt")
    np.savez(tmp_path / "arrays.npz", w=np.zeros(2))
    assert sniff_format(tmp_path / "model.onnx") == CHECKPOINT
    assert sniff_format(tmp_path / "model.ckpt") == JOBLIB
    assert sniff_format(tmp_path / "arrays.npz") == NPZ
    assert sniff_format(tiny_onnx) == ONNX
    (tmp_path / "notes.onnx").write_text("ir_version: 8\n")
    with pytest.raises(InputError, match=r"notes.onnx: is not a model file \(text\)"):
        sniff_format(tmp_path / "notes.onnx")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        sniff_format(tmp_path / "empty.ckpt")


def test_a_checkpoint_says_its_task_and_labels_without_pytorch_running_its_code(tmp_path):
    torch.save({"task": "speaker_id", "labels": ["ann", "bob"], "state_dict": {"w": torch.ones(3)},
                "hyper_parameters": {"labels": ["ann", "bob"]}}, tmp_path / "voice.ckpt")
    header = checkpoint_header(tmp_path / "voice.ckpt")
    assert header["task"] == "speaker_id" and header["state_dict"]["w"] is not None
    model = checked_model(tmp_path / "voice.ckpt", "speaker_id")
    assert (model.format, model.task, model.labels) == (CHECKPOINT, "speaker_id", ["ann", "bob"])
    with pytest.raises(InputError, match="voice.ckpt: is a speaker_id model, not an emotion model"):
        checked_model(tmp_path / "voice.ckpt", "emotion")
    whole = (tmp_path / "voice.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match="cut.ckpt: damaged or truncated"):
        checked_model(tmp_path / "cut.ckpt", "speaker_id")


def test_onnx_metadata_is_read_from_the_protobuf_and_a_cut_file_is_found(tmp_path, tiny_onnx):
    assert onnx_metadata(tiny_onnx) == {"task": "emotion", "labels": '["a", "b"]'}
    session, metadata = onnx_model_session(tiny_onnx, "emotion", threads=1)
    assert metadata["task"] == "emotion" and session.run(None, {"x": np.ones((1, 3), np.float32)})[0].shape == (1, 2)
    with pytest.raises(InputError, match="is an emotion model, not an action_recognition model"):
        onnx_model_session(tiny_onnx, "action_recognition")
    with pytest.raises(InputError, match="no num_frames in its metadata"):
        onnx_model_session(tiny_onnx, "emotion", required=("num_frames",))
    data = tiny_onnx.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) - 40])
    with pytest.raises(InputError, match="cut.onnx: damaged or truncated ONNX file"):
        checked_model(tmp_path / "cut.onnx", "emotion")


def test_every_released_file_says_its_task():
    for task, name in [("emotion", "checkpoint"), ("emotion", "recognizer"), ("speaker_id", "cnn"),
                       ("video_gestures", "points"), ("action_recognition", "checkpoint"), ("action_recognition", "frame")]:
        assert checked_model(weights_path(task, name), task).task == task


def test_a_checkpoint_of_another_network_is_an_input_error(tmp_path):
    from emotion.model import EmotionModule

    torch.save({"state_dict": {"network.w": torch.zeros(2)}, "hyper_parameters": {"labels": ["a"]}},
               tmp_path / "old.ckpt")   # no task stamp: judged by whether it loads
    with pytest.raises(InputError, match="old.ckpt: is not an emotion checkpoint this code can load"):
        load_lightning_checkpoint(EmotionModule, tmp_path / "old.ckpt", "emotion", pretrained=False)


def test_checks_run_without_importing_pytorch(tmp_path):
    import subprocess

    torch.save({"task": "emotion", "state_dict": {}}, tmp_path / "m.ckpt")
    code = ("import sys; from core.models import checked_model; "
            f"checked_model({str(tmp_path / 'm.ckpt')!r}, 'emotion'); print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_outputs_are_checked_without_making_anything(tmp_path):
    assert check_output(tmp_path / "new" / "deeper" / "out.csv") == tmp_path / "new" / "deeper" / "out.csv"
    assert not (tmp_path / "new").exists(), "the check makes no folder; the writer does"
    (tmp_path / "folder").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        check_output(tmp_path / "folder")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InputError, match="file.txt is a file, not a folder"):
        check_output(tmp_path / "file.txt" / "out.csv")
    with pytest.raises(InputError, match="exists and is not a folder"):
        check_output(tmp_path / "file.txt", folder=True)
    with pytest.raises(InputError, match="needs one of the extensions .mp4"):
        check_output(tmp_path / "video", suffixes=(".mp4",))


def test_a_video_reader_tells_how_much_decoded(tmp_path, capsys):
    from tests.conftest import write_faststart_mp4

    whole = write_faststart_mp4(tmp_path / "whole.mp4", frames=30)
    (tmp_path / "cut.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    frames = iter_video_frames(whole)
    assert len(list(frames)) == 30 and frames.note == "" and not frames.decoded_length.truncated
    frames = iter_video_frames(tmp_path / "cut.mp4")
    decoded = len(list(frames))
    assert frames.decoded_length.truncated and frames.note.startswith(f"truncated: decoded {decoded} of 30 frames")
    assert f"warning: {tmp_path / 'cut.mp4'}: truncated video?" in capsys.readouterr().err
