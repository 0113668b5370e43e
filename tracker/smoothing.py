"""Landmark smoothing: a stage between the tracker and the sinks, over the stream of `FrameResult`s.

    results = smoothing_stage("auto", live=False)(run_frames(source, tracker))

- `rts`: a constant-velocity Kalman filter per track, run forward as frames arrive, and a
  Rauch-Tung-Striebel backward pass over the last `lag` frames. Frame t is written once frame t + lag has been
  seen (or its track has ended), so its landmarks use `lag` frames of the future: no lag in the trajectory, a
  delay of `lag` frames in the output, memory bounded by `lag` frames whatever the file's length.
- `one-euro` (live sources, no delay at all): the One Euro filter (Casiez et al., CHI 2012; what MediaPipe uses), a low-pass
  filter whose cut-off rises with the landmark's speed: still points are held still, fast ones followed.
- `none`: the model's landmarks as they are. `auto` (the default): `rts`, holding frames back 2 frames in a file
  and 1 frame on a live source (webcam, URL).

Both filters are motion-aware. The RTS filter's process noise grows, per face region (jaw, brows, nose, eyes,
mouth), with how far the region's measurements fall outside what the constant-velocity prediction expects
(its normalised innovation), so a still face is smoothed hard while a talking mouth or a turning head is
followed. A landmark's measurement noise can grow with the model's doubt (`confidence`, an exponent on 1 / heatmap
peak); the fitted value is 0, so every landmark of a face counts alike. Noise is in fractions of the face size,
so one setting serves every scale. The parameters were fitted on the training
clips (`python -m benchmarks.fit_smoothing`, never the held-out ones).

The per-landmark algebra is 2x2 (position, velocity) and is written out in numpy, vectorised over every
landmark of every track: filterpy's `FixedLagSmoother` runs one filter object per signal in Python and would
add a dependency to the base install for a few lines of algebra.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from .types import Faces, FrameResult

MODES = ("auto", "rts", "one-euro", "none")

# Face regions of the 68-point scheme: each region's process noise adapts to its own motion.
REGIONS = (slice(0, 17), slice(17, 27), slice(27, 36), slice(36, 48), slice(48, 68))
_REGION_STARTS = np.array([r.start for r in REGIONS])
_REGION_SIZES = np.array([r.stop - r.start for r in REGIONS])


@dataclass(frozen=True)
class RtsParams:
    """Fitted by `python -m benchmarks.fit_smoothing` on training clips (results/fit_smoothing.json)."""
    measurement: float = 0.01    # landmark noise sd / face size, at full confidence
    process: float = 0.04        # acceleration sd / face size per frame, for a face moving as the model expects
    motion: float = 256.0        # process variance grows by motion * (normalised innovation - 1), per region
    confidence: float = 0.0      # measurement variance scales with (1 / heatmap peak) ** confidence (fit: 0)
    lag: int = 2                 # frames of the future each output frame waits for (files)
    # Live sources: one frame of delay (33 ms at 30 fps) already gives most of the steadiness (docs/results.md);
    # `--smooth one-euro` is the choice without any delay.
    live_lag: int = 1

    def __post_init__(self):
        if (self.measurement <= 0 or self.process <= 0 or self.motion < 0 or self.confidence < 0 or self.lag < 0
                or self.live_lag < 0):
            raise ValueError(f"bad RTS parameters {self}")


@dataclass(frozen=True)
class OneEuroParams:
    """Fitted by `python -m benchmarks.fit_smoothing` on training clips (results/fit_smoothing.json)."""
    min_cutoff: float = 0.5      # Hz: the cut-off for a still landmark
    beta: float = 50.0           # cut-off rise (Hz) per face size per second of landmark speed
    d_cutoff: float = 1.0        # Hz: the speed estimate's own low-pass

    def __post_init__(self):
        if self.min_cutoff <= 0 or self.beta < 0 or self.d_cutoff <= 0:
            raise ValueError(f"bad One Euro parameters {self}")


# --- RTS: constant-velocity Kalman filter per landmark, fixed-lag Rauch-Tung-Striebel backward pass ----------

_F = np.array([[1.0, 1.0], [0.0, 1.0]])               # position += velocity, dt = one frame
_G = np.array([[0.25, 0.5], [0.5, 1.0]])              # discrete white-noise acceleration


class _RtsTrack:
    """One track's filter state and its last frames. State per landmark and axis: (position, velocity); x and y
    share the landmark's 2x2 covariance (same noise on both axes), so the covariance is (68, 2, 2). The forward
    step runs for every track of a frame at once (`_forward`)."""

    def __init__(self):
        self.frames: deque[int] = deque()        # frame index of each kept step
        self.filtered: deque[np.ndarray] = deque()    # m_t   (68, 2 axes, 2)
        self.predicted: deque[np.ndarray] = deque()   # m-_t  (68, 2, 2), prediction of step t from t-1
        self.gains: deque[np.ndarray | None] = deque()  # C_t linking t to t+1 (None for the newest step)
        self.mean: np.ndarray | None = None
        self.cov: np.ndarray | None = None
        self.ended = False                       # no frame of the stream holds this track any more

    def start(self, frame: int, xy: np.ndarray, r: np.ndarray, size: float) -> None:
        """The first trusted measurement (68, 2) with its variances r (68,)."""
        self.mean = np.stack([xy, np.zeros_like(xy)], -1).astype(np.float64)
        self.cov = np.zeros((68, 2, 2))
        self.cov[:, 0, 0], self.cov[:, 1, 1] = r, (0.05 * size) ** 2
        self._push(frame, self.mean, self.mean)

    def step(self, frame: int, mean: np.ndarray, cov: np.ndarray, prior_mean: np.ndarray, gain: np.ndarray) -> None:
        """A forward step's result; `gain` is the smoother gain linking the previous step to this one."""
        if self.gains:     # (with lag 0 the previous step is already out: no backward pass needs it)
            self.gains[-1] = gain
        self.mean, self.cov = mean, cov
        self._push(frame, mean, prior_mean)

    def _push(self, frame, mean, prior_mean) -> None:
        """A new newest step; its smoother gain comes with the next step."""
        self.frames.append(frame)
        self.filtered.append(mean)
        self.predicted.append(prior_mean)
        self.gains.append(None)

    def smoothed(self, frame: int) -> np.ndarray | None:
        """(68, 2) positions at `frame` given every step kept after it; then steps up to `frame` are dropped."""
        if frame not in self.frames:
            return None
        k = self.frames.index(frame)
        mean = self.filtered[-1]
        for j in range(len(self.frames) - 2, k - 1, -1):       # backward pass, newest to `frame`
            mean = self.filtered[j] + (mean - self.predicted[j + 1]) @ self.gains[j]
        for _ in range(k + 1):
            self.frames.popleft(), self.filtered.popleft(), self.predicted.popleft(), self.gains.popleft()
        return mean[..., 0]


