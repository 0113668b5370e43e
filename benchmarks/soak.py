"""Soak: a long synthetic stream (default one hour at 25 FPS, 160x120) through the tracker, in constant memory.

    python -m benchmarks.soak [--minutes 60] [--fps 25] [--size 160x120]

The stream is generated on the fly (a face moving, leaving and re-entering, with sensor noise), tracked
with the bundled weights and written to a CSV; RSS is sampled at the start, every 10% and at the end.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import console, save


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_stream(n: int, size: tuple[int, int], fps: float):
    """Frames of a face that drifts across the scene and leaves it for 2 s of every 20 s."""
    import cv2
    from skimage import data

    from tracker.demo import ASTRONAUT_FACE_CENTRE, ASTRONAUT_FACE_WIDTH
    from tracker.sources import Source
    from tracker.types import Frame

    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    rng = np.random.default_rng(0)
    w, h = size

    def frames():
        for i in range(n):
            t = i / fps
            m = cv2.getRotationMatrix2D(ASTRONAUT_FACE_CENTRE, 0, 24 / ASTRONAUT_FACE_WIDTH)
            away = (t % 20) > 18
            cx = w * (0.3 + 0.4 * (0.5 + 0.5 * np.sin(t / 3))) + (10 * w if away else 0)
            m[:, 2] += np.array([cx, h / 2]) - ASTRONAUT_FACE_CENTRE
            img = cv2.warpAffine(photo, m, size, flags=cv2.INTER_AREA, borderValue=(60, 60, 60))
            noise = rng.integers(-6, 7, img.shape, dtype=np.int16)
            yield Frame(i + 1, t, np.clip(img + noise, 0, 255).astype(np.uint8), "synthetic")

    return Source("synthetic", frames(), n, fps, live=False)


def run(minutes: float, fps: float, size: tuple[int, int]) -> dict:
    from tracker.pipeline import track
    from tracker.sinks import CsvSink

    n = int(minutes * 60 * fps)
    samples = [(0, rss_mb())]
    found = 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, CsvSink(Path(tmp) / "soak.csv") as sink:
        for result in track(synthetic_stream(n, size, fps), backend="onnxruntime", threads=2, min_face=16):
            sink.append(result)
            found += bool(result.faces.success.any()) if len(result.faces) else 0
            if result.frame.index % max(1, n // 10) == 0:
                samples.append((result.frame.index, rss_mb()))
        csv_mb = (Path(tmp) / "soak.csv.partial").stat().st_size / 1e6
        rss_end = rss_mb()          # still streaming: before the tracker, model and sink are torn down
    wall = time.perf_counter() - start
    return {"frames": n, "stream_minutes": minutes, "wall_s": wall, "fps": n / wall, "found": found / n,
            "rss_mb": samples, "rss_start_mb": samples[1][1] if len(samples) > 2 else samples[0][1],
            "rss_end_mb": rss_end, "rss_after_close_mb": rss_mb(), "csv_mb": csv_mb}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--size", default="160x120")
    args = p.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    r = run(args.minutes, args.fps, size)
    console.print(f"{r['frames']} frames ({args.minutes} min of stream) in {r['wall_s']:.0f} s = {r['fps']:.0f} FPS; "
                  f"face found in {r['found']:.1%} of frames (absent 10% of the time by design)")
    console.print(f"RSS after the first 10%: {r['rss_start_mb']:.0f} MB, at the end: {r['rss_end_mb']:.0f} MB; "
                  f"samples {[(i, round(m)) for i, m in r['rss_mb']]}")
    save("soak", r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
