"""The shared timeline picture: rows per label, reference rows on top, no-answer labels gray and last."""
import matplotlib

matplotlib.use("Agg")

from core.io import save_figure  # noqa: E402
from core.timeline import Panel, plot_segments  # noqa: E402


def test_rows_per_label_with_the_reference_on_top_and_no_answers_last(tmp_path):
    panel = Panel("talk", [(0.0, 2.0, "unknown_1"), (2.0, 4.0, "unknown"), (4.0, 6.0, "ana"), (6.0, 7.0, "ben")],
                  reference=[(0.0, 4.0, "ana"), (4.0, 7.0, "ben")])
    assert [name for name, _, _ in panel.rows()] == ["ref ana", "ref ben", "unknown_1", "ana", "ben", "unknown"]
    figure = plot_segments([panel, Panel("clip", [(1.0, 3.0, "Move")], curve=([1, 2, 3], [0.2, 0.9, 0.5]),
                                         threshold=0.7, duration=10.0)])
    axes = figure.axes
    assert [tick.get_text() for tick in axes[0].get_yticklabels()] == [name for name, _, _ in panel.rows()]
    assert axes[1].get_xlim() == (0.0, 10.0)
    bars = {axes[0].get_yticklabels()[i].get_text(): collection for i, collection in enumerate(axes[0].collections)}
    assert tuple(bars["unknown"].get_facecolor()[0][:3]) == (0.72, 0.72, 0.72)  # nothing known: gray
    assert bars["ref ana"].get_alpha() == 0.5 and bars["ana"].get_alpha() == 0.95
    assert len(axes) == 3 and axes[2].lines[0].get_ydata().tolist() == [0.2, 0.9, 0.5]  # the curve on its own scale
    assert save_figure(figure, tmp_path / "t.png").stat().st_size > 1000


def test_a_panel_without_segments_still_draws():
    figure = plot_segments([Panel("silence", [], duration=5.0)])
    assert figure.axes[0].get_xlim() == (0.0, 5.0)
