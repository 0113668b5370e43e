"""MediaPipe FaceMesh as a benchmark peer. Runs INSIDE the separate MediaPipe environment
(`bash benchmarks/setup_mediapipe.sh` -> .venv-mediapipe), never in shtrack's own: mediapipe==0.10.21, the only
release that carries its models in the wheel, pins protobuf<5 and numpy<2, while our base install has onnx
(protobuf>=6). So this file imports only numpy, av and mediapipe; benchmarks/peers.py drives it as a subprocess.

    python benchmarks/mediapipe_peer.py --video CLIP.mp4 [--frames N] --out OUT.npz
    python benchmarks/mediapipe_peer.py --sequences FRAMES.npz --out OUT.npz

FaceMesh runs in tracking mode (static_image_mode=False: BlazeFace only when the track is lost, as MediaPipe's
own video pipeline does). Each sequence of a --sequences file (an array N x H x W x 3, BGR) gets a fresh FaceMesh,
so tracking state never crosses clips. For each sequence KEY the output holds KEY/xy (N x faces x 468 x 2
pixels, NaN where no face), KEY/decode_ms, KEY/process_ms and KEY/wall_s (first frame to last, model loaded).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

MESH_POINTS = 468


def _face_mesh(max_faces: int):
    import mediapipe as mp

    return mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=max_faces,
                                           refine_landmarks=False, min_detection_confidence=0.5,
                                           min_tracking_confidence=0.5)


def track_frames(frames, max_faces: int) -> dict:
    """frames: an iterator of RGB arrays. Tracks them in order with one FaceMesh."""
    mesh = _face_mesh(max_faces)
    xy, decode_ms, process_ms = [], [], []
    start = None
    frames = iter(frames)
    while True:
        t0 = time.perf_counter()
        rgb = next(frames, None)
        if rgb is None:
            break
        if start is None:
            start = t0
        t1 = time.perf_counter()
        result = mesh.process(rgb)
        t2 = time.perf_counter()
        h, w = rgb.shape[:2]
        points = np.full((max_faces, MESH_POINTS, 2), np.nan, np.float32)
        for k, face in enumerate((result.multi_face_landmarks or [])[:max_faces]):
            points[k] = [(p.x * w, p.y * h) for p in face.landmark]
        xy.append(points)
        decode_ms.append((t1 - t0) * 1000)
        process_ms.append((t2 - t1) * 1000)
    wall = time.perf_counter() - start if start is not None else 0.0
    mesh.close()
    return {"xy": np.asarray(xy, np.float32).reshape(-1, max_faces, MESH_POINTS, 2),
            "decode_ms": np.asarray(decode_ms), "process_ms": np.asarray(process_ms), "wall_s": np.float64(wall)}


def video_frames(path: str, limit: int):
    import av

    with av.open(path) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if limit and i >= limit:
                break
            yield frame.to_ndarray(format="rgb24")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", help="track one video file (decoded with PyAV, timed)")
    src.add_argument("--sequences", help=".npz of BGR frame stacks, one fresh tracker per key")
    p.add_argument("--frames", type=int, default=0, help="stop after N frames of --video (0 = all)")
    p.add_argument("--max-faces", type=int, default=1)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    out = {}
    if args.video:
        for key, value in track_frames(video_frames(args.video, args.frames), args.max_faces).items():
            out[f"video/{key}"] = value
    else:
        with np.load(args.sequences) as stacks:
            for name in stacks.files:
                rgb = (frame[:, :, ::-1].copy() for frame in stacks[name])
                for key, value in track_frames(rgb, args.max_faces).items():
                    out[f"{name}/{key}"] = value
    np.savez(args.out, **out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