def _forward(p: RtsParams, mean, cov, xy, measured, r, q0):
    """One Kalman step of n tracks at once. mean, cov (n, 68, 2, 2); xy (n, 68, 2) measurements, trusted where
    `measured` (n,) (elsewhere the prediction stands); r (n, 68) measurement variances; q0 (n,) process variance.
    -> mean, cov, prior mean, and the smoother gain of the previous step C = P_{t-1} F' (P-_t)^-1, kept
    transposed: the backward pass applies it to row vectors (one per axis) with one batched matmul."""
    prior_mean = mean @ _F.T                                                  # (n, 68, 2, 2)
    base_cov = _F @ cov @ _F.T
    innovation = xy - prior_mean[..., 0]                                      # (n, 68, 2)
    q = np.broadcast_to(q0[:, None], r.shape)                                 # (n, 68)
    if p.motion > 0:   # motion the model did not expect raises its region's process noise
        nis = (innovation ** 2).sum(-1) / (base_cov[..., 0, 0] + q0[:, None] * _G[0, 0] + r)   # 2 axes
        region_nis = np.add.reduceat(nis, _REGION_STARTS, axis=1) / (2 * _REGION_SIZES)
        q = q * np.repeat(1.0 + p.motion * np.maximum(region_nis - 1.0, 0.0), _REGION_SIZES, axis=1)
        q = np.where(measured[:, None], q, q0[:, None])                       # no measurement: no motion term
    prior_cov = base_cov + q[..., None, None] * _G
    gain = prior_cov[..., :, 0] / (prior_cov[..., 0, 0] + r)[..., None]      # (n, 68, 2): H = [1, 0]
    updated_mean = prior_mean + innovation[..., None] * gain[..., None, :]
    updated_cov = prior_cov - gain[..., :, None] * prior_cov[..., None, 0, :]
    keep = measured[:, None, None, None]
    smoother_gain = (cov @ _F.T @ _inverse(prior_cov)).swapaxes(-1, -2)
    return (np.where(keep, updated_mean, prior_mean), np.where(keep, updated_cov, prior_cov), prior_mean,
            smoother_gain)


