"""Train briefly on synthetic voices, then use every CLI on the checkpoint (predict, validate, enroll)."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from core.env import REPO_ROOT
from core.io import InputError
from speaker_id import bench, calibrate, demo, enroll, predict, train, validate
from speaker_id.data import load_clips, read_clips
from speaker_id.inference import embed, load_model, predict_probabilities

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(voices_dir, tmp_path_factory):
    known = tmp_path_factory.mktemp("known")
    for speaker in ("ada", "bruno", "chen", "dora"):  # "emil" stays unseen, for enrolment
        shutil.copytree(voices_dir / speaker, known / speaker)
    runs = tmp_path_factory.mktemp("runs")
    result = train.main(["--data", str(known), "--runs-root", str(runs), "--run-name", "t", "--max-epochs", "15",
                         "--batch-size", "8", "--test-fraction", "0.25", "--no-progress-bar", "--accelerator", "cpu"])
    return result, known


def test_training_learns_synthetic_voices(trained):
    result, _ = trained
    assert result["report"].accuracy >= 0.9, result["report"]
    run_dir = result["run_dir"]
    for name in ("best.ckpt", "last.ckpt", "config.json", "metrics.json", "curves.png", "confusion.png"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] == result["report"].accuracy
    assert 0 < metrics["verify_threshold"] < 1
    assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*")), "TensorBoard log missing"


def test_predict_writes_schema_and_skips_bad_files(trained, tmp_path, capsys):
    result, known = trained
    inputs = tmp_path / "in"
    shutil.copytree(known / "ada", inputs)
    (inputs / "broken.wav").write_bytes(b"")
    predict.main(["--checkpoint", str(result["best_checkpoint"]), str(inputs), "-o", str(tmp_path / "p.csv")])
    table = pd.read_csv(tmp_path / "p.csv")
    assert list(table.columns) == ["path", "speaker", "probability"]
    assert len(table) == 20 and table["probability"].between(0, 1).all()
    assert (table["speaker"] == "ada").mean() >= 0.9
    assert "broken.wav: empty file" in capsys.readouterr().err


def test_onnx_and_torch_backends_agree(trained):
    result, known = trained
    clips = read_clips(load_clips(known), 8000, progress=False).waveforms[:40]
    fast, slow = (load_model(result["best_checkpoint"], backend=b) for b in ("onnx", "torch"))
    assert fast.session is not None and slow.session is None
    np.testing.assert_allclose(predict_probabilities(fast, clips), predict_probabilities(slow, clips), atol=1e-4)
    np.testing.assert_allclose(embed(fast, clips), embed(slow, clips), atol=1e-4)


def test_validate_writes_confusion(trained, tmp_path):
    result, known = trained
    metrics = validate.main(["--checkpoint", str(result["best_checkpoint"]), "--data", str(known), "--split", "all",
                             "--test-fraction", "0.25", "-o", str(tmp_path)])
    assert metrics["accuracy"] >= 0.9 and (tmp_path / "confusion.png").is_file()


@pytest.fixture(scope="module")
def cnn_calibration(trained, tmp_path_factory):
    """The trained CNN calibrated on development speakers (bruno, chen, dora: neither enrolled speaker)."""
    result, known = trained
    folder = tmp_path_factory.mktemp("calibration")
    manifest = folder / "development.csv"
    manifest.write_text("path,speaker\n" + "".join(f"{clip},{name}\n" for name in ("bruno", "chen", "dora")
                                                   for clip in sorted((known / name).glob("*.wav"))))
    calibrate.main(["--encoder", "cnn", "--checkpoint", str(result["best_checkpoint"]), "--data", str(manifest),
                    "--no-vad", "-o", str(folder / "cnn.json")])
    return folder / "cnn.json"


def test_the_cnn_is_refused_for_new_voices_until_calibrated(trained, voices_dir, tmp_path):
    result, _ = trained
    registry = tmp_path / "registry.json"
    emil = sorted((voices_dir / "emil").glob("*.wav"))
    with pytest.raises(InputError, match="not calibrated for speakers it was not trained on.*--calibration"):
        enroll.main(["enroll", "--encoder", "cnn", "--checkpoint", str(result["best_checkpoint"]), "--registry",
                     str(registry), "--no-vad", "--name", "emil", *map(str, emil[:5])])
    assert not registry.exists()


def test_a_cnn_registry_finds_its_checkpoint_when_the_folder_moves(trained, voices_dir, cnn_calibration, tmp_path):
    result, _ = trained
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(result["best_checkpoint"], folder / "best.ckpt")
    emil = sorted((voices_dir / "emil").glob("*.wav"))
    calibration = json.loads(cnn_calibration.read_text())
    calibration["encoder"]["checkpoint"] = str((folder / "best.ckpt").resolve())  # the same weights, at their new place
    (folder / "cnn.json").write_text(json.dumps(calibration))
    enroll.main(["enroll", "--encoder", "cnn", "--checkpoint", str(folder / "best.ckpt"), "--calibration",
                 str(folder / "cnn.json"), "--registry", str(folder / "registry.json"), "--no-vad", "--name", "emil",
                 *map(str, emil[:5])])
    assert json.loads((folder / "registry.json").read_text())["encoder"]["checkpoint"] == "best.ckpt"
    moved = shutil.move(str(folder), str(tmp_path / "elsewhere"))
    rows = enroll.main(["identify", "--registry", str(tmp_path / "elsewhere" / "registry.json"), "--no-vad",
                        "--threshold", "-1", *map(str, emil[5:7])])
    assert [r["speaker"] for r in rows] == ["emil", "emil"] and moved


def test_enrol_unseen_speaker_then_identify_and_verify(trained, voices_dir, cnn_calibration, tmp_path):
    result, known = trained
    registry = tmp_path / "registry.json"
    emil = sorted((voices_dir / "emil").glob("*.wav"))
    ada = sorted((voices_dir / "ada").glob("*.wav"))
    raw = ["--no-vad", "--min-speech", "0.2"]  # generated voices: no voice-activity detection
    enroll.main(["enroll", "--encoder", "cnn", "--checkpoint", str(result["best_checkpoint"]), "--registry", str(registry),
                 "--calibration", str(cnn_calibration), *raw, "--name", "emil", *map(str, emil[:5])])
    enroll.main(["enroll", "--registry", str(registry), *raw, "--name", "ada", *map(str, ada[:5])])
    # Closed-set identification among the enrolled speakers (threshold off): the ranking must be right.
    rows = enroll.main(["identify", "--registry", str(registry), *raw, "--threshold", "-1", *map(str, emil[5:] + ada[5:])])
    truth = ["emil"] * len(emil[5:]) + ["ada"] * len(ada[5:])
    assert sum(r["speaker"] == t for r, t in zip(rows, truth)) / len(truth) >= 0.8
    verified = enroll.main(["verify", "--registry", str(registry), *raw, "--claim", "emil", *map(str, emil[5:] + ada[5:])])
    genuine = [r["score"] for r in verified[:len(emil[5:])]]
    impostor = [r["score"] for r in verified[len(emil[5:]):]]
    assert np.median(genuine) > np.max(impostor), "the claimed speaker's clips must outscore another speaker's"
    assert sum(r["accepted"] for r in verified[len(emil[5:]):]) == 0, "another speaker must be rejected"


def test_registry_refuses_clips_of_another_encoder(trained, voices_dir, cnn_calibration, tmp_path):
    result, _ = trained
    registry = tmp_path / "registry.json"
    emil = sorted((voices_dir / "emil").glob("*.wav"))
    enroll.main(["enroll", "--encoder", "cnn", "--checkpoint", str(result["best_checkpoint"]), "--registry", str(registry),
                 "--calibration", str(cnn_calibration), "--no-vad", "--name", "emil", *map(str, emil[:5])])
    before = registry.read_bytes()
    with pytest.raises(InputError, match="holds cnn .* embeddings, not ge2e"):
        enroll.main(["enroll", "--encoder", "ge2e", "--registry", str(registry), "--no-vad", "--name", "x", *map(str, emil[5:8])])
    assert registry.read_bytes() == before


@pytest.mark.parametrize("module", [train, predict, validate, enroll, calibrate, bench, demo])
def test_every_script_explains_itself(module, capsys):
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_script_also_runs_as_a_file():
    completed = subprocess.run([sys.executable, str(REPO_ROOT / "speaker_id" / "predict.py"), "--help"],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert "path,speaker,probability" in completed.stdout


def test_ddp_two_cpu_processes(voices_dir, tmp_path):
    """Two processes with DDP (gloo) for one short epoch, through the same train.py users run."""
    completed = subprocess.run(
        [sys.executable, "-m", "speaker_id.train", "--data", str(voices_dir), "--runs-root", str(tmp_path),
         "--run-name", "ddp", "--max-epochs", "1", "--batch-size", "8", "--accelerator", "cpu", "--devices", "2",
         "--strategy", "ddp", "--no-progress-bar"],
        capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in completed.stderr + completed.stdout
    run_dir = tmp_path / "speaker_id" / "ddp"
    assert (run_dir / "best.ckpt").is_file() and (run_dir / "metrics.json").is_file()


def test_training_is_reproducible(voices_dir, tmp_path):
    """Same seed, same data: the same weights, bit for bit (the seed must come before the model is built)."""
    weights = []
    for run in ("a", "b"):
        result = train.main(["--data", str(voices_dir), "--runs-root", str(tmp_path), "--run-name", run, "--max-epochs", "1",
                             "--batch-size", "16", "--no-progress-bar", "--accelerator", "cpu"])
        weights.append(torch.load(result["best_checkpoint"], map_location="cpu", weights_only=False)["state_dict"])
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
