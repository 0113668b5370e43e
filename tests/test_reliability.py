"""The success flag follows the reliability model (tracker.reliability) and its threshold."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tracker.reliability import FEATURES, ReliabilityModel, features, reliability_path


def test_a_face_shaped_like_a_face_has_a_small_shape_residual_and_a_jaw_over_the_ear_a_large_one():
    from tracker.pose import mean_face

    face = mean_face()[:, :2] * 0.4 + 100          # a frontal face, 36 px between the outer eye corners
    conf = np.full((1, 68), 0.8)
    good = features(face[None], conf, np.array([40.0]))[0]
    bad_face = face.copy()
    bad_face[0:8] += [-25.0, -30.0]                 # half the jaw contour pulled up and out over an ear
    bad = features(bad_face[None], conf, np.array([40.0]))[0]
    shape, jaw = FEATURES.index("shape_rms"), FEATURES.index("jaw_rms")
    assert good[shape] < 0.01 and bad[shape] > 5 * max(good[shape], 0.01) and bad[jaw] > bad[shape]


def _model(max_nme: float) -> str:
    k = len(FEATURES)
    return ReliabilityModel(tuple([0.0] * k + [float(np.log(0.04))]), tuple([0.0] * k), tuple([1.0] * k),
                            max_nme).to_json()


@pytest.mark.parametrize("max_nme,expect_success", [(0.03, False), (0.05, True)])
def test_success_follows_the_reliability_threshold(tmp_path, bundled_weights, max_nme, expect_success):
    """A model that predicts 4% NME for every face: a threshold under it reports no face, one over it all."""
    from tracker import track

    weights = tmp_path / bundled_weights.name
    shutil.copy(bundled_weights, weights)
    shutil.copy(bundled_weights.with_suffix(".onnx"), weights.with_suffix(".onnx"))
    reliability_path(weights).write_text(_model(max_nme))
    results = list(track("demo", weights=weights, backend="onnxruntime", use_reliability=True))[:40]
    reported = sum(int(r.faces.success.sum()) for r in results)
    tracked = sum(len(r.faces) for r in results)
    assert tracked >= 38                                   # the face is tracked either way
    assert (reported >= 38) if expect_success else (reported == 0)
    off = list(track("demo", weights=weights, backend="onnxruntime"))[:40]      # the default: off
    assert sum(int(r.faces.success.sum()) for r in off) >= 38


def test_a_damaged_reliability_file_is_a_one_line_error(tmp_path, bundled_weights):
    from sht_model.errors import WeightsError
    from tracker import track

    weights = tmp_path / bundled_weights.name
    shutil.copy(bundled_weights, weights)
    shutil.copy(bundled_weights.with_suffix(".onnx"), weights.with_suffix(".onnx"))
    reliability_path(weights).write_text(json.dumps({"format": "shtrack-reliability/1", "features": ["x"]}))
    with pytest.raises(WeightsError, match="reliability"):
        track("demo", weights=weights, use_reliability=True)


def test_the_bundled_model_ships_its_reliability_file():
    from tracker.backends import DEFAULT_TAG, WEIGHTS

    model = ReliabilityModel.load(reliability_path(WEIGHTS[DEFAULT_TAG].file))
    assert 0.02 < model.max_nme < 0.15
