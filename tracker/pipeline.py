"""The tracking loop: source -> detect -> crop -> backend -> decode -> FrameResult, in one plain loop; then the
smoothing stage (tracker.smoothing), which for files holds a few frames back to smooth them with their future.

    for result in track("street.mp4", max_faces=5):
        print(result.frame.index, result.faces.xy.shape)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sht_model.geometry import landmark_box
from sht_model.heatmap import decode

from .backends import Backend, load_backend
from .crop import crop_faces, faces_to_images, landmarks_to_source
from .cuts import CutDetector
from .detector import load_detector
from .options import TrackerOptions
from .pose import HeadPose, pose_stage
from .routing import Ladder
from .scan import Scanner
from .smoothing import smoothing_stage
from .sources import Source, open_source
from .tracking import Tracks
from .types import Faces, Frame, FrameResult


@dataclass(frozen=True)
class Scan:
    """What the scan found in one frame (FaceTracker.scan)."""
    frame_index: int
    cut: bool                 # a shot change before this frame (tracks end)
    whole: bool               # the whole plan was searched
    boxes: np.ndarray         # (n, 5) detections in source px
    ms: float                 # time it took (on the worker thread when run ahead)


class FaceTracker:
    """Stateful per-stream tracker; feed frames in order with `process(frame)`."""

    def __init__(self, backend: "Backend | Ladder", options: TrackerOptions | None = None, threads: int = 0,
                 first_id: int = 0):
        """`backend`: one landmark model, or a Ladder of them by face size (tracker.routing)."""
        options = options or TrackerOptions()
        self.ladder = backend if isinstance(backend, Ladder) else Ladder.single(backend)
        self.backend = self.ladder.rungs[-1].backend
        if options.hallucinate and not self.backend.faces:
            raise ValueError("hallucinated faces asked for, but the backend was loaded without them (faces=True)")
        self.options = options
        from .reliability import for_backend

        self.reliability = [for_backend(r.backend) if options.use_reliability else None for r in self.ladder.rungs]
        self.scanner = Scanner(load_detector(options.detector, threads), options.min_face, options.detect_every)
        self.cuts = CutDetector(options.cut_threshold)
        self.tracks = Tracks(options, first_id=first_id)
        self._frames = 0                  # frames processed (re-check schedule)
        self._scanned = 0                 # frames scanned (may run one ahead of _frames)
        self._source: str | None = None

    @classmethod
    def from_pretrained(cls, name: str = "default", backend: str = "auto", device: str = "cpu", threads: int = 0,
                        **option_overrides) -> "FaceTracker":
        """A tracker with bundled weights: a tag of tracker.backends.WEIGHTS ("cpu-rt", "cpu-fast", ...), "ladder",
        or "default" (the ladder where it is bundled, else a file's default: backends.default_weights)."""
        from .backends import WEIGHTS, load_ladder

        options = TrackerOptions(**option_overrides)
        if name == "ladder":
            model = load_ladder(backend, device, threads, options.hallucinate)
        elif name == "default":
            model = _default_models(None, backend, device, threads, options.hallucinate)
        elif name in WEIGHTS:
            model = load_backend(WEIGHTS[name].file, backend, device, threads, faces=options.hallucinate)
        else:
            raise ValueError(f"unknown model {name!r}; choose from default, ladder, {', '.join(WEIGHTS)}")
        return cls(model, options, threads)

    def update(self, image: np.ndarray, timestamp: float | None = None) -> Faces:
        """One BGR image (the next frame of a stream) -> its Faces, without smoothing (the smoothing stage holds
        frames back; `track()` applies it). Frames are numbered in call order."""
        index = self._frames + 1
        ts = float(index - 1) / 30.0 if timestamp is None else float(timestamp)
        return self.process(Frame(index, ts, np.ascontiguousarray(image), "update")).faces

    def scan(self, frame) -> Scan:
        """The detector's part of a frame that does not depend on the tracks: the shot-change test and this frame's
        share of the scan plan (the whole plan on the first frame and after a cut). Frames must come in order;
        `run_frames` runs this for the next frame on a worker thread while `process` runs this one's landmarks."""
        t = time.perf_counter()
        cut = self.cuts.is_cut(frame.image) if self.options.cut_threshold > 0 else False
        # Frames of an image folder are unrelated photos (Frame.source names each): every one is a new scene.
        cut = cut or (self._source is not None and frame.source != self._source)
        self._source = frame.source
        whole = self._scanned == 0 or cut
        self._scanned += 1
        boxes = self.scanner.full(frame.image) if whole else self.scanner.step(frame.image)
        return Scan(frame.index, cut, whole, boxes, (time.perf_counter() - t) * 1000.0)

    def process(self, frame, timings: dict[str, float] | None = None, scan: Scan | None = None) -> FrameResult:
        """One frame -> its FrameResult. `scan`: this frame's `scan(frame)`, if it was run ahead."""
        timings = {} if timings is None else timings
        opts = self.options
        scan = self.scan(frame) if scan is None else scan
        if scan.frame_index != frame.index:
            raise RuntimeError(f"scan of frame {scan.frame_index} given for frame {frame.index}")
        t = time.perf_counter()
        if scan.cut:   # ids never span a shot change
            self.tracks.clear()
        matched = self.tracks.add_detections(scan.boxes)
        if not scan.whole and self._frames % opts.recheck_every == 0:
            # Re-checks of tracks the scan did not confirm, and a look where each lost face should be: one call.
            recheck = [i for i, tr in enumerate(self.tracks.active) if tr.confirmed and not matched[i]]
            found = self.scanner.around(frame.image, np.concatenate([self.tracks.boxes()[recheck],
                                                                     self.tracks.lost_boxes()]))
            self.tracks.recheck(recheck, found[:len(recheck)])
            self.tracks.find_lost(found[len(recheck):])
        self._frames += 1
        t = _lap(timings, "detect", t)
        timings["detect"] += scan.ms
        if len(self.tracks) == 0:
            timings.update(crop=0.0, infer=0.0, heatmaps=0.0)
            return FrameResult(frame, Faces.empty(), timings)
        boxes = self.tracks.boxes()
        rungs = self.ladder.choose(boxes[:, 2] - boxes[:, 0], np.array([tr.rung for tr in self.tracks.active]))
        for tr, rung in zip(self.tracks.active, rungs):
            tr.rung = int(rung)
        xy, confidence, faces = self._landmarks(frame.image, boxes, rungs, timings)
        # New tracks start from the detector's box, which for faces under ~20 px is off by up to 50% in size;
        # their landmarks' own box is closer, so they run once more from it before the confirmation test.
        new = [i for i, tr in enumerate(self.tracks.active) if not tr.confirmed and np.isfinite(xy[i]).all()]
        if new:
            refined = landmark_box(xy[new]).astype(np.float32)
            xy[new], confidence[new], again = self._landmarks(frame.image, refined, rungs[new], timings)
            boxes[new] = refined
            if faces is not None:
                for i, face in zip(new, again):
                    faces[i] = face
            for i, box in zip(new, refined):
                self.tracks.active[i].box = box.copy()
            # The detector is asked again at its canonical scale (a crop around the refined box, the face ~50 px
            # wide); the better of the two scores counts. Most small faces score higher there, while textures
            # that fooled the scan (gravel) score lower; some faces score better at the scan's scale.
            t = time.perf_counter()
            self.tracks.recheck(new, self.scanner.around(frame.image, refined))
            _lap(timings, "detect", t, add=True)
        before = list(self.tracks.active)
        reliable = self._reliable(xy, confidence, boxes, rungs)
        success, _ = self.tracks.update(xy, confidence, frame.size, reliable)
        # Report confirmed tracks only (tentative ones that failed confirmation were dropped by update).
        report = [i for i, tr in enumerate(before) if tr.confirmed]
        ids = np.array([before[i].face_id for i in report], np.int64)
        hallucinated = [faces[i] for i in report] if opts.hallucinate else None
        names = np.array(self.ladder.names)[rungs[report]] if report else np.zeros(0, str)
        return FrameResult(frame, Faces(xy[report], confidence[report], boxes[report], ids, success[report],
                                        hallucinated, names), timings)

    def _reliable(self, xy: np.ndarray, confidence: np.ndarray, boxes: np.ndarray, rungs: np.ndarray) -> np.ndarray:
        """(n,) bool: each face's landmarks pass its model's reliability test (tracker.reliability), True where
        the model has none."""
        out = np.ones(len(xy), bool)
        for r, model in enumerate(self.reliability):
            which = np.flatnonzero(rungs == r)
            if model is not None and len(which):
                out[which] = model.reliable(xy[which], confidence[which], boxes[which, 2] - boxes[which, 0])
        return out

    def _landmarks(self, image: np.ndarray, boxes: np.ndarray, rungs: np.ndarray, timings: dict):
        """Face boxes and their ladder rungs -> landmarks (n, 68, 2) in source px, confidence (n, 68), the
        hallucinated faces (a list of BGR images, or None); one backend call per rung that has faces. Stage
        times add up in `timings`."""
        n = len(boxes)
        xy = np.empty((n, 68, 2), np.float32)
        confidence = np.empty((n, 68), np.float32)
        faces = [None] * n if self.options.hallucinate else None
        for r in np.unique(rungs):
            which = np.flatnonzero(rungs == r)
            backend = self.ladder.rungs[r].backend
            cfg = backend.cfg
            t = time.perf_counter()
            batch, matrices = crop_faces(image, boxes[which], cfg)
            t = _lap(timings, "crop", t, add=True)
            heatmaps, hallucinated = backend.infer(batch)
            t = _lap(timings, "infer", t, add=True)
            xy_hm, conf = decode(heatmaps, cfg.heatmap_sigma)
            xy[which], confidence[which] = landmarks_to_source(xy_hm, matrices, cfg), conf
            if faces is not None and hallucinated is not None:
                for i, face in zip(which, faces_to_images(hallucinated, cfg)):
                    faces[i] = face
            _lap(timings, "heatmaps", t, add=True)
        return xy, confidence, faces


def _lap(timings: dict, stage: str, start: float, add: bool = False) -> float:
    now = time.perf_counter()
    timings[stage] = (now - start) * 1000.0 + (timings.get(stage, 0.0) if add else 0.0)
    return now


def track(source: str | int | Source, weights: str | Path | None = None, backend: str = "auto",
          device: str = "cpu", threads: int = 0, options: TrackerOptions | None = None,
          **option_overrides) -> Iterator[FrameResult]:
    """Python API mirroring the CLI: an iterator of one FrameResult per decoded frame.

    The model is loaded and the source opened by this call, so a bad weights path or source raises here, not at
    the first `next()`. `option_overrides` are TrackerOptions fields (max_faces=, min_face=, detect_every=,
    smooth=, ...). Without `weights`, the bundled ladder (or cpu-rt) as on the command line.
    """
    import dataclasses

    from .sources import is_live

    options = dataclasses.replace(options or TrackerOptions(), **option_overrides)
    live = source.live if isinstance(source, Source) else is_live(source)
    model = _default_models(weights, backend, device, threads, options.hallucinate, live)
    src = source if isinstance(source, Source) else open_source(source)
    tracker = FaceTracker(model, options, threads)

    def frames() -> Iterator[FrameResult]:
        with src:
            yield from pose_stage(smoothing_for(options, src)(run_frames(src, tracker, ahead=not src.live)),
                                  HeadPose(options.camera))
    return frames()


def _default_models(weights, backend: str, device: str, threads: int, faces: bool, live: bool = False):
    from .backends import ladder_bundled, load_ladder

    if weights is None and ladder_bundled():
        return load_ladder(backend, device, threads, faces)
    return load_backend(weights, backend, device, threads, faces=faces, live=live)


def smoothing_for(options: TrackerOptions, source: Source):
    """The smoothing stage for this source (a live one gets `rts.live_lag` frames of delay, a file `rts.lag`)."""
    return smoothing_stage(options.smooth, source.live, options.rts, options.one_euro, source.fps or 30.0)


def run_frames(frames, tracker: FaceTracker, skip_until: int = 0, ahead: bool = True) -> Iterator[FrameResult]:
    """Feed frames to the tracker, timing how long each frame was waited for ("decode").

    Frames numbered <= skip_until (a resumed run) are read and dropped without tracking. With `ahead`, the next
    frame's scan (FaceTracker.scan, the detector's biggest share) runs on a worker thread while this frame's
    landmarks run: both models are ONNX Runtime sessions, which release the GIL, and neither keeps 2 cores busy
    on its own (docs/how-it-works.md). The results are the same as without; the cost is holding one frame back, so
    live sources (where a frame of latency matters more than throughput) are run with ahead=False.
    """
    frames = iter(frames)

    def read():
        while True:
            t = time.perf_counter()
            frame = next(frames, None)
            if frame is None or frame.index > skip_until:
                return frame, (time.perf_counter() - t) * 1000.0

    if not ahead:
        while True:
            frame, wait = read()
            if frame is None:
                return
            yield tracker.process(frame, {"decode": wait})
    with ThreadPoolExecutor(1, thread_name_prefix="scan") as pool:
        frame, wait = read()
        pending = pool.submit(tracker.scan, frame) if frame is not None else None
        while frame is not None:
            following, following_wait = read()
            upcoming = pool.submit(tracker.scan, following) if following is not None else None
            try:
                scan = pending.result()
            except BaseException:
                if upcoming is not None:
                    upcoming.cancel()
                raise
            yield tracker.process(frame, {"decode": wait}, scan)
            frame, wait, pending = following, following_wait, upcoming
