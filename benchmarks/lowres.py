"""Accuracy versus face width on held-out clips made small inside a 320x240 frame, against the teacher's
full-resolution landmarks (dlib's 68-point predictor on the original frames).

    python -m benchmarks.lowres [--weights W ...] [--widths 16 24 32 48 64] [--stride 2] [--no-dlib]

For each held-out clip (train/video.py HELD_OUT_CLIPS) and width w, every `stride`-th frame is scaled so the
face's median landmark width is w px and centred in a 320x240 canvas; the teacher's landmarks go through
the same transform. shtrack runs as a tracker over the frame sequence (detector, landmark-driven crops,
Kalman or not); dlib runs its own pipeline (HOG detector with 2x upsampling + predictor) per frame;
MediaPipe FaceMesh runs in tracking mode per clip in its own environment (benchmarks/peers.py), its 468 points
mapped to the 68 by benchmarks/mediapipe_68.json (the mapping's own cost at full resolution is reported too).
Reports found rate, NME (inter-ocular), FR@0.08, AUC@0.08 and jitter (mean frame-to-frame change of the
error vector / inter-ocular), and writes benchmarks/results/lowres.json, nme_vs_face_size.png, ced.png.
Teacher labels are made on first use into benchmarks/cache/labels (needs the `[peers]` extra).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from train import metrics
from train.readers import read_pts
from train.video import HELD_OUT_CLIPS

from .common import RESULTS, console, pct, save, table

CACHE = Path(__file__).resolve().parent / "cache"
CANVAS = (320, 240)


def teacher_labels(videos: Path, clips) -> Path:
    out = CACHE / "labels"
    missing = [c for c in clips if not (out / c / "annot").exists()]
    if missing:
        from train.label import main as label_main

        label_main([str(videos), str(out), "--only", *missing])
    return out


def load_clip(videos: Path, labels: Path, clip: str, stride: int):
    """[(frame BGR, teacher xy)] for every `stride`-th labelled frame."""
    import av

    annot = labels / clip / "annot"
    video = next(videos.glob(f"{clip}.*"))
    items = []
    with av.open(str(video)) as container:
        for number, frame in enumerate(container.decode(video=0), 1):
            if (number - 1) % stride:
                continue
            pts = annot / f"{number:06d}.pts"
            if pts.exists():
                items.append((frame.to_ndarray(format="bgr24"), read_pts(pts)))
    return items


def shrink(items, width: float):
    """Scale the clip so the face's median width is `width` px, centred in the canvas."""
    widths = [np.ptp(xy[:, 0]) for _, xy in items]
    centre = np.median([xy.mean(0) for _, xy in items], axis=0)
    s = width / float(np.median(widths))
    m = np.array([[s, 0, CANVAS[0] / 2 - s * centre[0]], [0, s, CANVAS[1] / 2 - s * centre[1]]])
    out = []
    for image, xy in items:
        small = cv2.warpAffine(image, m, CANVAS, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        if s < 1:   # warpAffine does not low-pass: pre-blur like a camera's optics would
            blurred = cv2.GaussianBlur(image, (0, 0), 0.5 / s)
            small = cv2.warpAffine(blurred, m, CANVAS, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out.append((small, xy * s + m[:, 2]))
    return out


def pick(faces_xy, success, gt):
    """The successful face nearest the ground truth (None when none is within half a face width)."""
    best, best_d = None, None
    width = np.ptp(gt[:, 0])
    for xy, ok in zip(faces_xy, success):
        if not ok:
            continue
        d = np.linalg.norm(xy.mean(0) - gt.mean(0))
        if d < 0.5 * width and (best_d is None or d < best_d):
            best, best_d = xy, d
    return best


def run_shtrack(frames, weights, smooth: str, min_face: float):
    from tracker.pipeline import track
    from tracker.sources import frames_from_arrays

    preds = []
    stream = frames_from_arrays([f for f, _ in frames])
    for result, (_, gt) in zip(track(stream, weights=weights, backend="onnxruntime", threads=2, smooth=smooth,
                                     min_face=min_face, detect_every=10), frames):
        preds.append(pick(result.faces.xy, result.faces.success, gt))
    return preds


def run_dlib(frames, teacher):
    preds = []
    for image, gt in frames:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        rects = teacher.detector(rgb, 2)
        xy = [teacher.landmarks(rgb, r) for r in rects]
        preds.append(pick(xy, [True] * len(xy), gt))
    return preds


def run_mediapipe(scaled: dict, mapping) -> dict:
    """FaceMesh in tracking mode over each clip (its own environment), mapped 468 -> 68."""
    from .peers import mediapipe_sequences, to68

    mesh = mediapipe_sequences({clip: [f for f, _ in frames] for clip, frames in scaled.items()})
    out = {}
    for clip, frames in scaled.items():
        xy = to68(mesh[clip], mapping)                     # N x faces x 68 x 2
        out[clip] = [pick(faces, ~np.isnan(faces[:, 0, 0]), gt) for faces, (_, gt) in zip(xy, frames)]
    return out


def score(preds, gts) -> dict:
    found = [p is not None for p in preds]
    errs, jit, prev = [], [], None
    for p, g in zip(preds, gts):
        if p is None:
            prev = None
            continue
        io = np.linalg.norm(g[36] - g[45])
        errs.append(np.linalg.norm(p - g, axis=-1).mean() / io)
        vec = (p - g) / io
        if prev is not None:
            jit.append(np.linalg.norm(vec - prev, axis=-1).mean())
        prev = vec
    s = metrics.summary(np.array(errs), 0.08)
    return {"found": float(np.mean(found)), "nme": s["nme"], "fr@0.08": s["fr@0.08"], "auc@0.08": s["auc@0.08"],
            "jitter": float(np.mean(jit)) if jit else float("nan"), "errors": [float(e) for e in errs]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--videos", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/data/videos")
    p.add_argument("--weights", nargs="+", default=["default"],
                   help="NAME=PATH pairs or 'default' (the bundled models: shtrack = cpu-rt, shtrack-fast = cpu-fast, "
                        "and their -int8 exports)")
    p.add_argument("--widths", nargs="+", type=float, default=[16, 24, 32, 48, 64])
    p.add_argument("--clips", nargs="+", default=list(HELD_OUT_CLIPS))
    p.add_argument("--stride", type=int, default=2)
    p.add_argument("--no-dlib", action="store_true")
    p.add_argument("--no-mediapipe", action="store_true")
    p.add_argument("--smoothing", nargs="+", choices=["none", "kalman"], default=["kalman", "none"],
                   help="tracker variants of the first model (none = the default pipeline, rows NAME; kalman: "
                        "NAME+kalman); other models run the default pipeline only")
    p.add_argument("--name", default="lowres")
    args = p.parse_args(argv)
    from tracker.backends import BUNDLED

    methods = {}
    for spec in args.weights:
        name, _, path = spec.partition("=")
        if path:
            methods[name] = Path(path)
            continue
        for method, model in (("shtrack", "cpu-rt"), ("shtrack-fast", "cpu-fast"), ("shtrack-int8", "cpu-rt-int8"),
                              ("shtrack-fast-int8", "cpu-fast-int8")):
            if BUNDLED[model].exists():
                methods[method] = BUNDLED[model]
    labels = teacher_labels(args.videos, args.clips)
    clips = {c: load_clip(args.videos, labels, c, args.stride) for c in args.clips}
    teacher = None
    if not args.no_dlib:
        from train.label import DlibTeacher

        teacher = DlibTeacher()
    mapping = None
    if not args.no_mediapipe:
        from .peers import PeerUnavailable, load_mapping, mediapipe_python

        try:
            mediapipe_python()
            mapping, fit = load_mapping()
        except PeerUnavailable as e:
            console.print(f"[yellow]MediaPipe not run: {e}")
    results: dict = {}
    for width in args.widths:
        per_method: dict[str, tuple[list, list]] = {}
        scaled = {clip: shrink(items, width) for clip, items in clips.items()}
        mesh = run_mediapipe(scaled, mapping) if mapping is not None else {}
        for clip, frames in scaled.items():
            gts = [g for _, g in frames]
            runs = {}
            for k, (name, path) in enumerate(methods.items()):
                # Smoothing variants for the first model only: what smoothing does barely depends on the model.
                for smooth in args.smoothing if k == 0 else ["none"]:
                    runs[name if smooth == "none" else f"{name}+{smooth}"] = run_shtrack(frames, path, smooth,
                                                                                        0.75 * width)
            if teacher is not None:
                runs["dlib"] = run_dlib(frames, teacher)
            if clip in mesh:
                runs["mediapipe"] = mesh[clip]
            for name, preds in runs.items():
                acc = per_method.setdefault(name, ([], []))
                acc[0].extend(preds)
                acc[1].extend(gts)
        results[str(int(width))] = {name: score(pr, gt) for name, (pr, gt) in per_method.items()}
    rows = []
    for width, per in results.items():
        for name, s in per.items():
            rows.append([f"{width}px", name, pct(s['found'], 1), pct(s['nme']), pct(s['fr@0.08'], 1),
                         f"{s['auc@0.08']:.3f}", f"{s['jitter']:.4f}"])
    console.print(table(f"held-out clips {', '.join(args.clips)} (every {args.stride}. frame), vs dlib teacher",
                        ["width", "method", "found", "NME", "FR@0.08", "AUC@0.08", "jitter"], rows))
    plot(results, args.name)
    for per in results.values():
        for s in per.values():
            s.pop("errors")
    mapping_cost = None
    if mapping is not None:
        mapping_cost = {k: fit[k] for k in ("held_out_nme", "held_out_frames", "held_out_failures", "fit_nme",
                                             "fit_frames")}
        console.print(f"MediaPipe 468->68 mapping alone, full resolution, held-out clips: NME "
                      f"{fit['held_out_nme']:.2%} vs dlib ({fit['held_out_frames']} frames; benchmarks/mediapipe_68.json)")
    save(args.name, {"clips": args.clips, "mediapipe_mapping": mapping_cost, "stride": args.stride,
                     "frames": {c: len(v) for c, v in clips.items()}, "weights": {k: str(v) for k, v in methods.items()}, "results": results})
    return 0


def plot(results: dict, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(parents=True, exist_ok=True)
    widths = sorted(results, key=float)
    methods = list(results[widths[0]])
    fig, ax = plt.subplots(figsize=(5, 4))
    for m in methods:
        ax.plot([float(w) for w in widths], [results[w][m]["nme"] * 100 for w in widths], marker="o", label=m)
    ax.set_xlabel("face width (px) in a 320x240 frame")
    ax.set_ylabel("NME (%, inter-ocular)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "nme_vs_face_size.png" if name == "lowres" else RESULTS / f"{name}_nme_vs_face_size.png", dpi=120)
    plt.close(fig)
    smallest = widths[0]
    metrics.plot_ced({f"{m} @{smallest}px": np.array(results[smallest][m]["errors"]) for m in methods}, 0.2,
                     str(RESULTS / ("ced.png" if name == "lowres" else f"{name}_ced.png")))


if __name__ == "__main__":
    sys.exit(main())
