"""Peers run beside shtrack: MediaPipe FaceMesh (in its own environment) and its 468 -> 68 point mapping.

    bash benchmarks/setup_mediapipe.sh          # once: .venv-mediapipe with mediapipe==0.10.21 (offline models)
    python -m benchmarks.peers fit-map          # refit benchmarks/mediapipe_68.json on training clips

MediaPipe cannot live in shtrack's environment (protobuf<5 and numpy<2 against onnx's protobuf>=6), so it runs
as a subprocess of the python found at $SHTRACK_MEDIAPIPE_PYTHON or .venv-mediapipe/bin/python; frames go to
it as a video file or an .npz of frame stacks and its landmarks come back as an .npz (mediapipe_peer.py).

The mapping picks, for each of dlib's 68 points, the mesh vertex nearest to it on average (distance over the
inter-ocular distance) on frames of the TRAINING clips; what the mapping alone costs is its NME against dlib
on the held-out clips at full resolution over the frames MediaPipe tracked (NME < 0.10; the frames where it
lost the face are counted apart), stored with it and shown by benchmarks.lowres.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from train import metrics

from .common import console, table

REPO = Path(__file__).resolve().parents[1]
MAPPING = Path(__file__).resolve().parent / "mediapipe_68.json"
WORKER = Path(__file__).resolve().parent / "mediapipe_peer.py"
# Clips the mapping is fitted on: training clips only (train/video.py holds out the others).
FIT_CLIPS = ("driving_d10", "driving_d11", "driving_d12", "driving_d14", "driving_d18", "driving_d3",
             "source_s18", "source_s20")


class PeerUnavailable(RuntimeError):
    """The peer's environment is not installed here."""


def mediapipe_python() -> Path:
    candidate = Path(os.environ.get("SHTRACK_MEDIAPIPE_PYTHON", REPO / ".venv-mediapipe/bin/python"))
    if not candidate.exists():
        raise PeerUnavailable(f"no MediaPipe environment at {candidate} (run: bash benchmarks/setup_mediapipe.sh)")
    return candidate