class RtsSmoothing:
    """Fixed-lag RTS smoothing stage: yields each frame once `lag` later frames were seen (or at the end)."""

    def __init__(self, params: RtsParams = RtsParams()):
        self.params = params
        self.tracks: dict[int, _RtsTrack] = {}
        self.waiting: deque[tuple[FrameResult, float]] = deque()   # (result, ms spent on it so far)

    def __call__(self, results: Iterable[FrameResult]) -> Iterator[FrameResult]:
        for result in results:
            t = time.perf_counter()
            self._filter(result)
            self.waiting.append((result, (time.perf_counter() - t) * 1000.0))
            while len(self.waiting) > self.params.lag:
                yield self._release()
        while self.waiting:
            yield self._release()

    def _filter(self, result: FrameResult) -> None:
        """The forward step of every track in this frame: new tracks start from their first trusted landmarks;
        the others step together (one batched `_forward`)."""
        p, faces, frame = self.params, result.faces, result.frame.index
        sizes = np.maximum(faces.boxes[:, 2] - faces.boxes[:, 0], 1.0).astype(np.float64)            # (n,)
        r = (p.measurement * sizes[:, None]) ** 2 * np.maximum(faces.confidence, 0.05) ** -p.confidence
        stepping = []
        for i, face_id in enumerate(faces.face_id.tolist()):
            track = self.tracks.get(face_id)
            if track is None:
                track = self.tracks[face_id] = _RtsTrack()
            if track.mean is not None:
                stepping.append(i)
            elif faces.success[i]:
                track.start(frame, faces.xy[i], r[i], float(sizes[i]))
        for face_id in self.tracks.keys() - set(faces.face_id.tolist()):
            self.tracks[face_id].ended = True
        if not stepping:
            return
        tracks = [self.tracks[int(faces.face_id[i])] for i in stepping]
        mean, cov, prior_mean, gain = _forward(p, np.stack([tr.mean for tr in tracks]),
                                               np.stack([tr.cov for tr in tracks]),
                                               faces.xy[stepping].astype(np.float64), faces.success[stepping],
                                               r[stepping], (p.process * sizes[stepping]) ** 2)
        for k, track in enumerate(tracks):
            track.step(frame, mean[k], cov[k], prior_mean[k], gain[k])

    def _release(self) -> FrameResult:
        t = time.perf_counter()
        result, cost = self.waiting.popleft()
        faces = result.faces
        xy = faces.xy.copy()
        for i in range(len(faces)):
            track = self.tracks.get(int(faces.face_id[i]))
            smoothed = track.smoothed(result.frame.index) if track is not None else None
            if smoothed is not None and faces.success[i]:
                xy[i] = smoothed
        # Tracks with nothing left to release are finished (ended ones) or wait for their next frame.
        for face_id in [k for k, tr in self.tracks.items() if not tr.frames and tr.ended]:
            del self.tracks[face_id]
        # The frame's smoothing cost: its own filter step now and its backward pass at release.
        timings = {**result.timings, "smooth": cost + (time.perf_counter() - t) * 1000.0}
        return dataclasses.replace(result, faces=dataclasses.replace(faces, xy=xy), timings=timings)


