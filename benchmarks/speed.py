"""End-to-end speed: decode -> detect -> crop -> infer -> heatmaps -> smooth -> CSV, per stage p50/p95/p99,
for each preset x backend, batch 1 (one face) and batched multi-face; on the same frames, dlib's pipeline and
MediaPipe FaceMesh in tracking mode (in its own environment: benchmarks/peers.py; skipped with a note if absent).
Peers' detect+landmark time is one "landmarks" figure for MediaPipe (BlazeFace runs inside its graph).

    python -m benchmarks.speed [--video FILE] [--size 640x480] [--frames 300] [--threads 2] [--repeats 3] [--models ...]

Default input: the held-out clip driving_d13 (one talking head) resized to 640x480 and written once to
benchmarks/cache. Bundled models (cpu-rt, cpu-fast and their int8 exports: tracker/backends.WEIGHTS; the int8
ones on ONNX Runtime only) run their shipped weights; any other
preset runs random weights: the network's time does not depend on weight values, but random heatmaps fail
the confidence test, so the detector runs on every frame (read the infer column of those rows, not their FPS).
Writes benchmarks/results/speed.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from .common import console, save, table

CACHE = Path(__file__).resolve().parent / "cache"
STAGES = ("decode", "detect", "crop", "infer", "heatmaps", "smooth", "write")


def make_input(video: Path, size: tuple[int, int], frames: int, faces: int = 1) -> Path:
    """The clip resized to `size`; with faces > 1, tiled copies side by side (a multi-face scene)."""
    from tracker.demo import write_clip
    from tracker.sources import open_source

    out = CACHE / f"{video.stem}_{size[0]}x{size[1]}_{faces}f_{frames}.mp4"
    if out.exists():
        return out
    images = []
    with open_source(str(video)) as source:
        for frame in source:
            if frame.index > frames:
                break
            img = frame.image
            if faces > 1:
                cols = int(np.ceil(np.sqrt(faces)))
                rows = int(np.ceil(faces / cols))
                tile = _letterbox(img, (size[0] // cols, size[1] // rows))
                canvas = np.zeros((size[1], size[0], 3), np.uint8)
                for k in range(faces):
                    r, c = divmod(k, cols)
                    canvas[r * tile.shape[0]:(r + 1) * tile.shape[0], c * tile.shape[1]:(c + 1) * tile.shape[1]] = tile
                images.append(canvas)
            else:
                images.append(_letterbox(img, size))
    return write_clip(images, out)


def _letterbox(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize keeping the aspect ratio (a stretched face is not a face to HOG or Haar), pad with black."""
    k = min(size[0] / img.shape[1], size[1] / img.shape[0])
    small = cv2.resize(img, (round(img.shape[1] * k), round(img.shape[0] * k)), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((size[1], size[0], 3), np.uint8)
    y, x = (size[1] - small.shape[0]) // 2, (size[0] - small.shape[1]) // 2
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    return canvas


def _frames(video: Path) -> int:
    from tracker.sources import open_source

    with open_source(str(video)) as source:
        return sum(1 for _ in source)


def run_command(program: list[str], video: Path, csv_path: Path) -> float:
    """Wall seconds of one whole `shtrack --source VIDEO --csv CSV --quiet` (default flags; start-up included)."""
    import subprocess

    start = time.perf_counter()
    subprocess.run([*program, "--source", str(video), "--csv", str(csv_path), "--quiet"], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def run_shtrack(video: Path, weights: Path, backend: str, threads: int, min_face: float) -> dict:
    from tracker.backends import load_backend
    from tracker.pipeline import FaceTracker, TrackerOptions, run_frames, smoothing_for
    from tracker.sinks import CsvSink
    from tracker.sources import open_source

    stage_ms = {s: [] for s in STAGES}
    faces, intervals = [], []
    # The model is loaded before the clock starts, as dlib's and MediaPipe's are; opening the file is timed.
    options = TrackerOptions(min_face=min_face)
    tracker = FaceTracker(load_backend(weights, backend, "cpu", threads), options)
    with tempfile.TemporaryDirectory() as tmp, CsvSink(Path(tmp) / "out.csv") as sink:
        start = time.perf_counter()
        with open_source(str(video)) as source:
            # The default pipeline, smoothing included (a file: fixed-lag RTS, frames written `lag` frames late).
            last = start
            for result in smoothing_for(options, source)(run_frames(source, tracker)):
                t = time.perf_counter()
                sink.append(result)
                result.timings["write"] = (time.perf_counter() - t) * 1000
                for s in STAGES:
                    stage_ms[s].append(result.timings.get(s, 0.0))
                faces.append(int(result.faces.success.sum()))
                # Wall time per frame: from one result to the next (stages overlap when the next frame's scan
                # runs ahead, so their sum is not the frame's time).
                now = time.perf_counter()
                intervals.append((now - last) * 1000)
                last = now
        wall = time.perf_counter() - start
    n = len(faces)
    return {"frames": n, "fps": n / wall, "faces_per_frame": float(np.mean(faces)),
            "stages": {s: _pct(v) for s, v in stage_ms.items()},
            "total_ms": _pct(intervals[1:] or intervals)}


def run_dlib(video: Path, upsample: int = 0) -> dict:
    from tracker.sources import open_source
    from train.label import DlibTeacher

    teacher = DlibTeacher(upsample)
    stage_ms = {"decode": [], "detect": [], "landmarks": []}
    found = []
    start = time.perf_counter()
    with open_source(str(video)) as source:
        frames = iter(source)
        while True:
            t0 = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                break
            rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
            t1 = time.perf_counter()
            rects = teacher.detect(rgb)
            t2 = time.perf_counter()
            for r in rects:
                teacher.landmarks(rgb, r)
            t3 = time.perf_counter()
            stage_ms["decode"].append((t1 - t0) * 1000)
            stage_ms["detect"].append((t2 - t1) * 1000)
            stage_ms["landmarks"].append((t3 - t2) * 1000)
            found.append(len(rects))
    wall = time.perf_counter() - start
    return {"frames": len(found), "fps": len(found) / wall, "faces_per_frame": float(np.mean(found)),
            "stages": {s: _pct(v) for s, v in stage_ms.items()}}


def run_mediapipe(video: Path, max_faces: int) -> dict:
    """MediaPipe FaceMesh in tracking mode, in its own environment (benchmarks/peers.py), on the same file."""
    from .peers import mediapipe_video

    r = mediapipe_video(video, max_faces=max_faces)
    found = (~np.isnan(r["xy"][..., 0, 0])).sum(-1)
    n = len(found)
    return {"frames": n, "fps": n / float(r["wall_s"]), "faces_per_frame": float(found.mean()),
            "stages": {"decode": _pct(r["decode_ms"]), "landmarks": _pct(r["process_ms"])}}


def _pct(values) -> dict:
    v = np.asarray(values, np.float64)
    return {"p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95)), "p99": float(np.percentile(v, 99))}


def random_weights(preset: str, folder: Path) -> Path:
    from sht_model import build_model, save_model

    return save_model(build_model(preset), folder / f"{preset}-random.safetensors")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    repo = Path(__file__).resolve().parents[1]
    p.add_argument("--video", type=Path, default=repo.parent / "shared/data/videos/driving_d13.mp4")
    p.add_argument("--size", default="640x480")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models", "--presets", nargs="+", default=["cpu-rt", "cpu-fast", "cpu-rt-int8", "cpu-fast-int8"],
                   help="bundled models by name (tracker/backends.WEIGHTS); other preset names run random weights")
    p.add_argument("--backends", nargs="+", default=["onnxruntime", "torch"])
    p.add_argument("--multi-faces", type=int, default=4, help="faces in the batched multi-face run (0 = skip)")
    p.add_argument("--min-face", type=float, default=48.0)
    p.add_argument("--repeats", type=int, default=3, help="runs of each shtrack row; the median run is reported")
    p.add_argument("--versus", nargs="*", default=[], metavar="LABEL=SHTRACK",
                   help="another installed version's shtrack executable (e.g. v0.2.0=../venv-v020/bin/shtrack): the "
                        "whole `shtrack` command of each version, default flags, alternating over --repeats rounds on "
                        "every input; reports the same-run FPS ratio (this machine's speed drifts between days)")
    p.add_argument("--input", type=Path, help="time this clip as it is (e.g. a crowd scene) instead of --video")
    p.add_argument("--name", default="speed", help="results file (benchmarks/results/NAME.json)")
    p.add_argument("--no-dlib", action="store_true")
    p.add_argument("--no-mediapipe", action="store_true")
    args = p.parse_args(argv)
    from tracker.backends import WEIGHTS

    size = tuple(int(v) for v in args.size.split("x"))
    CACHE.mkdir(parents=True, exist_ok=True)
    single = args.input if args.input else make_input(args.video, size, args.frames)
    inputs = {"1 face": single}
    if args.multi_faces > 1 and not args.input:
        inputs[f"{args.multi_faces} faces"] = make_input(args.video, size, args.frames, args.multi_faces)
    results, rows = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.models:
            bundled = (WEIGHTS[preset].file if preset in WEIGHTS else None)
            weights = bundled if bundled and bundled.exists() else random_weights(preset, Path(tmp))
            for backend in args.backends:
                if weights.suffix == ".onnx" and backend != "onnxruntime":
                    continue   # int8 models are ONNX Runtime graphs
                for label, video in inputs.items():
                    min_face = args.min_face if label == "1 face" else args.min_face / 2
                    # The VM's speed drifts from minute to minute: repeat, keep every run, report the median run.
                    runs = sorted((run_shtrack(video, weights, backend, args.threads, min_face)
                                   for _ in range(args.repeats)), key=lambda run: run["fps"])
                    r = {**runs[len(runs) // 2], "fps_runs": [run["fps"] for run in runs]}
                    key = f"shtrack {preset} {backend} ({label})"
                    results[key] = r
                    st = r["stages"]
                    fps = f"{r['fps']:.1f}" + (f" ({runs[0]['fps']:.0f}-{runs[-1]['fps']:.0f})" if len(runs) > 1 else "")
                    rows.append([key, fps, f"{r['faces_per_frame']:.2f}",
                                 f"{r['total_ms']['p50']:.1f}/{r['total_ms']['p95']:.1f}"]
                                + [f"{st[s]['p50']:.2f}" for s in STAGES])
        if not args.no_dlib:
            for label, video in inputs.items():
                r = run_dlib(video)
                results[f"dlib HOG+68 ({label})"] = r
                st = r["stages"]
                total = 1000.0 / r["fps"]
                rows.append([f"dlib HOG+68 ({label})", f"{r['fps']:.1f}", f"{r['faces_per_frame']:.2f}",
                             f"{total:.1f} (mean)", f"{st['decode']['p50']:.2f}", f"{st['detect']['p50']:.2f}",
                             "", f"{st['landmarks']['p50']:.2f}", "", "", ""])
        if not args.no_mediapipe:
            from .peers import PeerUnavailable

            for label, video in inputs.items():
                key = f"MediaPipe FaceMesh ({label})"
                try:
                    r = run_mediapipe(video, max_faces=1 if label == "1 face" else args.multi_faces)
                except PeerUnavailable as e:
                    console.print(f"[yellow]{key} not run: {e}")
                    break
                results[key] = r
                st = r["stages"]
                rows.append([key, f"{r['fps']:.1f}", f"{r['faces_per_frame']:.2f}", f"{1000.0 / r['fps']:.1f} (mean)",
                             f"{st['decode']['p50']:.2f}", "(in graph)", "", f"{st['landmarks']['p50']:.2f}", "", "", ""])
        versus = dict(v.split("=", 1) for v in args.versus)
        if versus:
            for label, video in inputs.items():
                frames = _frames(video)
                commands = {"this version": [sys.executable, "-m", "tracker.cli"],
                            **{name: [exe] for name, exe in versus.items()}}
                walls = {name: [] for name in commands}
                for _ in range(args.repeats):         # alternating, so drift hits every version alike
                    for name, program in commands.items():
                        walls[name].append(run_command(program, video, Path(tmp) / f"{name}.csv"))
                for name, w in walls.items():
                    fps = frames / float(np.median(w))
                    results[f"shtrack {name}, whole command ({label})"] = {"fps": fps, "walls": w, "frames": frames}
                for name in versus:
                    mine = results[f"shtrack this version, whole command ({label})"]
                    mine[f"ratio_to_{name}"] = mine["fps"] / results[f"shtrack {name}, whole command ({label})"]["fps"]
                    rows.append([f"this version / {name}, whole command ({label})",
                                 f"{mine['fps']:.1f} / {results[f'shtrack {name}, whole command ({label})']['fps']:.1f}",
                                 "", f"{mine[f'ratio_to_{name}']:.2f}x"] + [""] * len(STAGES))
    dlib_fps = results.get("dlib HOG+68 (1 face)", {}).get("fps")
    mediapipe_fps = results.get("MediaPipe FaceMesh (1 face)", {}).get("fps")
    for key, r in results.items():
        if dlib_fps:
            r["ratio_to_dlib"] = r["fps"] / dlib_fps
        if mediapipe_fps:
            r["ratio_to_mediapipe"] = r["fps"] / mediapipe_fps
    console.print(table(f"end-to-end speed, {size[0]}x{size[1]}, {args.threads} threads (ms per frame)",
                        ["pipeline", "FPS", "faces", "total p50/p95"] + [f"{s} p50" for s in STAGES], rows))
    if dlib_fps or mediapipe_fps:
        peers = {"ratio_to_dlib": "dlib", "ratio_to_mediapipe": "MediaPipe"}
        console.print({k: ", ".join(f"{v[r]:.1f}x {name}" for r, name in peers.items() if r in v)
                       for k, v in results.items()})
    save(args.name, {"video": str(args.video), "size": args.size, "frames": args.frames, "threads": args.threads,
                   "repeats": args.repeats,
                   "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
