"""Track association: stable face ids across frames.

Between detections each track's crop box comes from its own previous landmarks (as MediaPipe and
OpenFace do), so the detector runs only every `detect_every` frames or when a track weakens. New
detections are matched to tracks by IoU (greedy, highest first); unmatched detections start tracks,
and a track that stays below the confidence threshold for `max_misses` frames ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sht_model import geometry


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 4) x (m, 4) boxes -> (n, m) IoU."""
    a, b = np.asarray(a, np.float64)[:, None, :4], np.asarray(b, np.float64)[None, :, :4]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area = lambda r: (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


@dataclass
class Track:
    face_id: int
    box: np.ndarray                      # crop box for the next frame (landmark-box convention)
    xy: np.ndarray | None = None         # last raw landmarks
    score: float = 0.0
    misses: int = 0
    age: int = 0
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))


class Tracks:
    def __init__(self, max_faces: int = 0, min_confidence: float = 0.35, max_misses: int = 3,
                 match_iou: float = 0.3):
        self.max_faces, self.min_confidence = max_faces, min_confidence
        self.max_misses, self.match_iou = max_misses, match_iou
        self.active: list[Track] = []
        self._next_id = 0

    def __len__(self) -> int:
        return len(self.active)

    @property
    def weak(self) -> bool:
        return any(t.misses > 0 for t in self.active)

    def boxes(self) -> np.ndarray:
        return np.array([t.box for t in self.active], np.float32).reshape(-1, 4)

    def add_detections(self, detections: np.ndarray) -> None:
        """Match detector boxes (n, >=4) to tracks; refresh weak tracks' boxes; start new tracks."""
        detections = np.asarray(detections, np.float32).reshape(-1, detections.shape[-1] if len(detections) else 5)
        unmatched = list(range(len(detections)))
        if self.active and len(detections):
            overlap = iou(self.boxes(), detections)
            matched_tracks: set[int] = set()
            for ti, di in zip(*np.unravel_index(np.argsort(-overlap, axis=None), overlap.shape)):
                if overlap[ti, di] < self.match_iou:
                    break
                if di not in unmatched or ti in matched_tracks:
                    continue
                if self.active[ti].misses > 0:   # the landmark-driven box drifted: trust the detector
                    self.active[ti].box = detections[di, :4].copy()
                unmatched.remove(di)
                matched_tracks.add(ti)
        for di in unmatched:
            if self.max_faces and len(self.active) >= self.max_faces:
                break
            if len(self.active) and iou(self.boxes(), detections[di:di + 1]).max() > self.match_iou:
                continue
            self.active.append(Track(self._next_id, detections[di, :4].copy()))
            self._next_id += 1

    def update(self, xy: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """Landmarks of every active track (same order as boxes()) -> success flags, ids of ended tracks."""
        success = np.zeros(len(self.active), bool)
        ended = []
        keep = []
        for i, track in enumerate(self.active):
            score = float(confidence[i].mean())
            track.score, track.age = score, track.age + 1
            new_box = geometry.landmark_box(xy[i]) if np.isfinite(xy[i]).all() else None
            if new_box is not None:
                # A face does not halve or double its size between frames: such a box is a failure.
                ratio = (new_box[2] - new_box[0]) / max(float(track.box[2] - track.box[0]), 1e-6)
                if not 0.6 < ratio < 1.6 or new_box[2] - new_box[0] < 4:
                    new_box = None
            if score >= self.min_confidence and new_box is not None:
                if track.xy is not None:
                    track.velocity = (new_box[:2] + new_box[2:]) / 2 - (track.box[:2] + track.box[2:]) / 2
                # Next crop: this frame's landmark box, moved on by the last centre motion.
                track.box = new_box + np.tile(track.velocity * 0.5, 2)
                track.xy, track.misses = xy[i], 0
                success[i] = True
            else:
                track.misses += 1
            # A new track that is not a face on its first frame is a detector false positive: drop it now,
            # or the detector re-runs every frame until it has missed max_misses times.
            if track.misses > self.max_misses or (track.age == 1 and track.misses > 0):
                ended.append(track.face_id)
            else:
                keep.append(i)
        self.active = [self.active[i] for i in keep]
        self._drop_duplicates(ended)
        return success, ended

    def _drop_duplicates(self, ended: list[int]) -> None:
        """Two tracks that converged on one face: keep the older one."""
        if len(self.active) < 2:
            return
        overlap = iou(self.boxes(), self.boxes())
        np.fill_diagonal(overlap, 0)
        drop = set()
        for i, j in zip(*np.nonzero(overlap > 0.5)):
            if i in drop or j in drop:
                continue
            younger = i if self.active[i].face_id > self.active[j].face_id else j
            drop.add(younger)
        for i in sorted(drop, reverse=True):
            ended.append(self.active[i].face_id)
            del self.active[i]
