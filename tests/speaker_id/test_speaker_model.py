import numpy as np
import pytest
import torch

from speaker_id.inference import windows
from speaker_id.model import SpeakerCNN, SpeakerModule
from speaker_id.verification import SpeakerRegistry, enrolment_eer


def test_model_shapes_and_normalised_embeddings():
    model = SpeakerModule(["a", "b", "c"], sample_rate=8000, clip_seconds=0.5).eval()
    batch = torch.randn(4, model.num_samples)
    assert model(batch).shape == (4, 3)
    embeddings = model.embed(batch)
    assert embeddings.shape == (4, 128)
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(4), atol=1e-5)


def test_cnn_has_five_conv_layers_and_one_linear():
    network = SpeakerCNN(6)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in network.modules()) == 5
    assert sum(isinstance(m, torch.nn.Linear) for m in network.modules()) == 1
    with pytest.raises(ValueError, match="five conv layers"):
        SpeakerCNN(6, channels=(8, 16))


def test_augmentation_only_in_training():
    model = SpeakerModule(["a", "b"], clip_seconds=0.5)
    wave = torch.randn(2, model.num_samples)
    model.eval()
    assert torch.equal(model.frontend(wave), model.frontend(wave))
    model.train()
    assert not torch.equal(model.frontend(wave), model.frontend(wave))


def test_long_clips_are_windowed():
    parts = windows(np.arange(2500, dtype=np.float32), 1000)
    assert [p[0] for p in parts] == [0, 500, 1000, 1500]
    assert all(len(p) == 1000 for p in parts)
    assert len(windows(np.ones(300, np.float32), 1000)) == 1


def test_registry_identify_verify_and_round_trip(tmp_path):
    axis = np.eye(4, dtype=np.float32)
    registry = SpeakerRegistry({"name": "cnn", "checkpoint": "model.ckpt"}, threshold=0.5)
    registry.enroll("ann", np.stack([axis[0], axis[0] * 0.9 + axis[1] * 0.1]))
    registry.enroll("bob", axis[2:3])
    clips = np.stack([axis[0], axis[2], axis[3]])
    assert [name for name, _ in registry.identify(clips)] == ["ann", "bob", "unknown"]
    assert [accepted for accepted, _ in registry.verify(clips, "bob")] == [False, True, False]
    registry.save(tmp_path / "r.json")
    loaded = SpeakerRegistry.load(tmp_path / "r.json")
    assert loaded.names == ["ann", "bob"] and loaded.clip_counts == {"ann": 2, "bob": 1}
    np.testing.assert_allclose(loaded.speakers["ann"], registry.speakers["ann"], atol=1e-6)
    with pytest.raises(KeyError, match="not enrolled"):
        registry.verify(clips, "carl")


def test_enrolment_eer_separates_clusters():
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:2]
    embeddings = np.concatenate([c + rng.normal(0, 0.1, (30, 8)) for c in centres])
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    result = enrolment_eer(embeddings, ["x"] * 30 + ["y"] * 30, enroll_per_speaker=5)
    assert result["eer"] == 0.0 and result["target_trials"] == 50 and result["nontarget_trials"] == 50
    with pytest.raises(ValueError, match="need more than 40"):
        enrolment_eer(embeddings, ["x"] * 30 + ["y"] * 30, enroll_per_speaker=40)


def test_the_numpy_stft_is_torchaudios():
    import torch

    from speaker_id.inference import power_spectrogram
    from speaker_id.model import LogMelFrontend

    frontend = LogMelFrontend(8000, 40)
    waveforms = np.random.default_rng(0).normal(size=(2, 4000)).astype(np.float32)
    reference = frontend.mel.spectrogram(torch.from_numpy(waveforms)).numpy()
    assert np.allclose(power_spectrogram(waveforms, **frontend.stft), reference, rtol=1e-4, atol=1e-3)
