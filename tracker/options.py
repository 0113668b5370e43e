"""Every tracking default in one place: `TrackerOptions`, which the pipeline, the tracks and the CLI's flags read."""

from __future__ import annotations

from dataclasses import dataclass

from .pose import Camera
from .smoothing import OneEuroParams, RtsParams, resolve


@dataclass
class TrackerOptions:
    max_faces: int = 0                 # 0 = no limit
    min_face: float = 16.0             # smallest face width (landmark box, px) looked for; larger is cheaper
    detector: str = "yunet"            # tracker.detector.DETECTORS
    # Every part of the frame is searched for new faces once per `detect_every` frames (tracker.scan: tiles
    # in turn, the cost spread evenly); the first frame and the first after a shot change are searched whole.
    detect_every: int = 25
    recheck_every: int = 4             # frames between detector re-checks of each track
    # A face is reported only when the detector and the landmark model agree: thresholds set on the training
    # split's crowd scenes (benchmarks.crowd --fit; docs/results.md).
    candidate_score: float = 0.45      # scan detections from this score start tentative tracks
    min_detector_score: float = 0.6    # detector score (scan or canonical scale) a new track needs...
    strong_detector_score: float = 0.75  # ...or this much, with landmarks above min_confidence only
    confirm_confidence: float = 0.6    # mean heatmap peak a new track needs on its first frame (fit scenes: no
                                        # background detection reaches it; 0.1% of faces fewer than at 0.55)
    supported_confidence: float = 0.55  # mean heatmap peak under which a track the re-checks no longer find is
                                        # drifting (ended) or hidden (reported not found)
    min_confidence: float = 0.35       # mean heatmap peak: below it a confirmed track's frame is a miss
    max_misses: int = 3                # low-confidence frames in a row that end a confirmed track
    max_detector_misses: int = 2       # re-checks in a row without a face on the track end it
    # Track geometry and matching (tracker.tracking; where each value comes from: docs/experiments/index.md).
    match_iou: float = 0.3             # a detection agrees with a track at this IoU or more
    new_face_max_overlap: float = 0.25  # a detection covering more of a tracked face (intersection over the
                                        # smaller box) is that face seen differently, not a new one
    recheck_score_ratio: float = 0.8   # a re-check accepts detections from this share of min_detector_score
    drift_iou: float = 0.5             # an agreeing detection overlapping the crop box less moves it half way over
    occluded_score_ratio: float = 0.8  # confidence under this share of a face's usual one (and no detector
                                        # support) reports the face hidden, the track going on
    size_ratio: tuple[float, float] = (0.6, 1.6)   # a landmark box whose side changes by a factor outside
                                                    # this in one frame fails (a face does not halve or double)
    min_box: float = 4.0               # a landmark box narrower than this (px) fails
    duplicate_iou: float = 0.5         # two tracks overlapping this much are one face: the older is kept
    cut_threshold: float = 20.0        # tracker.cuts; 0 = no shot-change test
    # auto: fixed-lag RTS, 2 frames of delay for files, 1 for live sources (tracker.smoothing; docs/results.md)
    smooth: str = "auto"
    rts: RtsParams = RtsParams()
    one_euro: OneEuroParams = OneEuroParams()
    hallucinate: bool = False          # return the hallucinated faces (for --save-faces)
    # With it, success=1 also needs the face's predicted NME under its weights' threshold (tracker.reliability;
    # the `<weights>.reliability.json` beside them). Off by default: the bundled cpu-rt's model turned away 6% of
    # the good 32-64 px faces of the 1080p crowd scene (MODEL_CARD.md, "Success flag").
    use_reliability: bool = False
    camera: Camera = Camera()          # head pose (tracker.pose): the pinhole camera; defaults from the frame size

    def __post_init__(self):
        if self.min_face <= 0:
            raise ValueError(f"min_face must be > 0, not {self.min_face}")
        if self.detect_every < 1 or self.recheck_every < 1:
            raise ValueError("detect_every and recheck_every must be >= 1")
        if self.max_faces < 0:
            raise ValueError(f"max_faces must be >= 0, not {self.max_faces}")
        resolve(self.smooth)     # raises on an unknown mode
