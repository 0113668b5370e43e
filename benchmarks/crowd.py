"""Surveillance-like scenes with exact ground truth: many small faces, face-free backgrounds, end-to-end runs.

    python -m benchmarks.crowd [--models cpu-rt cpu-fast-int8] [--frames 125] [--no-street]
    python -m benchmarks.crowd --fit          # the tracker's face/background thresholds (training split only)

Scenes are made by the project: **held-out** 300W faces (train/data.py's split, never trained on) pasted with
soft elliptical head masks (face, hair and a little of the photo's own background) onto a mosaic of
face-free photos from scikit-image (coffee, rocket, brick, grass, ...), the mosaic
panned ~0.5 px per frame, each face moving on its own lane, some entering or leaving across the frame edge,
encoded with libx264 (CRF 23). The ground truth is the 68 labelled points moved with the face. A face counts
only while its landmark box is wholly inside the frame; a box on a face partly outside is neither a hit nor a
false face.

Each clip runs through the real command, `shtrack --source clip.mp4 --csv out.csv --quiet` in a subprocess,
timed from start to exit (model loading included). Scores per frame, one-to-one matching (Hungarian on the
box-centre distance; a match needs the centres within half the face width): recall by face width, false faces
per frame, NME (inter-ocular, outer eye corners), FR@0.08, id switches per 1,000 matched face-frames, jitter and lag
(benchmarks.lowres's definitions, against the exact truth; `--smoothing` adds runs per smoothing mode). The real
`street_1080p.mp4` (no ground truth) gets faces per frame, distinct ids and FPS, plus annotated frames as PNG to
look at. Writes benchmarks/results/crowd.json and crowd.png.

`--fit` builds scenes from *training-split* faces over *other* photos, runs the detector on every 5th frame
and the landmark model on each detection, labels each as face or background, and prints the score
distributions and the thresholds the tracker uses (TrackerOptions.min_detector_score, confirm_confidence).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sht_model.geometry import landmark_box
from train import metrics
from train.data import split_records
from train.readers import read_300w

from .common import RESULTS, console, save, table, time_call

CACHE = Path(__file__).resolve().parent / "cache" / "crowd"
DATA = Path("../shared/data")
TEST_BACKGROUNDS = ("coffee", "rocket", "brick", "grass", "gravel", "text", "hubble_deep_field",
                    "immunohistochemistry", "retina")
FIT_BACKGROUNDS = ("clock", "page", "coins", "moon", "cell")
SIZE_BINS = ((14, 20), (20, 32), (32, 65))


@dataclass(frozen=True)
class SceneSpec:
    name: str
    width: int
    height: int
    faces: int
    min_px: float
    max_px: float
    moving_out: float = 0.25     # share of faces that enter or leave across the frame edge


SCENES = (
    SceneSpec("640x480, 4 faces 20-40 px", 640, 480, 4, 20, 40),
    SceneSpec("1280x720, 12 faces 18-32 px", 1280, 720, 12, 18, 32),
    SceneSpec("1920x1080, 16 faces 14-22 px", 1920, 1080, 16, 14, 22),
    SceneSpec("1920x1080, 10 faces 32-64 px", 1920, 1080, 10, 32, 64),
    SceneSpec("320x240, 1 face 16-32 px", 320, 240, 1, 16, 32, moving_out=0.0),
)


def _backgrounds(names) -> list[np.ndarray]:
    import skimage.data

    out = []
    for name in names:
        image = getattr(skimage.data, name)()
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image[..., :3][..., ::-1]
        out.append(np.ascontiguousarray(image))
    return out


def _mosaic(width: int, height: int, photos: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A canvas of photos in cells of ~640x480 (each resized to cover its cell)."""
    cols, rows = max(1, round(width / 640)), max(1, round(height / 480))
    canvas = np.zeros((height, width, 3), np.uint8)
    xs, ys = np.linspace(0, width, cols + 1).astype(int), np.linspace(0, height, rows + 1).astype(int)
    for r in range(rows):
        for c in range(cols):
            w, h = xs[c + 1] - xs[c], ys[r + 1] - ys[r]
            photo = photos[rng.integers(len(photos))]
            k = max(w / photo.shape[1], h / photo.shape[0])
            big = cv2.resize(photo, (int(np.ceil(photo.shape[1] * k)), int(np.ceil(photo.shape[0] * k))),
                             interpolation=cv2.INTER_CUBIC)
            canvas[ys[r]:ys[r + 1], xs[c]:xs[c + 1]] = big[:h, :w]
    return canvas


