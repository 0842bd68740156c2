"""The one timeline picture every task draws (STYLE.md: timelines are segments, drawn by one shared plot).

The CSV side is `SEGMENT_COLUMNS`. A recording is a `Panel`: its segments (start, end, label) in seconds, one row per label; optionally the
reference segments above them (pale, `ref <label>` rows; the diarization bench), and a score curve over the
rows (a window's best-class probability, with the answer threshold dashed; action timelines). Per-task code
only turns its own results into panels.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

Span = tuple[float, float, str]  # (start, end, label) in seconds

# Every timeline CSV (diarization turns, action segments, gesture occurrences) begins with these columns, then
# the task's own: the input, the segment in seconds, its label (a class, a name, or a no-answer label) and its score.
SEGMENT_COLUMNS = ("input", "start", "end", "label", "score")

# labels that say "nothing known here" are drawn gray, whatever their row
NO_ANSWER = ("unknown", "none", "no_hand", "no_face", "no_speech", "too_short", "no_gesture")


@dataclass
class Panel:
    title: str
    segments: Sequence[Span]
    reference: Sequence[Span] | None = None
    curve: tuple[Sequence[float], Sequence[float]] | None = None  # (seconds, a value in 0..1)
    threshold: float | None = None                                # drawn dashed on the curve's scale
    duration: float | None = None                                 # the x axis ends here (else the last segment)

    def rows(self) -> list[tuple[str, str, bool]]:
        """(row name, label, is reference) from the top: reference rows first, then the segments' labels."""
        reference = [(f"ref {label}", label, True) for label in _labels(self.reference or [])]
        return reference + [(label, label, False) for label in _labels(self.segments)] or [("", "", False)]


def _labels(spans: Sequence[Span]) -> list[str]:
    """Labels in order of first appearance, the no-answer ones last."""
    seen = list(dict.fromkeys(label for _, _, label in sorted(spans, key=lambda s: s[0])))
    return [label for label in seen if label not in NO_ANSWER] + [label for label in seen if label in NO_ANSWER]


def plot_segments(panels: Sequence[Panel]):
    """One panel per recording, a row per label: the matplotlib figure (`core.io.save_figure` writes and closes it)."""
    import matplotlib.pyplot as plt

    panels = list(panels) or [Panel("no segments", [])]
    heights = [len(panel.rows()) for panel in panels]
    longest = max(panel.duration or max([end for _, end, _ in panel.segments] or [1.0]) for panel in panels)
    figure, axes = plt.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": heights},
                                figsize=(max(9.0, min(20.0, 5 + longest / 8)), 0.9 + 0.35 * sum(heights) + 0.5 * len(panels)))
    labels = _labels([span for panel in panels for span in [*panel.segments, *(panel.reference or [])]])
    # tab10 / tab20 without their grays, which stand for the no-answer labels
    palette = [c for i, c in enumerate(plt.get_cmap("tab10").colors) if i != 7] if len(labels) <= 9 else \
        [c for i, c in enumerate(plt.get_cmap("tab20").colors) if i not in (14, 15)]
    colours = {label: palette[i % len(palette)] for i, label in enumerate(labels)}
    colours.update({label: (0.72, 0.72, 0.72, 1.0) for label in NO_ANSWER})
    for axis, panel in zip(axes[:, 0], panels):
        rows = panel.rows()
        for y, (_, label, is_reference) in enumerate(rows):
            spans = [(start, end - start) for start, end, other in (panel.reference if is_reference else panel.segments)
                     if other == label]
            axis.broken_barh(spans, (y - 0.4, 0.8), color=colours.get(label, "gray"), alpha=0.5 if is_reference else 0.95)
        axis.set_yticks(range(len(rows)), [name for name, _, _ in rows])
        axis.set_ylim(len(rows) - 0.4, -0.6)  # the first row on top
        end = panel.duration or max([e for _, e, _ in [*panel.segments, *(panel.reference or [])]] + [1.0])
        axis.set_xlim(0, max(end, 1e-6))
        axis.grid(axis="x", alpha=0.3)
        axis.set_title(panel.title, fontsize=9, loc="left")
        if panel.curve is not None:
            score = axis.twinx()
            score.plot(*panel.curve, color="black", linewidth=0.8)
            if panel.threshold is not None:
                score.axhline(panel.threshold, color="black", linestyle="--", linewidth=0.6)
            score.set_ylim(0, 1)
            score.set_yticks([0, 1])
            score.set_ylabel("p", rotation=0)
    axes[-1, 0].set_xlabel("seconds")
    figure.tight_layout()
    return figure