def _run_worker(args: list[str], out: Path) -> dict[str, np.ndarray]:
    proc = subprocess.run([str(mediapipe_python()), str(WORKER), *args, "--out", str(out)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"MediaPipe worker failed ({proc.returncode}): {tail[0]}")
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


def mediapipe_video(video: Path, frames: int = 0, max_faces: int = 1) -> dict:
    """Track a video file in the MediaPipe environment: xy (N x faces x 468 x 2), decode_ms, process_ms, wall_s."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = _run_worker(["--video", str(video), "--frames", str(frames), "--max-faces", str(max_faces)],
                          Path(tmp) / "out.npz")
    return {k.split("/", 1)[1]: v for k, v in raw.items()}


def mediapipe_sequences(sequences: dict[str, list[np.ndarray]], max_faces: int = 1) -> dict[str, np.ndarray]:
    """Track each named list of BGR frames with a fresh FaceMesh. Returns name -> xy (N x faces x 468 x 2)."""
    with tempfile.TemporaryDirectory() as tmp:
        stacks = Path(tmp) / "in.npz"
        np.savez(stacks, **{name: np.stack(frames) for name, frames in sequences.items()})
        raw = _run_worker(["--sequences", str(stacks), "--max-faces", str(max_faces)], Path(tmp) / "out.npz")
    return {name: raw[f"{name}/xy"] for name in sequences}


def load_mapping(path: Path = MAPPING) -> tuple[np.ndarray, dict]:
    """The 68 mesh-vertex indices (dlib/iBUG order), and the whole fit record (provenance, its own cost)."""
    fit = json.loads(path.read_text())
    index = np.asarray(fit["vertex"], np.int64)
    if index.shape != (68,) or index.min() < 0 or index.max() >= 468:
        raise ValueError(f"{path}: 'vertex' must be 68 indices into the 468-point mesh")
    return index, fit


def to68(mesh_xy: np.ndarray, index: np.ndarray) -> np.ndarray:
    """(..., 468, 2) -> (..., 68, 2)."""
    return mesh_xy[..., index, :]


def fit_vertex_map(mesh: np.ndarray, dlib68: np.ndarray) -> np.ndarray:
    """mesh (F x 468 x 2), dlib68 (F x 68 x 2) -> for each dlib point, the vertex with the least mean
    inter-ocular-normalised distance to it."""
    io = metrics.normaliser(dlib68, "inter-ocular")[:, None, None]
    dist = np.linalg.norm(mesh[:, None, :, :] - dlib68[:, :, None, :], axis=-1) / io   # F x 68 x 468
    return dist.mean(0).argmin(-1)


def _paired_frames(videos: Path, clips, stride: int, limit: int):
    """Full-resolution frames of `clips` (every `stride`-th, at most `limit` per clip) with dlib's 68 points."""
    from tracker.sources import open_source
    from train.label import DlibTeacher

    teacher = DlibTeacher()
    sequences, labels = {}, {}
    for clip in clips:
        video = next(videos.glob(f"{clip}.*"))
        frames, xy = [], []
        with open_source(str(video)) as source:
            for frame in source:
                if (frame.index - 1) % stride:
                    continue
                points = teacher(frame.image[:, :, ::-1].copy())
                frames.append(frame.image)
                xy.append(points)
                if len(frames) >= limit:
                    break
        sequences[clip], labels[clip] = frames, xy
    return sequences, labels


def _pairs(mesh_runs: dict, labels: dict):
    mesh, ref = [], []
    for clip, runs in mesh_runs.items():
        for m, d in zip(runs[:, 0], labels[clip]):
            if d is not None and not np.isnan(m).any():
                mesh.append(m)
                ref.append(d)
    return np.asarray(mesh), np.asarray(ref)


FAILURE = 0.10   # a frame where the mapped mesh is this far from dlib (NME) is a tracking failure, not convention


def fit_map(videos: Path, stride: int = 5, limit: int = 40) -> dict:
    """Fit on training clips (refit once without MediaPipe's tracking failures), score on held-out clips."""
    from train.video import HELD_OUT_CLIPS

    fit_frames, fit_labels = _paired_frames(videos, FIT_CLIPS, stride, limit)
    mesh, ref = _pairs(mediapipe_sequences(fit_frames), fit_labels)
    index = fit_vertex_map(mesh, ref)
    kept = metrics.nme(to68(mesh, index), ref) < FAILURE
    index = fit_vertex_map(mesh[kept], ref[kept])
    fit_err = metrics.nme(to68(mesh, index), ref)
    held_frames, held_labels = _paired_frames(videos, HELD_OUT_CLIPS, stride, limit)
    held_mesh, held_ref = _pairs(mediapipe_sequences(held_frames), held_labels)
    held_err = metrics.nme(to68(held_mesh, index), held_ref)
    ok = held_err < FAILURE
    return {"vertex": index.tolist(), "fit_clips": list(FIT_CLIPS), "fit_frames": int(kept.sum()),
            "fit_nme": float(fit_err[fit_err < FAILURE].mean()), "held_out_clips": list(HELD_OUT_CLIPS),
            "held_out_frames": int(ok.sum()), "held_out_nme": float(held_err[ok].mean()),
            "held_out_failures": int((~ok).sum()), "held_out_nme_all": float(held_err.mean()),
            "failure_threshold": FAILURE, "stride": stride, "frames_per_clip": limit,
            "command": "python -m benchmarks.peers fit-map"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit-map", help="fit the 468 -> 68 mapping on training clips, score it on held-out ones")
    fit.add_argument("--videos", type=Path, default=REPO.parent / "shared/data/videos")
    fit.add_argument("--stride", type=int, default=5)
    fit.add_argument("--frames-per-clip", type=int, default=40)
    fit.add_argument("--out", type=Path, default=MAPPING)
    args = p.parse_args(argv)
    try:
        result = fit_map(args.videos, args.stride, args.frames_per_clip)
    except PeerUnavailable as e:
        console.print(f"error: {e}")
        return 2
    args.out.write_text(json.dumps(result, indent=1))
    console.print(table("MediaPipe 468 -> 68 mapping vs dlib, full resolution", ["clips", "frames", "NME"],
                        [["fit (training clips)", result["fit_frames"], f"{result['fit_nme']:.2%}"],
                         ["held-out clips", result["held_out_frames"], f"{result['held_out_nme']:.2%}"],
                         [f"held-out, all frames ({result['held_out_failures']} tracking failures)",
                          result["held_out_frames"] + result["held_out_failures"],
                          f"{result['held_out_nme_all']:.2%}"]]))
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
