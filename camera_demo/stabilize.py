"""Readings that do not flicker: track each digit's box across frames and vote on its label.

Frame to frame, a hand-held camera moves a little and the classifier may change its mind on
a borderline digit. Each digit box is matched to a track from earlier frames by overlap (IoU,
greedy, best pairs first); the track keeps the labels of its last `window` frames and shows the
label with the largest summed probability. A box that matches nothing starts a new track; a
track unseen for `max_misses` frames is dropped. A correction made by the user pins the track's
label for as long as the track lives.
"""

from collections import deque
from dataclasses import dataclass, field

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every (x, y, w, h) box in a [N, 4] against every one in b [M, 4]."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    a, b = a.astype(np.float64), b.astype(np.float64)
    ax1, ay1, bx1, by1 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax1[:, None], bx1) - np.maximum(a[:, None, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(ay1[:, None], by1) - np.maximum(a[:, None, 1], b[:, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + b[:, 2] * b[:, 3] - inter
    return inter / np.maximum(union, 1e-9)


@dataclass
class Track:
    id: int
    box: tuple
    votes: deque                       # (label, prob) of the last frames
    misses: int = 0
    corrected: str | None = None       # a label the user gave; wins over the votes

    def vote(self):
        """(label, confidence): the label with the largest summed probability in the window, and
        that sum over the window length (a label read at 0.9 in every frame gives 0.9)."""
        if self.corrected is not None:
            return self.corrected, 1.0
        score = {}
        for label, prob in self.votes:
            score[label] = score.get(label, 0.0) + prob
        label = max(score, key=score.get)
        return label, score[label] / len(self.votes)


@dataclass
class Stabilizer:
    window: int = 8          # frames of votes per track
    iou: float = 0.3         # least overlap for a box to continue a track
    max_misses: int = 5      # frames a track survives unseen
    tracks: list = field(default_factory=list)
    next_id: int = 0

    def reset(self) -> None:
        self.tracks.clear()

    def update(self, digits) -> list:
        """Feed one frame's digits (with .box, .label, .prob); return their tracks, in order."""
        boxes = np.array([d.box for d in digits], dtype=np.float64).reshape(-1, 4)
        overlap = iou_matrix(boxes, np.array([t.box for t in self.tracks]).reshape(-1, 4))
        assigned: list = [None] * len(digits)
        used = set()
        for flat in np.argsort(-overlap, axis=None):
            i, j = np.unravel_index(flat, overlap.shape)
            if overlap[i, j] < self.iou:
                break
            if assigned[i] is None and j not in used:
                assigned[i] = self.tracks[j]
                used.add(j)
        for i, d in enumerate(digits):
            track = assigned[i]
            if track is None:
                track = Track(self.next_id, d.box, deque(maxlen=self.window))
                self.next_id += 1
                self.tracks.append(track)
                used.add(len(self.tracks) - 1)
            track.box, track.misses = tuple(d.box), 0
            track.votes.append((d.label, float(d.prob)))
            assigned[i] = track
        for j, t in enumerate(self.tracks):
            if j not in used:
                t.misses += 1
        self.tracks = [t for t in self.tracks if t.misses <= self.max_misses]
        return assigned
