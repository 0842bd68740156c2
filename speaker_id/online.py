"""Online diarization: labels emitted while the audio is read, each at most `delay_seconds` after its speech.

`OnlineDiarizer` is the offline `Diarizer` (same VAD, windows, embeddings and registry) with the clustering
done as the windows arrive: a new window joins the online cluster whose mean embedding it is closest to when
the cosine similarity reaches `join_similarity`, else it starts a new cluster. A cluster is named from the
registry as soon as its mean embedding reaches the calibrated threshold with the margin (the offline rule).
A speech frame's label is emitted once the stream is `delay_seconds` past it: the cluster of the embedded
window whose centre is nearest to it then, with a change of speaker near a pause moved to the pause as the
offline pass does (`snap_changes_to_pauses`; the delay covers the look ahead). Emitted labels are never revised,
so an unknown speaker's first seconds may be `unknown_N` before their cluster is large enough to be named.
"""
from __future__ import annotations

import numpy as np

from speaker_id.diarization import FRAME_SECONDS, Diarization, Diarizer, SpeakerCluster, Turn, _unit, snap_changes_to_pauses


class OnlineDiarizer(Diarizer):
    def __init__(self, registry=None, delay_seconds: float = 1.5, join_similarity: float = 0.75, on_label=None, **kwargs):
        super().__init__(registry, batch_size=1, **kwargs)
        self.on_label = on_label  # called as on_label(start, end, label, emitted_at) for each turn piece emitted
        self.delay_frames = int(round(delay_seconds / FRAME_SECONDS))
        self.join_similarity = join_similarity
        self.reset()

    def reset(self) -> None:
        super().reset()
        self._sums: list[np.ndarray] = []
        self._counts: list[int] = []
        self._assigned = 0                      # windows given an online cluster so far
        self._centres: list[float] = []          # speech-stream centre of each assigned window
        self._clusters: list[int] = []           # its online cluster
        self._emitted = 0                        # speech frames whose label was emitted
        self._unknown_numbers: dict[int, int] = {}
        self.emitted: list[tuple[int, str, float]] = []  # (original frame, label, audio seconds when emitted)

    def push(self, samples: np.ndarray) -> list[tuple[float, float, str]]:
        """Push audio; returns the labels emitted now as (frame start, frame end, label) in seconds."""
        super().push(samples)
        self._embed_queued()
        self._assign()
        return self._emit(final=False)

    def _assign(self) -> None:
        order = np.argsort(self._window_starts, kind="stable")
        width = self.window_frames
        for index in order[self._assigned:] if len(order) > self._assigned else []:
            embedding = self._embeddings[index]
            if self._sums:
                similarities = [float(_unit(s) @ embedding) for s in self._sums]
                best = int(np.argmax(similarities))
            if not self._sums or similarities[best] < self.join_similarity:
                self._sums.append(embedding.copy())
                self._counts.append(1)
                best = len(self._sums) - 1
            else:
                self._sums[best] = self._sums[best] + embedding
                self._counts[best] += 1
            self._centres.append(self._window_starts[index] + width / 2)
            self._clusters.append(best)
        self._assigned = len(order)

    def _label(self, cluster: int) -> str:
        if self.registry is not None and self.registry.speakers and self._counts[cluster] >= 2:
            name = self._registry_name(_unit(self._sums[cluster]), self._windows_seconds(self._counts[cluster]))
            if name is not None:
                return name
        if cluster not in self._unknown_numbers:
            self._unknown_numbers[cluster] = len(self._unknown_numbers) + 1
        return f"unknown_{self._unknown_numbers[cluster]}"

    def _emit(self, final: bool) -> list[tuple[float, float, str]]:
        if not self._centres:
            return []
        now = self._frames
        clusters = self._snapped_clusters()
        out = []
        while self._emitted < len(self._speech_frames):
            frame = self._speech_frames[self._emitted]
            if not final and frame + 1 + self.delay_frames > now:
                break
            label = self._label(clusters[self._emitted])
            self.emitted.append((frame, label, now * FRAME_SECONDS))
            out.append((frame * FRAME_SECONDS, (frame + 1) * FRAME_SECONDS, label))
            self._emitted += 1
        if self.on_label is not None and out:  # one line per label run of this push
            start = out[0][0]
            for i, (s, e, label) in enumerate(out):
                if i + 1 == len(out) or out[i + 1][2] != label or out[i + 1][0] - e > 0.3:
                    self.on_label(start, e, label, now * FRAME_SECONDS)
                    if i + 1 < len(out):
                        start = out[i + 1][0]
        return out

    def _snapped_clusters(self) -> dict[int, int]:
        """The cluster of each speech frame not yet emitted (its nearest window's), with changes near a pause moved
        to the pause as offline (`snap_changes_to_pauses`); a stretch's end is known here because a label is
        emitted `delay_seconds` (more than `snap_seconds` + `pause_seconds`) after its frame. Looks back at most
        `snap_frames` into the stretch of the first frame: where the stretch began earlier, a one-frame sentinel
        run stands for its start, so the start rule changes only the sentinel."""
        speech = self._speech_frames
        if self._emitted >= len(speech):
            return {}
        lo = self._emitted
        while lo > 0 and self._emitted - lo < self.snap_frames and speech[lo] - speech[lo - 1] <= self.pause_frames:
            lo -= 1
        centres = np.asarray(self._centres)
        near = np.flatnonzero(centres >= lo - self.window_frames)  # the windows around these frames
        near = near if len(near) else np.arange(len(centres))
        positions = np.arange(lo, len(speech)) + 0.5
        nearest = near[np.abs(positions[:, None] - centres[near][None, :]).argmin(1)]
        labels = np.asarray(self._clusters)[nearest]
        frames = np.asarray(speech[lo:])
        in_stretch = lo > 0 and speech[lo] - speech[lo - 1] <= self.pause_frames
        if in_stretch:
            labels, frames = np.r_[-1, labels], np.r_[frames[0] - 1, frames]
        snapped = snap_changes_to_pauses(frames, labels, self.snap_frames, self.pause_frames)[int(in_stretch):]
        return {lo + i: int(c) for i, c in enumerate(snapped) if lo + i >= self._emitted}

    def finish(self, uri: str = "recording") -> Diarization:
        if len(self._pending):
            Diarizer.push(self, np.zeros(512 - len(self._pending), np.float32))
        self._cut_windows(final=True)
        self._embed_queued()
        self._assign()
        self._emit(final=True)
        turns: list[list] = []
        for frame, label, _ in self.emitted:
            if turns and turns[-1][2] == label and frame - turns[-1][1] <= self.fill_gap_seconds / FRAME_SECONDS:
                turns[-1][1] = frame + 1
            else:
                turns.append([frame, frame + 1, label])
        result = [Turn(round(s * FRAME_SECONDS, 3), round(e * FRAME_SECONDS, 3), label) for s, e, label in turns
                  if (e - s) * FRAME_SECONDS >= self.min_turn_seconds]
        seconds: dict[str, float] = {}
        for _, label, _ in self.emitted:
            seconds[label] = seconds.get(label, 0.0) + FRAME_SECONDS
        clusters = [SpeakerCluster(label, np.zeros(0), s) for label, s in seconds.items()]
        return Diarization(uri, self._frames * FRAME_SECONDS, result, clusters, len(self._speech_frames) * FRAME_SECONDS,
                           note="no_speech" if not result else "")

    def latencies(self) -> np.ndarray:
        """Seconds from the end of each speech frame to the emission of its label."""
        return np.asarray([emitted_at - (frame + 1) * FRAME_SECONDS for frame, _, emitted_at in self.emitted])
