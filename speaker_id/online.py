"""Online diarization: labels emitted while the audio is read, each at most `delay_seconds` after its speech.

`OnlineDiarizer` is the offline `Diarizer` (same VAD, windows, embeddings and registry) with the clustering
done as the windows arrive: a new window joins the online cluster whose mean embedding it is closest to when
the cosine similarity reaches `join_similarity`, else it starts a new cluster. As offline, two enrolled voices
are never joined: when the registry names a window together with the one before it (1.25 s of speech), the
clusters named otherwise are closed to it. A cluster is named from the registry as soon as its mean embedding
reaches the calibrated threshold with the margin (the offline rule).
A speech frame's label is emitted once the stream is `delay_seconds` past it: the cluster that the windows
covering it score highest on average then (clusters of one window and clusters of overlapped speech, as the
offline pass finds them, do not compete), with a change of speaker near a pause moved to the pause as the
offline pass does (`snap_changes_to_pauses`; the delay covers the look ahead). Emitted labels are never revised,
so an unknown speaker's first seconds may be `unknown_N` before their cluster is large enough to be named, and
speech heard before the recording's first second of speech (one window) is `too_short`.
"""
from __future__ import annotations

import numpy as np

from speaker_id.diarization import (FRAME_SECONDS, Diarization, Diarizer, SpeakerCluster, _unit, covering_window_labels,
                                    mixture_pair, snap_changes_to_pauses)
from speaker_id.verification import TOO_SHORT


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
        self._starts: list[int] = []             # speech-stream start of each assigned window
        self._clusters: list[int] = []           # its online cluster
        self._window_embeddings: list[np.ndarray] = []  # its embedding
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
        for index in order[self._assigned:] if len(order) > self._assigned else []:
            embedding = self._embeddings[index]
            if self._sums:
                similarities = np.array([float(_unit(s) @ embedding) for s in self._sums])
                claimed = self._claimed(embedding)
                if claimed is not None:  # never join two enrolled voices (the offline rule)
                    similarities[[self._name(i) not in (None, claimed) for i in range(len(self._sums))]] = -1.0
                best = int(np.argmax(similarities))
            if not self._sums or similarities[best] < self.join_similarity:
                self._sums.append(embedding.copy())
                self._counts.append(1)
                best = len(self._sums) - 1
            else:
                self._sums[best] = self._sums[best] + embedding
                self._counts[best] += 1
            self._starts.append(self._window_starts[index])
            self._clusters.append(best)
            self._window_embeddings.append(embedding)
        self._assigned = len(order)

    def _claimed(self, embedding: np.ndarray) -> str | None:
        """The enrolled name that this window and the one before it (1.25 s of speech; one window is under the
        shortest calibrated amount) are given by the offline naming rule, else None."""
        if self.registry is None or not self.registry.speakers or not self._window_embeddings:
            return None
        return self._registry_name(_unit(self._window_embeddings[-1] + embedding), self._windows_seconds(2))

    def _mixed(self, cluster: int) -> bool:
        """Whether an unnamed cluster's mean lies within `mixture_similarity` of a mix of two larger clusters'
        means: overlapped speech, as the offline pass finds it (`Diarizer._dissolve_mixtures`)."""
        larger = [i for i, count in enumerate(self._counts) if count > self._counts[cluster]]
        if len(larger) < 2:
            return False
        mean = _unit(self._sums[cluster])
        if mixture_pair(mean, np.stack([_unit(self._sums[i]) for i in larger]), self.mixture_similarity) is None:
            return False
        return self._name(cluster) is None

    def _name(self, cluster: int) -> str | None:
        """The cluster's enrolled name by the offline naming rule, once it holds two windows; else None."""
        if self.registry is None or not self.registry.speakers or self._counts[cluster] < 2:
            return None
        return self._registry_name(_unit(self._sums[cluster]), self._windows_seconds(self._counts[cluster]))

    def _label(self, cluster: int) -> str:
        name = self._name(cluster)
        if name is not None:
            return name
        if cluster not in self._unknown_numbers:
            self._unknown_numbers[cluster] = len(self._unknown_numbers) + 1
        return f"unknown_{self._unknown_numbers[cluster]}"

    def _emit(self, final: bool) -> list[tuple[float, float, str]]:
        if final and not self._starts:  # under half a second of speech in the whole recording: no labels
            return []
        now = self._frames
        clusters = self._snapped_clusters() if self._starts else {}
        labels: dict[int, str] = {}  # each cluster's label, scored against the registry once per emission
        out = []
        while self._emitted < len(self._speech_frames):
            frame = self._speech_frames[self._emitted]
            if not final and frame + 1 + self.delay_frames > now:
                break
            # before the first second of speech is heard there is no window to label from; the delay is kept
            if self._starts:
                cluster = clusters[self._emitted]
                if cluster not in labels:
                    labels[cluster] = self._label(cluster)
                label = labels[cluster]
            else:
                label = TOO_SHORT
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
        """The cluster of each speech frame not yet emitted (`covering_window_labels`), with changes near a pause moved
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
        width = self.window_frames
        starts = np.asarray(self._starts)
        near = np.flatnonzero(starts + width / 2 >= lo - width)  # the windows around these frames
        near = near if len(near) else np.arange(len(starts))
        # as offline: each frame takes the cluster that the windows covering it score highest on average;
        # clusters of one window (mostly windows across a change of speaker) and clusters of overlapped speech
        # (`_mixed`) do not compete
        eligible = [i for i, count in enumerate(self._counts) if count >= 2 and not self._mixed(i)]
        scores = (np.stack([self._window_embeddings[i] for i in near]) @ np.stack([_unit(self._sums[i]) for i in eligible]).T
                  if eligible else np.zeros((len(near), 0)))
        labels = covering_window_labels(starts[near], scores, np.asarray(self._clusters)[near], np.asarray(eligible, int),
                                        lo, len(speech) - lo, width)
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
        result = self._frames_to_turns([frame for frame, _, _ in self.emitted], [label for _, label, _ in self.emitted])
        seconds: dict[str, float] = {}
        for _, label, _ in self.emitted:
            seconds[label] = seconds.get(label, 0.0) + FRAME_SECONDS
        clusters = [SpeakerCluster(label, np.zeros(0), s) for label, s in seconds.items()]
        return Diarization(uri, self._frames * FRAME_SECONDS, result, clusters, len(self._speech_frames) * FRAME_SECONDS,
                           note="no_speech" if not result else "")

    def latencies(self) -> np.ndarray:
        """Seconds from the end of each speech frame to the emission of its label."""
        return np.asarray([emitted_at - (frame + 1) * FRAME_SECONDS for frame, _, emitted_at in self.emitted])
