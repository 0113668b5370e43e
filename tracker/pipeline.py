"""The tracking loop: source -> detect -> crop -> backend -> decode -> smooth -> FrameResult, in one plain loop.

    for result in track("street.mp4", max_faces=5):
        print(result.frame.index, result.faces.xy.shape)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sht_model.heatmap import decode

from .backends import Backend, load_backend
from .crop import crop_faces, faces_to_images, landmarks_to_source
from .detector import FINE_SCALE_FACTOR, HaarDetector
from .smoothing import KalmanParams, Smoother
from .sources import Source, open_source
from .tracking import Tracks
from .types import Faces, FrameResult

STAGES = ("decode", "detect", "crop", "infer", "heatmaps", "smooth")


@dataclass
class TrackerOptions:
    max_faces: int = 0                 # 0 = no limit
    min_face: float = 32.0             # smallest face width (px) the detector looks for (16 for CCTV)
    detect_every: int = 30             # frames between detector runs while tracks are healthy (new faces wait <= 1 s)
    # Pyramid step of that periodic scan for new faces. While every track is healthy the scan only looks for
    # faces not yet tracked, and a face it misses is looked for again detect_every frames later; with no
    # tracks or a weak one the full 1.05 scan runs. 1.2 costs a third of 1.05 (9.5 vs 28.7 ms a scan at 640x480).
    rescan_scale_factor: float = 1.2
    # Mean heatmap peak below which a track counts a miss. Measured on the bundled weights: held-out 300W
    # faces at 16 px have a 5th percentile of 0.46; random non-face crops a median of 0.17.
    min_confidence: float = 0.35
    max_misses: int = 3
    smooth: str = "none"              # measured: Kalman lags talking heads (benchmarks.lowres, tune_kalman)
    kalman: KalmanParams = KalmanParams()
    hallucinate: bool = False          # return the hallucinated faces (for --save-faces)


class FaceTracker:
    """Stateful per-stream tracker; feed frames in order with `process(frame)`."""

    def __init__(self, backend: Backend, options: TrackerOptions = TrackerOptions()):
        if options.hallucinate and not backend.faces:
            raise ValueError("hallucinated faces asked for, but the backend was loaded without them (faces=True)")
        self.backend, self.options = backend, options
        self.detector = HaarDetector(options.min_face, options.max_faces)
        self.tracks = Tracks(options.max_faces, options.min_confidence, options.max_misses)
        self.smoother = Smoother(options.smooth, options.kalman)
        self._since_detect = None

    def process(self, frame, timings: dict[str, float] | None = None) -> FrameResult:
        timings = {} if timings is None else timings
        opts, cfg = self.options, self.backend.cfg
        t = time.perf_counter()
        full_scan = self._since_detect is None or len(self.tracks) == 0 or self.tracks.weak
        if full_scan or self._since_detect >= opts.detect_every - 1:
            step = FINE_SCALE_FACTOR if full_scan else opts.rescan_scale_factor
            self.tracks.add_detections(self.detector.detect(frame.image, step))
            self._since_detect = 0
        else:
            self._since_detect += 1
        t = _lap(timings, "detect", t)
        if len(self.tracks) == 0:
            timings.update(crop=0.0, infer=0.0, heatmaps=0.0, smooth=0.0)
            return FrameResult(frame, Faces.empty(), timings)
        boxes = self.tracks.boxes()
        ids = np.array([tr.face_id for tr in self.tracks.active])
        batch, matrices = crop_faces(frame.image, boxes, cfg)
        t = _lap(timings, "crop", t)
        heatmaps, faces = self.backend.infer(batch)
        t = _lap(timings, "infer", t)
        xy_hm, confidence = decode(heatmaps)
        xy = landmarks_to_source(xy_hm, matrices, cfg)
        t = _lap(timings, "heatmaps", t)
        success, ended = self.tracks.update(xy, confidence)
        smoothed = xy.copy()
        for i, face_id in enumerate(ids):
            if success[i]:
                side = float(boxes[i, 2] - boxes[i, 0])
                smoothed[i] = self.smoother(int(face_id), xy[i], side)
        self.smoother.forget(ended)
        _lap(timings, "smooth", t)
        hallucinated = faces_to_images(faces, cfg) if opts.hallucinate else None
        return FrameResult(frame, Faces(smoothed, confidence, boxes, ids, success, hallucinated), timings)


def _lap(timings: dict, stage: str, start: float) -> float:
    now = time.perf_counter()
    timings[stage] = (now - start) * 1000.0
    return now


def track(source: str | int | Source, weights: str | Path | None = None, backend: str = "auto",
          device: str = "cpu", threads: int = 0, options: TrackerOptions | None = None,
          **option_overrides) -> Iterator[FrameResult]:
    """Python API mirroring the CLI: yields one FrameResult per decoded frame.

    `option_overrides` are TrackerOptions fields (max_faces=, min_face=, detect_every=, smooth=, ...).
    """
    import dataclasses

    options = dataclasses.replace(options or TrackerOptions(), **option_overrides)
    model = load_backend(weights, backend, device, threads, faces=options.hallucinate)
    src = source if isinstance(source, Source) else open_source(source)
    tracker = FaceTracker(model, options)
    with src:
        yield from run_frames(src, tracker)


def run_frames(frames, tracker: FaceTracker, skip_until: int = 0) -> Iterator[FrameResult]:
    """Feed frames to the tracker, timing how long each frame was waited for ("decode").

    Frames numbered <= skip_until (a resumed run) are read and dropped without tracking.
    """
    frames = iter(frames)
    while True:
        t = time.perf_counter()
        frame = next(frames, None)
        if frame is None:
            return
        if frame.index <= skip_until:
            continue
        timings = {"decode": (time.perf_counter() - t) * 1000.0}
        yield tracker.process(frame, timings)
