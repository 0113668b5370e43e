"""Accuracy versus face width on held-out clips made small inside a 320x240 frame, against the teacher's
full-resolution landmarks (dlib's 68-point predictor on the original frames).

    python -m benchmarks.lowres [--weights W ...] [--widths 16 24 32 48 64] [--stride 1] [--no-dlib]

For each held-out clip (train/video.py HELD_OUT_CLIPS) and width w, every `stride`-th frame is scaled so the
face's median landmark width is w px and centred in a 320x240 canvas; the teacher's landmarks go through
the same transform. shtrack runs as a tracker over the frame sequence (detector, landmark-driven crops, each
smoothing mode of --smoothing for the first model); dlib runs its own pipeline (HOG detector with 2x upsampling + predictor) per frame;
MediaPipe FaceMesh runs in tracking mode per clip in its own environment (benchmarks/peers.py), its 468 points
mapped to the 68 by benchmarks/mediapipe_68.json (the mapping's own cost at full resolution is reported too).
Reports found rate, NME (inter-ocular), FR@0.08, AUC@0.08, jitter (mean frame-to-frame change of the
error vector / inter-ocular; against the teacher as labelled, and against the teacher's trend, see
`reference_trend`) and lag (frames by which predictions trail the reference), and writes benchmarks/results/lowres.json, nme_vs_face_size.png, ced.png.
Teacher labels are made on first use into benchmarks/cache/labels (needs the `[peers]` extra).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from train import metrics
from train.readers import read_300vw_clip
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
    """([(frame BGR, teacher xy)] for every `stride`-th labelled frame, frames per second of that sequence)."""
    from tracker.sources import open_source

    annotated = read_300vw_clip(labels / clip / "annot")
    video = next(videos.glob(f"{clip}.*"))
    items = []
    with open_source(str(video)) as source:     # the tracker's reader: rotation and damaged packets handled
        for frame in source:
            if (frame.index - 1) % stride == 0 and frame.index in annotated:
                items.append((frame.image, annotated[frame.index]))
        fps = (source.fps or 25.0) / stride
    return items, fps


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


def run_shtrack(frames, weights, smooth: str, min_face: float, fps: float):
    from tracker.pipeline import track
    from tracker.sources import frames_from_arrays

    """-> (predictions, smoothing ms per face-frame)."""
    preds, smooth_ms, faces = [], 0.0, 0
    # "live": the clip fed as a live stream, so the tracker's default for live sources applies.
    live = smooth == "live"
    stream = frames_from_arrays([f for f, _ in frames], fps, live=live)
    smooth = "auto" if live else smooth
    for result, (_, gt) in zip(track(stream, weights=weights, backend="onnxruntime", threads=2, smooth=smooth,
                                     min_face=min_face, detect_every=10), frames):
        preds.append(pick(result.faces.xy, result.faces.success, gt))
        smooth_ms += result.timings.get("smooth", 0.0)
        faces += len(result.faces)
    return preds, smooth_ms / max(faces, 1)


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


def score(clips: list[tuple[list, list]]) -> dict:
    """Found rate, NME, FR/AUC@0.08, jitter and lag over clips, each (predictions or None, reference)."""
    found, errs, jitter, jitter_trend = [], [], [], []
    for preds, gts in clips:
        found += [p is not None for p in preds]
        for p, g in zip(preds, gts):
            if p is not None:
                errs.append(np.linalg.norm(p - g, axis=-1).mean() / np.linalg.norm(g[36] - g[45]))
        jitter += _jitter(preds, gts)
        jitter_trend += _jitter(preds, reference_trend(gts))
    s = metrics.summary(np.array(errs), 0.08)
    return {"found": float(np.mean(found)), "nme": s["nme"], "fr@0.08": s["fr@0.08"], "auc@0.08": s["auc@0.08"],
            "jitter": float(np.mean(jitter)) if jitter else float("nan"),
            "jitter_trend": float(np.mean(jitter_trend)) if jitter_trend else float("nan"),
            "lag": lag(clips), "errors": [float(e) for e in errs]}


def reference_trend(gts: list) -> list:
    """The reference with its own frame-to-frame noise taken out: a Savitzky-Golay fit (order 2) over 7 frames.
    dlib's landmarks change from frame to frame about as much as shtrack's do (benchmarks.fit_smoothing prints the
    teacher against its own trend), and the unsmoothed tracker follows much of that change, so against the raw
    teacher smoothing shows as *more* jitter; against the trend, the tracker's own unsteadiness shows."""
    from scipy.signal import savgol_filter

    if len(gts) < 7:
        return list(gts)
    return list(savgol_filter(np.stack(gts), 7, 2, axis=0))


def _jitter(preds: list, refs: list) -> list[float]:
    """Per frame pair: change of the error vector / inter-ocular. Zero for a tracker that follows the reference's
    motion exactly whatever its bias; noise and lag both raise it."""
    out, prev = [], None
    for p, g in zip(preds, refs):
        if p is None:
            prev = None
            continue
        vec = (p - g) / np.linalg.norm(g[36] - g[45])
        if prev is not None:
            out.append(float(np.linalg.norm(vec - prev, axis=-1).mean()))
        prev = vec
    return out


