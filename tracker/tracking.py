"""Track association: stable face ids across frames.

Each track's crop box comes from its own previous landmarks (as MediaPipe and OpenFace do); the detector
finds new faces (tracker.scan) and re-checks existing ones. Detections are matched to tracks by IoU (greedy,
highest first); unmatched ones start tentative tracks (see Tracks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sht_model import geometry

from .options import TrackerOptions


def _intersections(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, 4) x (m, 4) boxes -> (n, m) intersection areas, (n, 1) areas of a, (1, m) areas of b."""
    a, b = np.asarray(a, np.float64)[:, None, :4], np.asarray(b, np.float64)[None, :, :4]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    area = lambda r: (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])  # noqa: E731
    return w * h, area(a), area(b)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 4) x (m, 4) boxes -> (n, m) IoU."""
    inter, area_a, area_b = _intersections(a, b)
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def intersection_over_smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 4) x (m, 4) boxes -> (n, m) intersection area over the smaller box's area."""
    inter, area_a, area_b = _intersections(a, b)
    return inter / np.maximum(np.minimum(area_a, area_b), 1e-9)


@dataclass
class Track:
    face_id: int                         # -1 until confirmed: ids are only spent on faces
    box: np.ndarray                      # crop box for the next frame (landmark-box convention)
    detector_score: float                # the best detector score that agreed with this track
    scan_score: float = 0.0              # the score of the scan detection that started it
    xy: np.ndarray | None = None         # last raw landmarks
    score: float = 0.0                   # mean heatmap peak of the last frame
    usual_score: float = 0.0             # moving average of the mean heatmap peak over its trusted frames
    misses: int = 0                      # consecutive frames below the landmark confidence threshold
    detector_misses: int = 0             # consecutive detector re-checks that found no face on the track
    confirmed: bool = False
    age: int = 0
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))   # px per frame, of the landmark-box centre
    centre: np.ndarray | None = None     # the last measured landmark-box centre
    lost: "LostFace | None" = None       # a tentative track where a lost face was: the face it would be
    rung: int = -1                       # the ladder rung (tracker.routing) its landmarks come from; -1: none yet


@dataclass(eq=False)
class LostFace:
    """A confirmed track that ended (not at a cut), remembered for `detect_every` frames: the detector looks for
    it where it was heading at every re-check, so a face the landmark model lost for a moment is found again
    within `recheck_every` frames instead of when the scan next passes (up to `detect_every`), under its id."""
    face_id: int
    box: np.ndarray
    velocity: np.ndarray
    frames: int = 0                      # since it was lost

    def predicted(self) -> np.ndarray:
        # Half the last motion per frame, as the live tracks' crops move; a face that stopped is still near.
        return self.box + np.tile(self.velocity * 0.5 * self.frames, 2)


