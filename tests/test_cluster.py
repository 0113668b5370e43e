"""Ray scale-out: one task per file, identical outputs to a serial run, a dead worker's task retried."""

from __future__ import annotations

import pytest

from tests.conftest import write_video
from tests.test_tracker import astronaut_scene


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="Ray not installed (pip install 'shtrack[cluster]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_batch_matches_serial_and_survives_a_dead_worker(tmp_path, tiny_weights, ray_local):
    from tracker.backends import load_backend
    from tracker.cli import build_parser, run_batch
    from tracker.cluster import run_batch_ray

    videos = tmp_path / "in"
    for name, x in (("a", 100), ("b", 200)):
        write_video(videos / f"{name}.mp4", astronaut_scene(6, lambda i, x=x: [(x + i, 120)], 40))
    files = sorted(videos.iterdir())

    serial = build_parser().parse_args(["--source", str(videos), "--out", str(tmp_path / "serial"),
                                        "--weights", str(tiny_weights), "--quiet", "--backend", "onnxruntime"])
    assert run_batch(serial, files, load_backend(tiny_weights, "onnxruntime")) == 0

    on_ray = build_parser().parse_args(["--source", str(videos), "--out", str(tmp_path / "ray"),
                                        "--weights", str(tiny_weights), "--quiet", "--backend", "onnxruntime",
                                        "--ray", "local"])
    marker = tmp_path / "crashed-once"
    assert run_batch_ray(on_ray, files, "local", max_retries=2, crash_marker=str(marker)) == 0
    assert marker.exists(), "the first attempt should have died"
    for name in ("a.csv", "b.csv"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "serial" / name).read_bytes()