def lag(clips: list[tuple[list, list]], shifts: int = 4) -> float:
    """Frames by which the predictions trail the reference: the shift s minimising the mean error of
    prediction t + s against reference t (pooled over clips), refined between frames by a parabola through
    the best shift and its neighbours. 0 for a tracker without lag; positive when it trails."""
    errors = []
    for s in range(-shifts, shifts + 1):
        total, count = 0.0, 0
        for preds, gts in clips:
            for t in range(max(0, -s), min(len(gts), len(preds) - s)):
                p, g = preds[t + s], gts[t]
                if p is not None:
                    total += np.linalg.norm(p - g, axis=-1).mean() / np.linalg.norm(g[36] - g[45])
                    count += 1
        errors.append(total / count if count else np.inf)
    errors = np.array(errors)
    k = int(np.argmin(errors))
    if not np.isfinite(errors[k]):
        return float("nan")
    offset = 0.0
    if 0 < k < len(errors) - 1:
        a, b, c = errors[k - 1], errors[k], errors[k + 1]
        curvature = a - 2 * b + c
        offset = 0.5 * (a - c) / curvature if curvature > 0 else 0.0
    return float(k - shifts + offset)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--videos", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/data/videos")
    p.add_argument("--weights", nargs="+", default=["default"],
                   help="NAME=PATH pairs or 'default' (the bundled models: shtrack = cpu-rt, shtrack-fast = cpu-fast, "
                        "and their -int8 exports)")
    p.add_argument("--widths", nargs="+", type=float, default=[16, 24, 32, 48, 64])
    p.add_argument("--clips", nargs="+", default=list(HELD_OUT_CLIPS))
    p.add_argument("--stride", type=int, default=1, help="every N-th frame (smoothing and lag are measured at 1)")
    p.add_argument("--no-dlib", action="store_true")
    p.add_argument("--no-mediapipe", action="store_true")
    p.add_argument("--smoothing", nargs="+", choices=["auto", "live", "none", "rts", "one-euro"],
                   default=["auto", "none", "live", "one-euro"],
                   help="smoothing modes of the first model: the first listed gives rows NAME (auto = the tracker's "
                        "default for files; live = its default for a live source, the clip fed as one), the others "
                        "NAME+MODE; other models run the first only")
    p.add_argument("--name", default="lowres")
    args = p.parse_args(argv)
    from tracker.backends import WEIGHTS

    methods = {}
    for spec in args.weights:
        name, _, path = spec.partition("=")
        if path:
            methods[name] = Path(path)
            continue
        for method, model in (("shtrack", "cpu-rt"), ("shtrack-fast", "cpu-fast"), ("shtrack-int8", "cpu-rt-int8"),
                              ("shtrack-fast-int8", "cpu-fast-int8")):
            if WEIGHTS[model].file.exists():
                methods[method] = WEIGHTS[model].file
    labels = teacher_labels(args.videos, args.clips)
    loaded = {c: load_clip(args.videos, labels, c, args.stride) for c in args.clips}
    clips = {c: items for c, (items, _) in loaded.items()}
    fps = {c: rate for c, (_, rate) in loaded.items()}
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
        per_method: dict[str, list[tuple[list, list]]] = {}
        smooth_ms: dict[str, list[tuple[float, int]]] = {}
        scaled = {clip: shrink(items, width) for clip, items in clips.items()}
        mesh = run_mediapipe(scaled, mapping) if mapping is not None else {}
        for clip, frames in scaled.items():
            gts = [g for _, g in frames]
            runs = {}
            for k, (name, path) in enumerate(methods.items()):
                # Smoothing modes for the first model only: what smoothing does barely depends on the model.
                for smooth in args.smoothing if k == 0 else args.smoothing[:1]:
                    runs[name if smooth == args.smoothing[0] else f"{name}+{smooth}"] = run_shtrack(
                        frames, path, smooth, 0.75 * width, fps[clip])
            if teacher is not None:
                runs["dlib"] = run_dlib(frames, teacher)
            if clip in mesh:
                runs["mediapipe"] = mesh[clip]
            for name, preds in runs.items():
                if isinstance(preds, tuple):     # shtrack: (predictions, smoothing ms per face-frame)
                    preds, ms = preds
                    smooth_ms.setdefault(name, []).append((ms, len(preds)))
                per_method.setdefault(name, []).append((preds, gts))
        results[str(int(width))] = {name: score(sequences) for name, sequences in per_method.items()}
        for name, costs in smooth_ms.items():
            results[str(int(width))][name]["smooth_ms_per_face"] = sum(m * n for m, n in costs) / sum(n for _, n in costs)
    rows = []
    for width, per in results.items():
        for name, s in per.items():
            rows.append([f"{width}px", name, pct(s['found'], 1), pct(s['nme']), pct(s['fr@0.08'], 1),
                         f"{s['auc@0.08']:.3f}", f"{s['jitter']:.4f}", f"{s['jitter_trend']:.4f}", f"{s['lag']:+.2f}"])
    console.print(table(f"held-out clips {', '.join(args.clips)} (every {args.stride}. frame), vs dlib teacher",
                        ["width", "method", "found", "NME", "FR@0.08", "AUC@0.08", "jitter", "jitter (trend)", "lag (frames)"], rows))
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
