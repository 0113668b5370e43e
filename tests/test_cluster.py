"""Ray scale-out: one task per file, identical outputs to a serial run, a dead worker's task retried."""

from __future__ import annotations

import pytest

from tests.conftest import write_video
from tests.conftest import astronaut_scene


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="Ray not installed (pip install 'shtrack[cluster]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def crash_once(marker: str):
    """A Ray task body whose first attempt dies like a lost worker (no exception: the process is gone), then
    runs the real one. A closure, so Ray ships it by value to workers that cannot import tests/."""
    def body(*args):
        import os
        from pathlib import Path

        from tracker.cluster import track_file

        if not Path(marker).exists():
            Path(marker).write_text("crashed once")
            os._exit(1)
        return track_file(*args)
    return body


@pytest.mark.slow
def test_ray_batch_matches_serial_and_survives_a_dead_worker(tmp_path, tiny_weights, ray_local):
    from tracker.backends import load_backend
    from tracker.cluster import run_batch_ray
    from tracker.pipeline import TrackerOptions
    from tracker.run import Outputs, run_batch

    videos = tmp_path / "in"
    for name, x in (("a", 100), ("b", 200)):
        write_video(videos / f"{name}.mp4", astronaut_scene(6, lambda i, x=x: [(x + i, 120)], 40))
    files = sorted(videos.iterdir())
    options, outputs = TrackerOptions(), Outputs(quiet=True)
    report = run_batch(files, tmp_path / "serial", load_backend(tiny_weights, "onnxruntime"), options, outputs)
    assert report.exit_code == 0 and not report.skipped

    marker = tmp_path / "crashed-once"
    model = {"weights": tiny_weights, "kind": "onnxruntime", "device": "cpu", "threads": 0}
    report = run_batch_ray(files, tmp_path / "ray", "local", model, options, outputs, max_retries=2,
                           task_body=crash_once(str(marker)))
    assert report.exit_code == 0 and not report.lost and not report.skipped
    assert marker.exists(), "the first attempt should have died"
    for name in ("a.csv", "b.csv"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "serial" / name).read_bytes()
