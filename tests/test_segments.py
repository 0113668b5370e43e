"""`--workers N`: one file in time segments over processes, stitched into the serial run's output."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import astronaut_scene, noise_video, write_video
from tracker.cli import main
from tracker.segments import plan


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _points(row):
    return np.array([[float(row[f"x_{i}"]), float(row[f"y_{i}"])] for i in range(68)])


def test_segments_cover_every_frame_once_with_their_warm_up():
    for total, workers in ((90, 3), (10, 4), (7, 7), (1000, 6)):
        segments = plan(total, workers, overlap=50, lookahead=3)
        written = [t for s in segments for t in range(s.start, s.end + 1)]
        assert written == list(range(1, total + 1))
        for s in segments:
            assert s.track_start == max(1, s.start - 50) and s.track_end == min(total, s.end + 3)
    assert len(plan(3, 8, 10, 2)) == 3


def _compare(serial, parallel):
    """Same frames and rows; ids one-to-one; landmarks within 1% of the inter-ocular distance."""
    a, b = _rows(serial), _rows(parallel)
    assert [r["frame"] for r in a] == [r["frame"] for r in b]
    mapping, worst = {}, 0.0
    for ra, rb in zip(sorted(a, key=lambda r: (int(r["frame"]), float(r["box_x0"] or -1))),
                      sorted(b, key=lambda r: (int(r["frame"]), float(r["box_x0"] or -1)))):
        assert ra["frame"] == rb["frame"] and ra["success"] == rb["success"]
        if ra["success"] != "1":
            continue
        mapping.setdefault(ra["face_id"], set()).add(rb["face_id"])
        xa, xb = _points(ra), _points(rb)
        worst = max(worst, float(np.linalg.norm(xa - xb, axis=1).mean() / np.linalg.norm(xa[36] - xa[45])))
    assert all(len(v) == 1 for v in mapping.values()), mapping
    assert len({next(iter(v)) for v in mapping.values()}) == len(mapping), "one-to-one"
    assert worst < 0.01, worst
    return mapping


@pytest.mark.parametrize("workers", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_workers_give_the_serial_runs_frames_ids_and_landmarks(tmp_path, workers):
    clip = write_video(tmp_path / "c.mp4", astronaut_scene(90, lambda i: [(80 + i * 0.5, 120), (240 - i * 0.3, 110)],
                                                          40))
    assert main(["--source", str(clip), "--csv", str(tmp_path / "serial.csv"), "--quiet"]) == 0
    assert main(["--source", str(clip), "--csv", str(tmp_path / "par.csv"), "--quiet", "--workers", str(workers)]) == 0
    mapping = _compare(tmp_path / "serial.csv", tmp_path / "par.csv")
    assert len(mapping) == 2, "each face crossing the boundaries keeps one id"
    assert not (tmp_path / "par.csv.segments").exists()


@pytest.mark.slow
def test_a_shot_change_at_a_boundary_ends_its_tracks_as_one_run_does(tmp_path):
    first = astronaut_scene(45, lambda i: [(90, 120), (230, 120)], 40, seed=1)
    # Another shot: other faces, the whole picture far brighter (the shot-change test's thumbnails differ).
    second = [np.clip(f.astype(int) + 90, 0, 255).astype(np.uint8)
              for f in astronaut_scene(45, lambda i: [(160, 110)], 50, seed=2)]
    clip = write_video(tmp_path / "cut.mp4", first + second)      # the cut between frames 45 and 46
    assert main(["--source", str(clip), "--csv", str(tmp_path / "serial.csv"), "--quiet"]) == 0
    assert main(["--source", str(clip), "--csv", str(tmp_path / "par.csv"), "--quiet", "--workers", "2"]) == 0
    mapping = _compare(tmp_path / "serial.csv", tmp_path / "par.csv")
    rows = _rows(tmp_path / "par.csv")
    before = {r["face_id"] for r in rows if r["success"] == "1" and int(r["frame"]) <= 45}
    after = {r["face_id"] for r in rows if r["success"] == "1" and int(r["frame"]) > 45}
    assert before and after and not before & after, "no id spans the cut"
    assert len(mapping) == len(before) + len(after)


def test_workers_flag_rules_are_usage_errors(tmp_path, capsys):
    clip = write_video(tmp_path / "c.mp4", astronaut_scene(5, lambda i: [(160, 120)], 40))
    for args, says in ((["--jsonl", str(tmp_path / "x.jsonl"), "--csv", str(tmp_path / "o.csv")], "CSV only"),
                       ([], "--csv FILE"),
                       (["--csv", str(tmp_path / "o.csv"), "--max-frames", "3"], "whole file")):
        assert main(["--source", str(clip), "--workers", "2", "--quiet", *args]) == 2
        assert says in capsys.readouterr().err


def test_resume_redoes_only_the_segments_not_done(tmp_path, monkeypatch):
    import tracker.segments as segments
    from tracker.pipeline import TrackerOptions

    clip = write_video(tmp_path / "c.mp4", astronaut_scene(60, lambda i: [(100 + i, 120)], 40))
    options = TrackerOptions()
    assert segments.run_segments(str(clip), tmp_path / "fresh.csv", 2, options, None, False) == 0
    # A run that died after its first segment: that segment's CSV and mark are there, the second's are not.
    out = tmp_path / "o.csv"
    real = segments._run_jobs
    monkeypatch.setattr(segments, "_run_jobs", lambda jobs, ray: real(jobs[:1], ray))
    with pytest.raises(FileNotFoundError):
        segments.run_segments(str(clip), out, 2, options, None, False)
    ran = []
    monkeypatch.setattr(segments, "_run_jobs", lambda jobs, ray: (ran.extend(j["csv"] for j in jobs), real(jobs, ray)))
    assert segments.run_segments(str(clip), out, 2, options, None, False, resume=True) == 0
    assert [Path(p).name for p in ran] == ["segment-0001.csv"]
    assert out.read_bytes() == (tmp_path / "fresh.csv").read_bytes()


@pytest.mark.slow
def test_ray_segments_give_the_same_output_as_local_workers(tmp_path):
    ray = pytest.importorskip("ray", reason="Ray not installed (pip install 'shtrack[cluster]')")
    clip = write_video(tmp_path / "c.mp4", astronaut_scene(60, lambda i: [(100 + i, 120), (230, 100)], 40))
    assert main(["--source", str(clip), "--csv", str(tmp_path / "local.csv"), "--quiet", "--workers", "2"]) == 0
    try:
        assert main(["--source", str(clip), "--csv", str(tmp_path / "ray.csv"), "--quiet", "--workers", "2",
                     "--ray", "local"]) == 0
    finally:
        ray.shutdown()
    assert (tmp_path / "ray.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()


@pytest.mark.parametrize("name,options,fmt", [
    ("closed.mp4", {"g": "12", "bf": "2"}, None),
    pytest.param("open.mkv", {"g": "12", "bf": "3", "x264-params": "open-gop=1"}, None, marks=pytest.mark.slow),
    pytest.param("camera.ts", {"g": "12", "bf": "0"}, "mpegts", marks=pytest.mark.slow)])
def test_a_start_frame_seeks_and_gives_the_frames_a_full_decode_gives(tmp_path, name, options, fmt):
    from tracker.sources import open_video

    path = noise_video(tmp_path / name, 90, options, fmt, seed=1)   # a keyframe every 12, B-frames as set
    with open_video(str(path)) as src:
        full = {f.index: (f.timestamp, f.image) for f in src}
    for first in (2, 40, 61, 90):
        with open_video(str(path), first_frame=first) as src:
            got = [f for f in src]
        assert got[0].index <= first and got[0].index > first - 12, "from the keyframe before, not the start"
        assert [f.index for f in got] == list(range(got[0].index, 91))
        for f in got:
            assert f.timestamp == full[f.index][0] and np.array_equal(f.image, full[f.index][1]), f.index