def _face_mask(xy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Soft alpha (0-1) over the head: an ellipse around the landmark box lifted for forehead and hair,
    feathered. A face alone, cut along the jaw and brows, has no head around it, which no camera shows and
    which detectors (trained on whole heads) find harder than real faces."""
    box = landmark_box(xy)
    side = float(box[2] - box[0])
    centre = (int(round((box[0] + box[2]) / 2)), int(round((box[1] + box[3]) / 2 - 0.15 * side)))
    mask = np.zeros(shape, np.float32)
    cv2.ellipse(mask, centre, (int(0.72 * side), int(0.85 * side)), 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(mask, (0, 0), 0.08 * side)


@dataclass
class Actor:
    image: np.ndarray      # the 300W crop (BGR)
    alpha: np.ndarray      # its soft mask
    xy: np.ndarray         # its 68 points in crop pixels
    scale: float           # crop px -> frame px
    start: np.ndarray      # landmark-box centre at frame 0, frame px
    velocity: np.ndarray   # px per frame


def _actors(spec: SceneSpec, records, frames: int, rng: np.random.Generator) -> list[Actor]:
    actors = []
    lanes = rng.permutation(spec.faces)
    lane_h = spec.height / spec.faces
    chosen = rng.choice(len(records), spec.faces, replace=False)
    for k, ri in enumerate(chosen):
        record = records[ri]
        image = cv2.imread(str(record.image))
        xy = record.landmarks.astype(np.float64)
        width = rng.uniform(spec.min_px, spec.max_px)
        scale = width / (landmark_box(xy)[2] - landmark_box(xy)[0])
        y = (lanes[k] + 0.5) * lane_h if spec.faces > 1 else spec.height / 2
        margin = 1.5 * width
        if rng.random() < spec.moving_out:        # crosses the left or right edge during the clip
            speed = rng.uniform(1.0, 2.5) * rng.choice([-1, 1])
            x = rng.uniform(-margin, spec.width + margin - abs(speed) * frames) if speed > 0 else \
                rng.uniform(abs(speed) * frames - margin, spec.width + margin)
        else:                                     # stays inside, drifting slowly
            speed = rng.uniform(0.1, 0.8) * rng.choice([-1, 1])
            lo, hi = margin + max(0, -speed * frames), spec.width - margin - max(0, speed * frames)
            x = rng.uniform(lo, hi) if hi > lo else spec.width / 2
        velocity = np.array([speed, rng.uniform(-0.15, 0.15)])
        actors.append(Actor(image, _face_mask(xy, image.shape[:2]), xy, scale, np.array([x, y]), velocity))
    return actors


def _paste(frame: np.ndarray, actor: Actor, t: int) -> np.ndarray:
    """Blend the actor into frame at time t; -> its 68 points in frame px."""
    centre_crop = (landmark_box(actor.xy)[:2] + landmark_box(actor.xy)[2:]) / 2
    centre = actor.start + actor.velocity * t
    m = np.array([[actor.scale, 0, centre[0] - actor.scale * centre_crop[0]],
                  [0, actor.scale, centre[1] - actor.scale * centre_crop[1]]])
    half = int(np.ceil(actor.image.shape[0] * actor.scale))
    x0, y0 = int(centre[0]) - half, int(centre[1]) - half
    x1, y1 = x0 + 2 * half, y0 + 2 * half
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, frame.shape[1]), min(y1, frame.shape[0])
    if cx1 > cx0 and cy1 > cy0:
        local = m.copy()
        local[:, 2] -= [cx0, cy0]
        size = (cx1 - cx0, cy1 - cy0)
        face = cv2.warpAffine(actor.image, local, size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.warpAffine(actor.alpha, local, size, flags=cv2.INTER_LINEAR)[..., None]
        region = frame[cy0:cy1, cx0:cx1].astype(np.float32)
        frame[cy0:cy1, cx0:cx1] = (alpha * face + (1 - alpha) * region + 0.5).astype(np.uint8)
    return actor.xy @ m[:, :2].T + m[:, 2]


def make_scene(spec: SceneSpec, records, photos, frames: int, seed: int, path: Path,
               degraded: bool = False) -> np.ndarray:
    """Write the clip to `path` (H.264 CRF 23; `degraded`: sensor noise sigma 2 on every frame and CRF 28, the
    accuracy issue's surveillance protocol) -> ground truth (frames, faces, 68, 2) in frame px."""
    import av

    rng = np.random.default_rng(seed)
    noise_rng = np.random.default_rng(seed + 1)
    pan = 0.5 * frames + 8
    canvas = _mosaic(spec.width + int(pan) + 2, spec.height + 2, photos, rng)
    actors = _actors(spec, records, frames, rng)
    truth = np.zeros((frames, len(actors), 68, 2), np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "28" if degraded else "23",
                                                                   "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        for t in range(frames):
            shift = np.array([[1, 0, -0.5 * t], [0, 1, 0]])
            frame = cv2.warpAffine(canvas, shift, (spec.width, spec.height), flags=cv2.INTER_LINEAR)
            for k, actor in enumerate(actors):
                truth[t, k] = _paste(frame, actor, t)
            if degraded:
                frame = np.clip(frame + noise_rng.normal(0, 2.0, frame.shape), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return truth


def _inside(truth: np.ndarray, width: int, height: int) -> np.ndarray:
    box = landmark_box(truth)
    return (box[..., 0] >= 0) & (box[..., 1] >= 0) & (box[..., 2] < width) & (box[..., 3] < height)


def read_csv(path: Path, frames: int):
    """shtrack CSV -> per frame a list of (face_id, xy (68, 2), box (4,)) for success=1 rows."""
    per_frame = [[] for _ in range(frames)]
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["success"] != "1":
                continue
            xy = np.array([[float(row[f"x_{i}"]), float(row[f"y_{i}"])] for i in range(68)])
            box = np.array([float(row[k]) for k in ("box_x0", "box_y0", "box_x1", "box_y1")])
            per_frame[int(row["frame"]) - 1].append((int(row["face_id"]), xy, box))
    return per_frame


def score(truth: np.ndarray, predictions, width: int, height: int) -> dict:
    from scipy.optimize import linear_sum_assignment

    frames, faces = truth.shape[:2]
    inside = _inside(truth, width, height)
    gt_box = landmark_box(truth)
    gt_w = gt_box[..., 2] - gt_box[..., 0]
    gt_c = (gt_box[..., :2] + gt_box[..., 2:]) / 2
    hits = np.zeros((frames, faces), bool)
    errors, false_faces, switches, matched_frames = [], 0, 0, 0
    last_id = {}
    tracked = [[None] * frames for _ in range(faces)]      # per face: its matched landmarks per frame
    for t in range(frames):
        preds = predictions[t]
        if not preds:
            continue
        centres = np.array([(p[2][:2] + p[2][2:]) / 2 for p in preds])
        dist = np.linalg.norm(gt_c[t][:, None] - centres[None], axis=-1) / gt_w[t][:, None]
        rows, cols = linear_sum_assignment(np.where(dist < 0.5, dist, 1e6))
        used = set()
        for r, c in zip(rows, cols):
            if dist[r, c] >= 0.5:
                continue
            used.add(c)
            if not inside[t, r]:
                continue                      # a face partly outside: neither hit nor false face
            hits[t, r] = True
            matched_frames += 1
            errors.append(float(metrics.nme(preds[c][1][None], truth[t, r][None])[0]))
            tracked[r][t] = preds[c][1]
            face_id = preds[c][0]
            if r in last_id and last_id[r] != face_id:
                switches += 1
            last_id[r] = face_id
        for c in range(len(preds)):
            if c in used:
                continue
            # Unmatched box on a face partly outside the frame (or beside its centre): not a false face.
            near = np.linalg.norm(gt_c[t] - centres[c], axis=-1) < gt_w[t]
            false_faces += not near[~inside[t]].any() if (~inside[t]).any() else 1
    errors = np.asarray(errors)
    recall = {}
    for lo, hi in SIZE_BINS:
        sel = inside & (gt_w >= lo) & (gt_w < hi)
        if sel.any():
            recall[f"{lo}-{hi - 1 if hi == 65 else hi} px"] = float(hits[sel].mean())
    return {"recall": float(hits[inside].mean()) if inside.any() else float("nan"), "recall_by_width": recall,
            "false_per_frame": false_faces / frames, "nme": float(errors.mean()) if len(errors) else float("nan"),
            "fr_008": float((errors > 0.08).mean()) if len(errors) else float("nan"),
            "id_switches_per_1000": 1000.0 * switches / max(matched_frames, 1), "face_frames": int(inside.sum()),
            **_steadiness(tracked, truth)}


def _steadiness(tracked: list, truth: np.ndarray) -> dict:
    """Jitter and lag against the exact ground truth (benchmarks.lowres's definitions: the reference here has
    no noise of its own, so jitter is the tracker's alone)."""
    from .lowres import _jitter, lag

    sequences = [(preds, list(truth[:, r])) for r, preds in enumerate(tracked)]
    jitter = [j for preds, gts in sequences for j in _jitter(preds, gts)]
    return {"jitter": float(np.mean(jitter)) if jitter else float("nan"), "lag": lag(sequences)}


def run_shtrack(video: Path, model: str, csv_path: Path, extra: list[str] = (), exe: str | None = None) -> float:
    """Wall seconds of the whole `shtrack` process (imports and model loading included). model "default": no
    --model flag (each version's own default). exe: another installed version's `shtrack` (--versus)."""
    program = [exe] if exe else [sys.executable, "-m", "tracker.cli"]
    cmd = [*program, "--source", str(video), "--csv", str(csv_path), "--quiet",
           *([] if model == "default" else ["--model", model]), "--backend", "onnxruntime", *extra]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def scenes(frames: int, records, degraded: bool = False) -> list[tuple[SceneSpec, Path, np.ndarray]]:
    photos = _backgrounds(TEST_BACKGROUNDS)
    out = []
    for i, spec in enumerate(SCENES):
        stem = spec.name.split(",")[0] + f"_{spec.faces}f_{int(spec.min_px)}-{int(spec.max_px)}_{frames}" + \
            ("_noise2_crf28" if degraded else "")
        video, gt = CACHE / f"{stem}.mp4", CACHE / f"{stem}.npy"
        if not (video.exists() and gt.exists()):
            np.save(gt, make_scene(spec, records, photos, frames, seed=100 + i, path=video, degraded=degraded))
        out.append((spec, video, np.load(gt)))
    return out


def street(model: str, out_dir: Path, extra: list[str] = ()) -> dict:
    video = DATA / "videos_multi" / "street_1080p.mp4"
    csv_path, annotated = out_dir / f"street_{model}.csv", out_dir / f"street_{model}.mp4"
    wall = run_shtrack(video, model, csv_path, ["--save-video", str(annotated), *extra])
    rows = list(csv.DictReader(open(csv_path)))
    frames = max(int(r["frame"]) for r in rows)
    good = [r for r in rows if r["success"] == "1"]
    ids = {r["face_id"] for r in good}
    _save_frames(annotated, out_dir, f"street_{model}", (1, 50, 100))
    return {"frames": frames, "faces_per_frame": len(good) / frames, "distinct_ids": len(ids),
            "fps_with_video_sink": frames / wall}


def _save_frames(video: Path, out_dir: Path, stem: str, numbers) -> None:
    from tracker.sources import open_source

    with open_source(str(video)) as source:
        for frame in source:
            if frame.index in numbers:
                cv2.imwrite(str(out_dir / f"{stem}_{frame.index:03d}.png"), frame.image)


def fit(frames: int) -> dict:
    """Detector score and landmark confidence of every detection on training-split scenes, face or not."""
    from tracker.backends import load_backend
    from tracker.crop import crop_faces
    from tracker.detector import load_detector
    from tracker.scan import Scanner
    from sht_model.heatmap import decode

    train, _ = split_records(read_300w(DATA / "300w_train"))
    photos = _backgrounds(FIT_BACKGROUNDS)
    backend = load_backend(None, "onnxruntime")
    detector = load_detector("yunet")
    detector.score_threshold = 0.3
    samples = []
    for i, spec in enumerate(SCENES[:4]):
        video = CACHE / f"fit_{i}.mp4"
        truth = make_scene(spec, train, photos, frames, seed=500 + i, path=video)
        scanner = Scanner(detector, 14.0)
        inside = _inside(truth, spec.width, spec.height)
        from tracker.sources import open_source

        with open_source(str(video)) as src:
            for frame in src:
                t = frame.index - 1
                if t % 5:
                    continue
                boxes = scanner.full(frame.image)
                if not len(boxes):
                    continue
                batch, _ = crop_faces(frame.image, boxes[:, :4], backend.cfg)
                _, confidence = decode(backend.infer(batch)[0], backend.cfg.heatmap_sigma)
                gt = landmark_box(truth[t])
                gt_c, gt_w = (gt[:, :2] + gt[:, 2:]) / 2, gt[:, 2] - gt[:, 0]
                for box, conf in zip(boxes, confidence.mean(1)):
                    d = np.linalg.norm(gt_c - (box[:2] + box[2:4]) / 2, axis=1) / gt_w
                    k = int(d.argmin())
                    if d[k] < 0.5 and not inside[t, k]:
                        continue
                    samples.append((float(box[4]), float(conf), bool(d[k] < 0.5), float(gt_w[k])))
    s = np.array(samples)
    face, det, lm = s[:, 2] > 0, s[:, 0], s[:, 1]
    rows = []
    for det_t in (0.4, 0.5, 0.6, 0.7):
        for lm_t in (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65):
            keep = (det >= det_t) & (lm >= lm_t)
            rows.append([det_t, lm_t, f"{keep[face].mean():.3f}", int(keep[~face].sum())])
    console.print(table(f"fit: {int(face.sum())} face and {int((~face).sum())} background detections "
                        "(every 5th frame, full scan, detector threshold 0.3)",
                        ["detector >=", "landmarks >=", "faces kept", "background kept"], rows))
    return {"faces": int(face.sum()), "background": int((~face).sum()),
            "face_scores": {"detector_p1_p5_p50": np.percentile(det[face], [1, 5, 50]).tolist(),
                            "landmarks_p1_p5_p50": np.percentile(lm[face], [1, 5, 50]).tolist()},
            "background_scores": {"detector": det[~face].tolist(), "landmarks": lm[~face].tolist()},
            "grid": rows}


def costs(models: list[str], repeats: int = 3) -> dict:
    """What the models cost on this machine, one thread each, and the frame rate they allow per scene.

    Measured: the landmark model's ms per face at the scene's batch (all faces of a frame in one call) and YuNet's
    ms per detector pixel (a 640x640 tile). Counted: the detector pixels a frame needs with the default options
    (its share of the scan plan, tracker.scan, plus one re-check crop per face every `recheck_every` frames).
    The ceiling is 2 cores x 1000 ms over that CPU time: what a process doing nothing else (no decoding, crops,
    tracking or smoothing) with perfect use of both cores could reach. Best of `repeats` p50s, as the VM drifts."""
    from tracker.backends import WEIGHTS, load_backend
    from tracker.detector import load_detector
    from tracker.options import TrackerOptions
    from tracker.scan import RECHECK_SIZE, plan_scan

    options = TrackerOptions()
    detector = load_detector("yunet", threads=1)
    tile = np.random.default_rng(0).integers(0, 256, (640, 640, 3), np.uint8)
    tile_ms = min(float(np.median(time_call(lambda: detector.detect([tile]), 3, 20))) for _ in range(repeats))
    ms_per_px = tile_ms / tile[..., 0].size
    backends = {m: load_backend(WEIGHTS[m].file, "onnxruntime", "cpu", threads=1) for m in models}
    out = {"yunet_ms_per_640_tile": tile_ms, "detect_every": options.detect_every,
           "recheck_every": options.recheck_every, "scenes": []}
    for spec in SCENES:
        plan = plan_scan(spec.width, spec.height, options.min_face, detector)
        scan_px = sum(job.pixels for job in plan) / options.detect_every
        recheck_px = spec.faces * RECHECK_SIZE ** 2 / options.recheck_every
        entry = {"scene": spec.name, "detector_px_per_frame": scan_px + recheck_px,
                 "detect_ms": (scan_px + recheck_px) * ms_per_px, "models": {}}
        for model, backend in backends.items():
            size = backend.cfg.input_size
            batch = np.random.default_rng(1).standard_normal((spec.faces, 3, size, size)).astype(np.float32)
            call_ms = min(float(np.median(time_call(lambda: backend.infer(batch), 3, 20))) for _ in range(repeats))
            cpu_ms = call_ms + entry["detect_ms"]
            entry["models"][model] = {"ms_per_face": call_ms / spec.faces, "landmarks_ms": call_ms,
                                      "cpu_ms_per_frame": cpu_ms, "ceiling_fps": 2 * 1000.0 / cpu_ms}
        out["scenes"].append(entry)
    return out


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    names = [r["scene"] for r in results["scenes"]]
    for model in results["models"]:
        recall = [r["models"][model]["recall"] for r in results["scenes"]]
        fps = [r["models"][model]["fps"] for r in results["scenes"]]
        axes[0].plot(range(len(names)), recall, "o-", label=model)
        axes[1].plot(range(len(names)), fps, "o-", label=model)
    for ax, title in zip(axes, ("recall (faces wholly in frame)", "FPS end to end (whole process)")):
        ax.set_xticks(range(len(names)), [n.replace(", ", "\n") for n in names], fontsize=7)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylim(0, 1.02)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.crowd", description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["cpu-rt", "cpu-fast-int8"],
                   help="bundled tags, or default (no --model flag: the ladder where it is bundled)")
    p.add_argument("--versus", nargs="*", default=[], metavar="LABEL=SHTRACK",
                   help="another installed version's shtrack executable (e.g. v0.2.0=../venv-v020/bin/shtrack), run "
                        "with its default model on every scene, alternating with --models over --rounds; reports "
                        "each model's FPS ratio to it (this machine's speed drifts: only same-run ratios count)")
    p.add_argument("--rounds", type=int, default=1, help="timed runs per model and scene (the median counts)")
    p.add_argument("--degraded", action="store_true",
                   help="scenes with sensor noise (sigma 2) and H.264 CRF 28 (the accuracy issue's protocol)")
    p.add_argument("--frames", type=int, default=125)
    p.add_argument("--no-street", action="store_true")
    p.add_argument("--detector", default="yunet", help="the tracker's --detector (yunet or haar)")
    p.add_argument("--name", default="crowd", help="results file name (benchmarks/results/NAME.json, NAME.png)")
    p.add_argument("--fit", action="store_true")
    p.add_argument("--costs", action="store_true",
                   help="only measure what the models cost per face and per detector pixel, and the frame rate "
                        "that allows per scene (benchmarks/results/crowd_costs.json; pause other work first)")
    p.add_argument("--smoothing", nargs="*", default=["none", "live", "one-euro"],
                   help="extra runs of the first model with --smooth MODE (accuracy, jitter and lag per mode; the "
                        "default runs use the tracker's default, auto = rts for files; live = the live default, rts "
                        "held back 1 frame)")
    args = p.parse_args(argv)
    if args.fit:
        save("crowd_fit", fit(args.frames))
        return 0
    if args.costs:
        result = costs(args.models)
        rows = [[e["scene"], m, f"{r['ms_per_face']:.2f}", f"{e['detector_px_per_frame'] / 1e6:.2f} M",
                 f"{r['landmarks_ms']:.0f} + {e['detect_ms']:.0f}", f"{r['ceiling_fps']:.1f}"]
                for e in result["scenes"] for m, r in e["models"].items()]
        console.print(table(f"CPU cost per frame, one thread per model (YuNet {result['yunet_ms_per_640_tile']:.1f} ms "
                            "per 640-px tile)", ["scene", "model", "ms / face", "detector px / frame",
                                                  "landmarks + detector ms", "ceiling FPS (2 cores)"], rows))
        save("crowd_costs", result)
        return 0
    _, held_out = split_records(read_300w(DATA / "300w_train"))
    out_dir = CACHE / "runs"
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {"models": args.models, "detector": args.detector, "frames": args.frames, "scenes": [], "street": {}}
    extra = ["--detector", args.detector]
    versus = dict(v.split("=", 1) for v in args.versus)
    runs = [(m, m, None) for m in args.models] + [(label, "default", exe) for label, exe in versus.items()]
    results["degraded"] = args.degraded
    for spec, video, truth in scenes(args.frames, held_out, args.degraded):
        entry = {"scene": spec.name, "models": {}}
        walls = {label: [] for label, _, _ in runs}
        for _ in range(args.rounds):        # alternating: drift of the machine's speed hits every label alike
            for label, model, exe in runs:
                csv_path = out_dir / f"{video.stem}_{label}_{args.detector}.csv"
                walls[label].append(run_shtrack(video, model, csv_path, extra, exe))
        for label, _, _ in runs:
            csv_path = out_dir / f"{video.stem}_{label}_{args.detector}.csv"
            wall = float(np.median(walls[label]))
            scores = score(truth, read_csv(csv_path, len(truth)), spec.width, spec.height)
            entry["models"][label] = {**scores, "fps": len(truth) / wall, "wall_s": wall, "walls": walls[label]}
        for label in versus:
            for model in args.models:
                entry["models"][model][f"speed_vs_{label}"] = entry["models"][model]["fps"] / entry["models"][label]["fps"]
        entry["smoothing"] = {}
        for mode in args.smoothing:
            csv_path = out_dir / f"{video.stem}_{args.models[0]}_{args.detector}_{mode}.csv"
            flags = ["--smooth", "rts", "--smooth-lag", "1"] if mode == "live" else ["--smooth", mode]
            wall = run_shtrack(video, args.models[0], csv_path, [*extra, *flags])
            scores = score(truth, read_csv(csv_path, len(truth)), spec.width, spec.height)
            entry["smoothing"][mode] = {**scores, "fps": len(truth) / wall}
        results["scenes"].append(entry)
        console.print(json.dumps(entry, indent=1))
    results["versus"] = versus
    if not args.no_street:
        for model in args.models:
            results["street"][model] = street(model, out_dir, extra)
    rows = []
    for entry in results["scenes"]:
        for model, r in entry["models"].items():
            ratios = " ".join(f"{r[f'speed_vs_{v}']:.2f}x" for v in versus if f"speed_vs_{v}" in r)
            rows.append([entry["scene"], model, f"{r['recall']:.3f}",
                         " / ".join(f"{k}: {v:.3f}" for k, v in r["recall_by_width"].items()),
                         f"{r['false_per_frame']:.3f}", f"{r['nme']:.2%}", f"{r['fr_008']:.1%}",
                         f"{r['id_switches_per_1000']:.1f}", f"{r['fps']:.1f}", ratios])
    console.print(table(f"crowd scenes (held-out 300W faces, default flags, detector {args.detector})",
                        ["scene", "model", "recall", "recall by width", "false/frame", "NME", "FR@0.08",
                         "id sw./1k", "FPS e2e", "speed vs " + ",".join(versus) if versus else ""], rows))
    rows = []
    for entry in results["scenes"]:
        modes = {"rts (default)": entry["models"][args.models[0]], **entry["smoothing"]}
        for mode, r in modes.items():
            rows.append([entry["scene"], mode, f"{r['nme']:.2%}", f"{r['jitter']:.4f}", f"{r['lag']:+.2f}"])
    console.print(table(f"smoothing modes, {args.models[0]}, against the exact ground truth",
                        ["scene", "mode", "NME", "jitter", "lag"], rows))
    for model, r in results["street"].items():
        console.print(f"street_1080p {model}: {r}")
    save(args.name, results)
    plot(results, RESULTS / f"{args.name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
