"""The face-size ladder (tracker.routing): which model each face goes to, and that the CSV says so."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from tests.conftest import astronaut_scene, write_video
from tracker.routing import Ladder, Rung


class _Fake:
    def __init__(self, faces=False):
        self.faces = faces


def _ladder(*bounds, hysteresis=0.1):
    rungs = [Rung(f"m{i}", _Fake(), b) for i, b in enumerate([*bounds, math.inf])]
    return Ladder(rungs, hysteresis)


def test_a_face_growing_from_14_to_60_px_moves_up_the_ladder_once_per_boundary():
    ladder = _ladder(26.0, 48.0)
    rng = np.random.default_rng(0)
    widths = np.linspace(14, 60, 300) + rng.normal(0, 1.5, 300)     # growing, with frame-to-frame jitter
    rung, path = np.array([-1]), []
    for w in widths:
        rung = ladder.choose(np.array([w]), rung)
        path.append(int(rung[0]))
    changes = [b for a, b in zip(path, path[1:]) if a != b]
    assert path[0] == 0 and path[-1] == 2
    assert changes == [1, 2], f"up once per boundary, never back: {changes}"


def test_without_hysteresis_the_same_face_flips_back_and_forth():
    """The margin is what keeps it steady (this test fails if the margin does nothing)."""
    ladder = _ladder(26.0, hysteresis=0.0)
    rng = np.random.default_rng(0)
    rung, path = np.array([-1]), []
    for w in 26 + rng.normal(0, 1.0, 100):
        rung = ladder.choose(np.array([w]), rung)
        path.append(int(rung[0]))
    assert sum(a != b for a, b in zip(path, path[1:])) > 10
    steady = _ladder(26.0, hysteresis=0.1)
    rung, path = np.array([-1]), []
    for w in 26 + rng.normal(0, 1.0, 100):
        rung = steady.choose(np.array([w]), rung)
        path.append(int(rung[0]))
    assert sum(a != b for a, b in zip(path, path[1:])) <= 1


def test_new_faces_take_the_rung_their_width_falls_in_and_bad_ladders_are_refused():
    ladder = _ladder(26.0, 48.0)
    assert ladder.choose(np.array([10, 25.9, 26, 47, 48, 500]), np.full(6, -1)).tolist() == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError):
        Ladder([Rung("a", _Fake(), 30.0), Rung("b", _Fake(), 20.0), Rung("c", _Fake())])
    with pytest.raises(ValueError):
        Ladder([Rung("a", _Fake(), 30.0)])            # the last rung must take every larger face
    with pytest.raises(ValueError):
        Ladder([Rung("a", _Fake(False), 30.0), Rung("b", _Fake(True))])


@pytest.fixture(scope="module")
def small_and_large(tmp_path_factory, tiny_weights):
    """Two tiny models of different input sizes, as the ladder's small and large rungs."""
    import torch

    from sht_model import build_model, save_model
    from tracker.backends import load_backend

    torch.manual_seed(1)
    small = save_model(build_model("test", input_size=32), tmp_path_factory.mktemp("w") / "small.safetensors")
    return load_backend(small, "onnxruntime"), load_backend(tiny_weights, "onnxruntime")


def test_every_face_gets_landmarks_from_exactly_one_model_in_one_call_per_model(small_and_large):
    from tracker.pipeline import FaceTracker, TrackerOptions
    from tracker.types import Frame

    small, large = small_and_large
    calls = {"small": [], "large": []}
    for name, backend in (("small", small), ("large", large)):
        real = backend.infer
        backend.infer = (lambda real, name: lambda batch: calls[name].append(len(batch)) or real(batch))(real, name)
    ladder = Ladder([Rung("small", small, 40.0), Rung("large", large)])
    tracker = FaceTracker(ladder, TrackerOptions(detect_every=1, cut_threshold=0))
    frames = astronaut_scene(6, lambda i: [(80, 120), (230, 120)], 30, size=(320, 240))
    for i, image in enumerate(frames):
        for k in calls:
            calls[k].clear()
        result = tracker.process(Frame(i + 1, i / 25, image))
        faces = result.faces
        if len(faces):
            assert set(faces.model) <= {"small", "large"}
            widths = faces.boxes[:, 2] - faces.boxes[:, 0]
            assert len(faces.model) == len(faces)      # exactly one model per face
            assert all(m == "small" for m, w in zip(faces.model, widths) if w < 36)
            assert all(m == "large" for m, w in zip(faces.model, widths) if w > 44)
        # One call per model that has faces, never two for the same model in the tracking pass.
        assert all(len(c) <= 2 for c in calls.values())     # the second: the refinement of new tracks


def test_the_csv_model_column_matches_the_router(tmp_path, small_and_large):
    from tracker.pipeline import TrackerOptions
    from tracker.run import Outputs, run_source

    small, large = small_and_large
    clip = write_video(tmp_path / "c.mp4", astronaut_scene(8, lambda i: [(80, 120)], 24)
                       + astronaut_scene(8, lambda i: [(160, 120)], 90))
    out = tmp_path / "o.csv"
    ladder = Ladder([Rung("small", small, 40.0), Rung("large", large)])
    assert run_source(str(clip), ladder, TrackerOptions(), Outputs(csv=out, quiet=True)) == 0
    rows = [r for r in csv.DictReader(out.open()) if r["success"] == "1"]
    assert rows, "faces were found"
    for r in rows:
        width = float(r["box_x1"]) - float(r["box_x0"])
        assert r["model"] in ("small", "large")
        if width < 36:
            assert r["model"] == "small", width
        if width > 44:
            assert r["model"] == "large", width
