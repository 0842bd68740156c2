import numpy as np
import pytest
import torch

from video_gestures.model import (CNNBiLSTMWithAttention, SequenceModule, attention_statistics,
                                  format_attention_statistics, predict_with_attention)


@pytest.mark.parametrize("channels,features", [(12, 768), (2, 2), (1, 2)])
def test_shapes_and_attention_sums_to_one(channels, features):
    torch.manual_seed(0)
    network = CNNBiLSTMWithAttention(num_classes=5, channels=channels, features=features, hidden=32).eval()
    x = torch.randn(3, 7, channels, features)
    logits, attention = network.forward_with_attention(x)
    assert logits.shape == (3, 5)
    assert attention["time"].shape == (3, 7)
    assert attention["channel"].shape == (3, 7, channels)
    assert torch.allclose(attention["time"].sum(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(attention["channel"].sum(dim=2), torch.ones(3, 7), atol=1e-5)
    assert (attention["time"] >= 0).all() and (attention["channel"] >= 0).all()


def test_wrong_layout_is_a_clear_error():
    network = CNNBiLSTMWithAttention(3, channels=12, features=768)
    with pytest.raises(ValueError, match=r"expected \(batch, time, 12, 768\)"):
        network(torch.randn(2, 4, 2, 2))


def test_time_order_changes_the_output():
    torch.manual_seed(0)
    network = CNNBiLSTMWithAttention(4, channels=1, features=2, hidden=16).eval()
    x = torch.randn(2, 10, 1, 2)
    reversed_x = x.flip(dims=[1])
    assert not torch.allclose(network(x), network(reversed_x), atol=1e-4)


def test_module_is_a_lightning_classifier_with_radam_onecycle_defaults():
    module = SequenceModule(["a", "b"], channels=2, features=2, hidden=16)
    assert module.optimizer_name == "radam" and module.scheduler_name == "onecycle"
    probabilities, time_attention, channel_attention = predict_with_attention(module, np.zeros((5, 16, 2, 2)))
    assert probabilities.shape == (5, 2) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    stats = attention_statistics(time_attention, channel_attention)
    assert len(stats["time_mean"]) == 16 and len(stats["channel_mean"]) == 2
    assert 0 <= stats["time_argmax"] < 16 and 0 <= stats["channel_argmin"] < 2
    assert "argmax step" in format_attention_statistics(stats)


def test_attention_statistics_find_the_extremes():
    time_attention = np.array([[0.1, 0.7, 0.2], [0.1, 0.5, 0.4]])
    channel_attention = np.tile(np.array([0.2, 0.1, 0.7]), (2, 3, 1))
    stats = attention_statistics(time_attention, channel_attention)
    assert stats["time_argmax"] == 1 and stats["time_argmin"] == 0
    assert stats["channel_argmax"] == 2 and stats["channel_argmin"] == 1
    assert np.allclose(stats["time_mean"], [0.1, 0.6, 0.3])


def test_deltas_and_input_standardisation():
    torch.manual_seed(0)
    network = CNNBiLSTMWithAttention(3, channels=2, features=4, hidden=16, deltas=True).eval()
    x = torch.randn(5, 6, 2, 4) * 10 + 3
    network.fit_input_statistics(x.numpy())
    assert torch.allclose(network.input_mean, x.flatten(0, 1).mean(0), atol=1e-4)
    logits, attention = network.forward_with_attention(x)
    assert logits.shape == (5, 3) and attention["channel"].shape == (5, 6, 4)  # 2 channels + 2 difference channels
    restored = CNNBiLSTMWithAttention(3, channels=2, features=4, hidden=16, deltas=True).eval()
    restored.load_state_dict(network.state_dict())  # the statistics travel with the weights
    assert torch.allclose(restored(x), network(x))


def test_centring_in_time_removes_what_does_not_move():
    torch.manual_seed(0)
    network = CNNBiLSTMWithAttention(2, channels=1, features=3, hidden=8, centre_time=True).eval()
    x = torch.randn(2, 5, 1, 3)
    assert torch.allclose(network(x), network(x + torch.randn(2, 1, 1, 3) * 5), atol=1e-4)  # a constant offset per clip


def test_separate_projection_knows_which_channel_is_which():
    """A shared projection summed over channels cannot tell "hand left, background right" from its mirror image
    (swapped channels give the same output); per-channel projections can."""
    torch.manual_seed(0)
    x = torch.randn(3, 5, 2, 6)
    swapped = x.flip(dims=[2])
    shared = CNNBiLSTMWithAttention(4, channels=2, features=6, hidden=16, channel_projection="shared").eval()
    separate = CNNBiLSTMWithAttention(4, channels=2, features=6, hidden=16, channel_projection="separate").eval()
    assert torch.allclose(shared(x), shared(swapped), atol=1e-5)
    assert not torch.allclose(separate(x), separate(swapped), atol=1e-3)
    with pytest.raises(ValueError, match="channel_projection"):
        CNNBiLSTMWithAttention(4, channels=2, features=6, channel_projection="mixed")
