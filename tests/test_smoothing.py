"""tracker.smoothing on synthetic tracks with a known truth: lag, noise, tracks that start and end mid-file,
frame order and bounded buffering; the defaults are the fitted ones."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from tests.conftest import REPO
from tracker.smoothing import (OneEuroParams, OneEuroSmoothing, RtsParams, RtsSmoothing, resolve,
                               smoothing_stage)
from tracker.types import Faces, Frame, FrameResult

SHAPE = np.random.default_rng(7).uniform(0, 32, (68, 2))     # a 32-px "face"
BLANK = np.zeros((1, 1, 3), np.uint8)


def _stream(n_frames: int, tracks: dict[int, tuple[int, int]], velocity=(1.0, 0.5), noise=0.3, seed=0):
    """FrameResults with faces moving at constant velocity (px/frame) plus Gaussian noise; `tracks` maps a face
    id to its (first, last) frame. -> (results, truth {(frame, id): (68, 2)})."""
    rng = np.random.default_rng(seed)
    results, truth = [], {}
    for t in range(1, n_frames + 1):
        ids = [i for i, (a, b) in tracks.items() if a <= t <= b]
        xy = []
        for i in ids:
            true = SHAPE + 40 * i + np.array(velocity) * t
            truth[(t, i)] = true
            xy.append(true + rng.normal(0, noise, true.shape))
        faces = Faces(np.array(xy).reshape(-1, 68, 2), np.full((len(ids), 68), 0.7),
                      np.array([[0, 0, 32, 32]] * len(ids)).reshape(-1, 4), np.array(ids, np.int64),
                      np.ones(len(ids), bool))
        results.append(FrameResult(Frame(t, (t - 1) / 30, BLANK), faces))
    return results, truth


def _errors(results, truth):
    """Mean error vector and mean absolute error of smoothed points against the truth, over all faces."""
    vectors = [r.faces.xy[k] - truth[(r.frame.index, int(i))] for r in results for k, i in enumerate(r.faces.face_id)]
    vectors = np.array(vectors)
    return vectors.mean((0, 1)), float(np.linalg.norm(vectors, axis=-1).mean())


# Strong smoothing (low process noise, no motion term), so the mechanics show plainly; the defaults smooth less.
STEADY = RtsParams(measurement=0.01, process=0.005, motion=0.0, lag=8)


@pytest.mark.parametrize("params", [STEADY, RtsParams()], ids=["steady", "defaults"])
def test_rts_follows_constant_velocity_without_lag_and_cuts_noise(params):
    results, truth = _stream(120, {0: (1, 120)})
    _, raw = _errors(results, truth)
    bias, err = _errors(list(RtsSmoothing(params)(results)), truth)
    # A smoother that lagged by one frame would be off by the velocity (1.0, 0.5) px.
    assert np.all(np.abs(bias) < 0.05), bias
    assert err < (0.6 if params is STEADY else 0.9) * raw, (err, raw)


def test_one_euro_lags_constant_velocity_by_at_most_a_frame():
    results, truth = _stream(120, {0: (1, 120)})
    bias, _ = _errors(list(OneEuroSmoothing()(results))[30:], truth)
    lag = -bias[0] / 1.0          # px behind along x, at 1 px/frame
    assert 0 <= lag <= 1.0, bias


def test_tracks_starting_and_ending_mid_file_are_smoothed_and_every_frame_comes_out_in_order():
    tracks = {0: (1, 25), 1: (10, 18), 2: (30, 40), 3: (40, 40)}
    results, truth = _stream(40, tracks, noise=0.5, seed=1)
    out = list(RtsSmoothing(STEADY)(results))
    assert [r.frame.index for r in out] == list(range(1, 41))
    for before, after in zip(results, out):
        assert list(after.faces.face_id) == list(before.faces.face_id)
    # Each track's own frames are smoothed (closer to the truth than the input), including the first and last.
    for face_id, (a, b) in tracks.items():
        if a == b:     # a one-frame track has nothing to smooth with: it comes out as measured
            r = out[a - 1]
            assert np.array_equal(r.faces.xy[list(r.faces.face_id).index(face_id)],
                                  results[a - 1].faces.xy[list(results[a - 1].faces.face_id).index(face_id)])
            continue
        raw = [results[t - 1].faces.xy[list(results[t - 1].faces.face_id).index(face_id)] for t in range(a, b + 1)]
        smooth = [out[t - 1].faces.xy[list(out[t - 1].faces.face_id).index(face_id)] for t in range(a, b + 1)]
        true = [truth[(t, face_id)] for t in range(a, b + 1)]
        raw_err = np.mean([np.linalg.norm(x - g, axis=-1).mean() for x, g in zip(raw, true)])
        smooth_err = np.mean([np.linalg.norm(x - g, axis=-1).mean() for x, g in zip(smooth, true)])
        assert smooth_err < 0.8 * raw_err, (face_id, smooth_err, raw_err)


@pytest.mark.parametrize("lag", [0, 5])
def test_rts_holds_back_at_most_lag_frames(lag):
    """Frame t is released once frame t + lag is read: bounded memory on an hour-long file (lag 0: the forward
    Kalman filter alone)."""
    results, _ = _stream(30, {0: (1, 30), 1: (5, 12)})
    read = []

    def reader():
        for r in results:
            read.append(r.frame.index)
            yield r

    released = []
    for out in RtsSmoothing(RtsParams(lag=lag))(reader()):
        released.append(out.frame.index)
        if out.frame.index <= 30 - lag:
            assert read[-1] == out.frame.index + lag
    assert released == list(range(1, 31))


def test_untrusted_frames_pass_through_and_do_not_move_the_filter():
    results, truth = _stream(30, {0: (1, 30)})
    results[14].faces.success[:] = False
    results[14].faces.xy[:] += 50.0           # a wild miss
    out = list(RtsSmoothing()(results))
    assert np.array_equal(out[14].faces.xy, results[14].faces.xy)
    _, err = _errors(out[15:], truth)
    assert err < 0.5


def test_auto_holds_files_back_longer_than_live_sources():
    assert resolve("auto") == "rts"
    live, recorded = smoothing_stage("auto", live=True), smoothing_stage("auto", live=False)
    assert isinstance(live, RtsSmoothing) and live.params.lag == RtsParams().live_lag == 1
    assert isinstance(recorded, RtsSmoothing) and recorded.params.lag == RtsParams().lag > RtsParams().live_lag
    assert isinstance(smoothing_stage("one-euro", live=True), OneEuroSmoothing)
    with pytest.raises(ValueError):
        resolve("kalman")


def test_defaults_are_the_fitted_parameters():
    fit = json.loads((REPO / "benchmarks/results/fit_smoothing.json").read_text())["chosen"]
    assert RtsParams() == RtsParams(**fit["rts"])
    assert OneEuroParams() == OneEuroParams(**fit["one-euro"])


def test_tracks_filtered_together_come_out_as_each_filtered_alone():
    """Every track of a frame steps through the filter in one batched call; no track's state may leak into
    another's: smoothing all faces of a stream at once equals smoothing each face's own stream."""
    tracks = {0: (1, 40), 1: (5, 30), 2: (12, 40), 3: (20, 20)}
    results, _ = _stream(40, tracks, noise=0.5, seed=3)
    rng = np.random.default_rng(4)
    for r in results:   # other sizes, confidences and untrusted frames per face
        n = len(r.faces)
        r.faces.boxes[:, 2:] = (20 + 10 * r.faces.face_id[:, None]).astype(np.float32)
        r.faces.confidence[:] = rng.uniform(0.2, 0.9, (n, 68))
        r.faces.success[:] = rng.uniform(size=n) > 0.15
    params = RtsParams(confidence=1.0, lag=3)
    together = list(RtsSmoothing(params)(results))
    for face_id in tracks:
        alone = [dataclasses.replace(r, faces=r.faces[r.faces.face_id == face_id]) for r in results]
        for mixed, single in zip(together, RtsSmoothing(params)(alone)):
            k = list(mixed.faces.face_id).index(face_id) if face_id in mixed.faces.face_id else None
            if k is None:
                assert len(single.faces) == 0
                continue
            np.testing.assert_allclose(mixed.faces.xy[k], single.faces.xy[0], rtol=0, atol=1e-4)