# --- One Euro: low-pass filter whose cut-off follows the landmark's speed --------------------------------

class _OneEuroTrack:
    def __init__(self, xy: np.ndarray, timestamp: float):
        self.xy, self.speed, self.timestamp = xy.astype(np.float64), np.zeros(68), timestamp


class OneEuroSmoothing:
    """Causal One Euro filter per track; speeds are in face sizes per second, so one setting fits every scale."""

    def __init__(self, params: OneEuroParams = OneEuroParams(), fps: float = 30.0):
        self.params, self.frame_time = params, 1.0 / (fps or 30.0)
        self.tracks: dict[int, _OneEuroTrack] = {}

    def __call__(self, results: Iterable[FrameResult]) -> Iterator[FrameResult]:
        p = self.params
        for result in results:
            t = time.perf_counter()
            faces, now = result.faces, result.frame.timestamp
            xy = faces.xy.copy()
            seen = set()
            for i in range(len(faces)):
                face_id = int(faces.face_id[i])
                seen.add(face_id)
                if not faces.success[i]:
                    continue
                track = self.tracks.get(face_id)
                if track is None:
                    self.tracks[face_id] = _OneEuroTrack(xy[i], now)
                    continue
                dt = now - track.timestamp
                if not dt > 0:            # a source without timestamps: one frame
                    dt = self.frame_time
                size = _size(faces.boxes[i])
                speed = np.linalg.norm(xy[i] - track.xy, axis=-1) / (dt * size)      # face sizes per second
                track.speed += _alpha(p.d_cutoff, dt) * (speed - track.speed)
                cutoff = p.min_cutoff + p.beta * track.speed                          # (68,)
                a = _alpha(cutoff, dt)[:, None]
                track.xy += a * (xy[i] - track.xy)
                track.timestamp = now
                xy[i] = track.xy
            for face_id in [k for k in self.tracks if k not in seen]:
                del self.tracks[face_id]
            timings = {**result.timings, "smooth": (time.perf_counter() - t) * 1000.0}
            yield dataclasses.replace(result, faces=dataclasses.replace(faces, xy=xy), timings=timings)


def _inverse(m: np.ndarray) -> np.ndarray:
    """Inverse of a stack of 2x2 matrices, written out (np.linalg.inv's per-call overhead is most of its cost)."""
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    out = np.stack([np.stack([d, -b], -1), np.stack([-c, a], -1)], -2)
    return out / (a * d - b * c)[..., None, None]


def _alpha(cutoff, dt: float):
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff, np.float64))
    return 1.0 / (1.0 + tau / dt)


def _size(box: np.ndarray) -> float:
    return max(float(box[2] - box[0]), 1.0)


def resolve(mode: str) -> str:
    """`auto` -> the mode it stands for (rts: with `lag` frames of delay for files, `live_lag` for live sources)."""
    if mode not in MODES:
        raise ValueError(f"unknown smoothing {mode!r}; choose one of {', '.join(MODES)}")
    return "rts" if mode == "auto" else mode


def smoothing_stage(mode: str, live: bool, rts: RtsParams = RtsParams(), one_euro: OneEuroParams = OneEuroParams(),
                    fps: float = 30.0):
    """The stage for `mode` on a live or recorded source: a function from results to results."""
    mode = resolve(mode)
    if mode == "rts":
        return RtsSmoothing(dataclasses.replace(rts, lag=rts.live_lag) if live else rts)
    if mode == "one-euro":
        return OneEuroSmoothing(one_euro, fps)
    return lambda results: iter(results)