class Tracks:
    """Tentative tracks start from scan detections scoring `candidate_score` or more and are confirmed (given
    an id) on their first frame only if
    - the detector scores `min_detector_score` (at the scan's scale or when asked again at its canonical scale,
      `recheck`) and the landmark model's confidence clears `confirm_confidence`, or
    - the scan's detection alone is sure (`strong_detector_score`: no background detection of the fit scenes
      scored that high at the scan's scale; at the canonical scale gravel can) and the landmarks clear
      `min_confidence` (real faces turned, in glasses or half hidden score lower with the landmark model than
      300W's);
    otherwise they are dropped. Confirmed tracks end after `max_misses` low-confidence frames in a row, or when
    re-checks find no face on them (drifted onto background): `max_detector_misses` re-checks in a row while the
    landmark model is below `supported_confidence` as well, or twice as many whatever it says (the detector misses
    small faces now and then that the landmark model still follows well). `supported_confidence` is below
    `confirm_confidence`: a new face must look more like one than a tracked face must to keep going. A confirmed track's frame is reported
    as not found while the face looks hidden (`_occluded`), and the track goes on."""

    def __init__(self, options: TrackerOptions | None = None, first_id: int = 0):
        o = self.options = options or TrackerOptions()
        self.max_faces, self.min_confidence, self.max_misses = o.max_faces, o.min_confidence, o.max_misses
        self.candidate_score = o.candidate_score
        self.min_detector_score, self.confirm_confidence = o.min_detector_score, o.confirm_confidence
        self.strong_detector_score = o.strong_detector_score
        self.max_detector_misses = o.max_detector_misses
        self.match_iou = o.match_iou
        self.remember = o.detect_every
        self.active: list[Track] = []
        self.lost: list[LostFace] = []
        self._next_id = first_id

    def __len__(self) -> int:
        return len(self.active)

    def boxes(self) -> np.ndarray:
        return np.array([t.box for t in self.active], np.float32).reshape(-1, 4)

    def clear(self) -> list[int]:
        """End every track (a shot change) -> the ids ended."""
        ended = [t.face_id for t in self.active if t.confirmed]
        self.active, self.lost = [], []
        return ended

    def add_detections(self, detections: np.ndarray) -> np.ndarray:
        """Match detector boxes (n, 5) to tracks (the detector agrees with them); start tentative tracks from
        the rest. -> bool (len(active),): which tracks a detection matched."""
        detections = np.asarray(detections, np.float32).reshape(-1, 5)
        matched = np.zeros(len(self.active), bool)
        unmatched = list(range(len(detections)))
        if self.active and len(detections):
            overlap = iou(self.boxes(), detections)
            for ti, di in zip(*np.unravel_index(np.argsort(-overlap, axis=None), overlap.shape)):
                if overlap[ti, di] < self.match_iou:
                    break
                if di not in unmatched or matched[ti]:
                    continue
                self._agree(self.active[ti], detections[di])
                unmatched.remove(di)
                matched[ti] = True
        for di in unmatched:
            if detections[di, 4] < self.candidate_score:
                continue                           # weak detections only confirm known tracks
            if len(self.active) and \
                    intersection_over_smaller(self.boxes(), detections[di:di + 1]).max() > self.options.new_face_max_overlap:
                continue
            score = float(detections[di, 4])
            self.active.append(Track(-1, detections[di, :4].copy(), score, scan_score=score,
                                     lost=self._claim_lost(detections[di])))
        return np.concatenate([matched, np.zeros(len(self.active) - len(matched), bool)])

    def lost_boxes(self) -> np.ndarray:
        """Where each lost face should be now (predicted boxes, (n, 4)), for the re-check."""
        return np.array([lost.predicted() for lost in self.lost], np.float32).reshape(-1, 4)

    def find_lost(self, found: list[np.ndarray]) -> None:
        """Detector boxes around each lost face (Scanner.around on lost_boxes()): one scoring min_detector_score
        where the face should be starts a tentative track, confirmed as any new face is, that gets its id back."""
        claimed = []
        for lost, boxes in zip(self.lost, found):
            boxes = boxes[boxes[:, 4] >= self.min_detector_score]
            overlap = iou(lost.predicted()[None], boxes)[0] if len(boxes) else np.zeros(0)
            if not len(overlap) or overlap.max() < self.match_iou:
                continue
            box = boxes[int(overlap.argmax())]
            if len(self.active) and \
                    intersection_over_smaller(self.boxes(), box[None]).max() > self.options.new_face_max_overlap:
                continue                               # already tracked again
            self.active.append(Track(-1, box[:4].copy(), float(box[4]), lost=lost))
            claimed.append(lost)
        self.lost = [lost for lost in self.lost if lost not in claimed]

    def _claim_lost(self, detection: np.ndarray) -> "LostFace | None":
        """A scan detection where a lost face should be: that face (no longer waiting), else None."""
        if not self.lost:
            return None
        overlap = iou(self.lost_boxes(), detection[None, :4])[:, 0]
        if overlap.max() < self.match_iou:
            return None
        return self.lost.pop(int(overlap.argmax()))

    def recheck(self, indices: list[int], found: list[np.ndarray]) -> None:
        """Detector boxes found around tracks `indices` (Scanner.around): agree, or count a detector miss."""
        for i, boxes in zip(indices, found):
            track = self.active[i]
            boxes = boxes[boxes[:, 4] >= self.options.recheck_score_ratio * self.min_detector_score]
            overlap = iou(track.box[None], boxes)[0] if len(boxes) else np.zeros(0)
            if len(overlap) and overlap.max() >= self.match_iou:
                self._agree(track, boxes[int(overlap.argmax())])
            else:
                track.detector_misses += 1

    def _agree(self, track: Track, detection: np.ndarray) -> None:
        track.detector_misses = 0
        track.detector_score = max(track.detector_score, float(detection[4]))
        # The landmark-driven box lost the face (trust the detector) or drifted from it (move towards it).
        if track.misses > 0:
            track.box = detection[:4].copy()
        elif iou(track.box[None], detection[None, :4])[0, 0] < self.options.drift_iou:
            track.box = (track.box + detection[:4]) / 2

    def update(self, xy: np.ndarray, confidence: np.ndarray, size: tuple[int, int] | None = None,
               reliable: np.ndarray | None = None) -> tuple[np.ndarray, list[int]]:
        """Landmarks of every active track (same order as boxes()) -> success flags (confirmed tracks with
        trusted landmarks this frame; align with the tracks as they were), ids of ended tracks. `size`
        (width, height): a face whose landmark box is centred outside the frame is a miss. `reliable`: which
        faces' landmarks pass the reliability test (tracker.reliability); the others are tracked on but not
        reported as found."""
        success = np.zeros(len(self.active), bool)
        ended, keep = [], []
        confirmed_count = sum(t.confirmed for t in self.active)
        for i, track in enumerate(self.active):
            score = float(confidence[i].mean())
            track.score, track.age = score, track.age + 1
            new_box = geometry.landmark_box(xy[i]) if np.isfinite(xy[i]).all() else None
            if new_box is not None:
                # A face does not halve or double its size between frames: such a box is a failure.
                ratio = (new_box[2] - new_box[0]) / max(float(track.box[2] - track.box[0]), 1e-6)
                low, high = self.options.size_ratio
                if not low < ratio < high or new_box[2] - new_box[0] < self.options.min_box:
                    new_box = None
            if new_box is not None and size is not None:
                cx, cy = (new_box[0] + new_box[2]) / 2, (new_box[1] + new_box[3]) / 2
                if not (0 <= cx < size[0] and 0 <= cy < size[1]):
                    new_box = None
            good = score >= self.min_confidence and new_box is not None
            if not track.confirmed:
                room = not self.max_faces or confirmed_count < self.max_faces
                face = good and ((track.detector_score >= self.min_detector_score and score >= self.confirm_confidence)
                                 or track.scan_score >= self.strong_detector_score)
                if not (face and room):
                    if track.lost is not None:                # not confirmed here: the lost face waits on
                        self.lost.append(track.lost)
                    continue                                  # not a face (or no room): dropped, no id spent
                track.confirmed, track.detector_misses = True, 0
                if track.lost is not None:                    # found again: its id back
                    track.face_id = track.lost.face_id
                else:
                    track.face_id, self._next_id = self._next_id, self._next_id + 1
                confirmed_count += 1
            if good:
                centre = (new_box[:2] + new_box[2:]) / 2
                if track.centre is not None:
                    # From measured centre to measured centre: the motion itself. (Measured from the predicted
                    # crop instead, it settles at 2/3 of the motion at constant speed.)
                    track.velocity = centre - track.centre
                track.centre = centre
                # Next crop: this frame's landmark box moved on by half the last motion (half: a crop that
                # overshoots a stopping face costs more than one that lags a moving one).
                track.box = new_box + np.tile(track.velocity * 0.5, 2)
                track.xy, track.misses = xy[i], 0
                success[i] = not self._occluded(track, score) and (reliable is None or bool(reliable[i]))
                if success[i]:
                    track.usual_score = score if track.usual_score == 0 else 0.9 * track.usual_score + 0.1 * score
            else:
                track.misses += 1
            unsupported = track.detector_misses >= self.max_detector_misses and (
                score < self.options.supported_confidence or track.detector_misses >= 2 * self.max_detector_misses)
            if track.misses > self.max_misses or unsupported:
                ended.append(track.face_id)
                self.lost.append(LostFace(track.face_id, track.box.copy(), track.velocity.copy()))
            else:
                keep.append(i)
        self.active = [self.active[i] for i in keep]
        self._drop_duplicates(ended)
        for lost in self.lost:
            lost.frames += 1
        # Forgotten after a scan period: the scan has looked everywhere since.
        self.lost = [lost for lost in self.lost if lost.frames <= self.remember]
        return success, ended

    def _occluded(self, track: Track, score: float) -> bool:
        """Landmarks not to be reported although the track goes on: the last re-check found no face there and
        the landmark model is unsure and well below this face's usual confidence (a face going behind someone:
        the street scene's woman behind a passer-by's shoulder, whose landmarks would sit on his jacket)."""
        return (track.detector_misses > 0 and score < self.options.supported_confidence
                and score < self.options.occluded_score_ratio * track.usual_score)

    def _drop_duplicates(self, ended: list[int]) -> None:
        """Two tracks that converged on one face: keep the older one."""
        if len(self.active) < 2:
            return
        overlap = iou(self.boxes(), self.boxes())
        np.fill_diagonal(overlap, 0)
        drop = set()
        for i, j in zip(*np.nonzero(overlap > self.options.duplicate_iou)):
            if i in drop or j in drop:
                continue
            drop.add(i if self.active[i].face_id > self.active[j].face_id else j)
        for i in sorted(drop, reverse=True):
            ended.append(self.active[i].face_id)
            del self.active[i]
