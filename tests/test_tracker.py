"""tracker: sources, crop inversion, CSV layout, ids, smoothing, CLI."""

from __future__ import annotations

import csv
import functools
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from sht_model import geometry
from sht_model.config import get_config
from sht_model.heatmap import to_heatmap_coords
from tests.conftest import REPO, run_main, shared, write_video
from tracker import sinks
from tracker.crop import crop_faces, landmarks_to_source
from tracker.pipeline import FaceTracker, TrackerOptions, track
from tracker.sources import SourceError, frames_from_arrays, open_source
from tracker.types import Faces, Frame, FrameResult
from tests.conftest import astronaut_scene  # noqa: F401  (used below)


def test_video_file_source_keeps_stream_timestamps(tmp_path):
    clip = write_video(tmp_path / "c.mp4", astronaut_scene(6, lambda i: [(160, 120)], 40), fps=10)
    with open_source(str(clip)) as src:
        frames = list(src)
    assert [f.index for f in frames] == [1, 2, 3, 4, 5, 6]
    assert np.allclose([f.timestamp for f in frames], np.arange(6) / 10, atol=1e-3)
    assert frames[0].image.shape == (240, 320, 3)


def test_demo_source_is_bundled():
    with open_source("demo") as src:
        first = next(iter(src))
    assert first.image.shape == (240, 320, 3) and src.total == 100


def test_image_folder_source(tmp_path):
    for i, img in enumerate(astronaut_scene(3, lambda i: [(160, 120)], 40)):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), img)
    (tmp_path / "notes.txt").write_text("not an image")
    with open_source(str(tmp_path)) as src:
        assert len(list(src)) == 3


def test_http_url_source(tmp_path):
    """A real HTTP stream from a server on loopback."""
    import functools
    import http.server
    import threading

    write_video(tmp_path / "c.mp4", astronaut_scene(5, lambda i: [(160, 120)], 40))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with open_source(f"http://127.0.0.1:{server.server_address[1]}/c.mp4") as src:
            frames = list(src)
        assert len(frames) == 5 and src.live
    finally:
        server.shutdown()


def test_url_that_refuses_is_a_one_line_error():
    with pytest.raises(SourceError, match="rtsp://127.0.0.1:9/"):
        open_source("rtsp://127.0.0.1:9/stream", read_timeout=2.0)


def test_missing_webcam_is_a_clear_error():
    with pytest.raises(SourceError, match="webcam 97"):
        open_source("97")


def test_webcam_with_fake_capture(tmp_path, monkeypatch):
    """A fake capture device: the platform capture format is swapped for a file the test made."""
    import tracker.sources as sources

    clip = write_video(tmp_path / "cam.mp4", astronaut_scene(5, lambda i: [(160, 120)], 40))
    monkeypatch.setattr(sources, "_camera_format", lambda: (None, lambda i: str(clip)))
    with open_source("webcam") as src:
        assert src.live and src.total is None and src.name == "webcam:0"
        frames = list(src)
    assert len(frames) == 5


def test_not_a_video_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(SourceError, match="x.mp4"):
        with open_source(str(bad)) as src:
            list(src)


# ---------------------------------------------------------------- crop geometry

def test_inverse_crop_mapping_under_0_1_px():
    cfg = get_config("cpu-rt")
    rng = np.random.default_rng(1)
    for _ in range(20):
        box = np.array([*rng.uniform(0, 400, 2), 0, 0])
        box[2:] = box[:2] + rng.uniform(10, 200)
        pts = rng.uniform(box[:2], box[2:], (1, 68, 2))
        m = geometry.crop_matrix(box, cfg.input_size)
        in_crop = geometry.apply(m, pts[0])
        hm = to_heatmap_coords(in_crop, cfg.input_size, cfg.feature_size)
        back = landmarks_to_source(hm[None], m[None], cfg)
        assert np.abs(back - pts).max() < 0.1


def test_crop_puts_box_centre_at_crop_centre():
    cfg = get_config("test")
    image = np.zeros((100, 100, 3), np.uint8)
    image[48:53, 48:53] = 255
    batch, _ = crop_faces(image, np.array([[30.0, 30.0, 70.0, 70.0]]), cfg)
    bright = batch[0, 0] > 0
    ys, xs = np.nonzero(bright)
    assert abs(xs.mean() - 31.5) < 1.5 and abs(ys.mean() - 31.5) < 1.5



def test_crop_normalises_as_training_does():
    """The tracker's input batch is the training sample's tensor of the same crop: RGB order, per-channel mean
    and std (uneven here, so a swapped channel shows)."""
    from train.data import to_tensor

    cfg = get_config("test", mean=(0.2, 0.4, 0.6), std=(0.3, 0.5, 0.7))
    image = np.random.default_rng(5).integers(0, 256, (90, 120, 3), np.uint8)     # BGR
    box = np.array([[20.0, 15.0, 70.0, 65.0]])
    batch, matrices = crop_faces(image, box, cfg)
    crop = geometry.warp(image, matrices[0], cfg.input_size)[..., ::-1]             # RGB, as training reads
    np.testing.assert_allclose(batch[0], to_tensor(crop, cfg).numpy(), atol=1e-5)

# ---------------------------------------------------------------- sinks

def _result(index: int, n: int) -> FrameResult:
    rng = np.random.default_rng(index)
    faces = Faces(rng.uniform(0, 100, (n, 68, 2)), rng.uniform(0, 1, (n, 68)), np.tile([1, 2, 30, 40], (n, 1)),
                  np.arange(n), np.ones(n, bool))
    return FrameResult(Frame(index, (index - 1) / 25, np.zeros((8, 8, 3), np.uint8)), faces)


def test_csv_layout_matches_openface(tmp_path):
    path = tmp_path / "o.csv"
    with sinks.CsvSink(path) as sink:
        sink.append(_result(1, 2))
        sink.append(_result(2, 0))
    rows = list(csv.reader(path.open()))
    header = rows[0]
    assert header[:5] == ["frame", "face_id", "timestamp", "confidence", "success"]
    assert header[5:11] == ["pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz"]    # OpenFace's order
    assert header[11:79] == [f"x_{i}" for i in range(68)] and header[79:147] == [f"y_{i}" for i in range(68)]
    assert header[147:] == ["box_x0", "box_y0", "box_x1", "box_y1", "model"]
    assert len(rows) == 4 and rows[1][0] == "1" and rows[3][:2] == ["2", "-1"] and rows[3][4] == "0"
    assert all(len(v.split(".")[1]) == 3 for v in rows[1][11:147])
    assert all(len(r) == len(header) for r in rows)
    assert not (tmp_path / "o.csv.partial").exists()


def test_csv_is_flushed_per_frame_under_partial_name(tmp_path):
    path = tmp_path / "o.csv"
    sink = sinks.CsvSink(path).__enter__()
    sink.append(_result(1, 1))
    partial = tmp_path / "o.csv.partial"
    assert partial.exists() and len(partial.read_text().splitlines()) == 2
    sink.__exit__(None, None, None)
    assert path.exists() and not partial.exists()


def test_jsonl_has_per_landmark_confidence(tmp_path):
    path = tmp_path / "o.jsonl"
    with sinks.JsonlSink(path) as sink:
        sink.append(_result(1, 2))
    record = json.loads(path.read_text().splitlines()[0])
    assert len(record["faces"]) == 2 and len(record["faces"][0]["landmark_confidence"]) == 68


# ---------------------------------------------------------------- tracking with the bundled model

def test_face_ids_stable_on_two_face_clip(bundled_weights):
    frames = astronaut_scene(30, lambda i: [(80 + i, 120), (240 - i, 120)], 48)
    ids_left, ids_right = set(), set()
    for result in track(frames_from_arrays(frames), weights=bundled_weights, backend="onnxruntime",
                        min_face=24, detect_every=5):
        faces = result.faces
        for i in range(len(faces)):
            if not faces.success[i]:
                continue
            cx = faces.boxes[i, [0, 2]].mean()
            (ids_left if cx < 160 else ids_right).add(int(faces.face_id[i]))
    assert len(ids_left) == 1 and len(ids_right) == 1 and ids_left != ids_right


def _still_face_motion(frames, live: bool = False, **options) -> float:
    """Mean landmark movement (px per frame) of the one face in `frames`, after its first 5 frames."""
    xs = [r.faces.xy[0] for r in track(frames_from_arrays(frames, 30.0, live=live), backend="onnxruntime",
                                       min_face=24, **options) if len(r.faces) and r.faces.success[0]]
    assert len(xs) > 30
    return float(np.linalg.norm(np.diff(np.stack(xs[5:]), axis=0), axis=-1).mean())


# Three noise draws of 40 frames: one draw is too few for a bound this close (the live default gave 0.046-0.051
# px over seeds 1-3 on 2026-11-26, mean 0.049), so one seed passed or failed by luck.
STILL_FACE_SEEDS = (1, 2, 3)


@functools.cache
def _still_face_frames(seed: int) -> tuple:
    return tuple(astronaut_scene(40, lambda i: [(160, 120)], 32, jitter=4.0, seed=seed))


@functools.cache
def _still_face_motion_unsmoothed(seed: int) -> float:
    return _still_face_motion(list(_still_face_frames(seed)), smooth="none")


@pytest.mark.parametrize("mode, live", [("auto", False), ("auto", True), ("one-euro", True)])
def test_still_face_landmarks_move_under_a_twentieth_of_a_pixel_per_frame(bundled_weights, mode, live):
    """One frame repeated with sensor-like noise (sd 4 grey levels), face 32 px wide, mean over three noise draws:
    the unsmoothed landmarks move ~0.09 px a frame; the defaults for files and live sources, and One Euro, keep
    them under 0.05 px."""
    raw = np.mean([_still_face_motion_unsmoothed(seed) for seed in STILL_FACE_SEEDS])
    smoothed = np.mean([_still_face_motion(list(_still_face_frames(seed)), live=live, smooth=mode)
                        for seed in STILL_FACE_SEEDS])
    print(f"still face, px/frame: none {raw:.4f}, {mode} ({'live' if live else 'file'}) {smoothed:.4f}")
    assert raw > 0.05            # the clip is noisy enough to need smoothing
    assert smoothed < 0.05


def test_face_tracker_reports_no_face_on_empty_frames(bundled_weights):
    from tracker.backends import load_backend

    tracker = FaceTracker(load_backend(bundled_weights, "torch"), TrackerOptions())
    result = tracker.process(Frame(1, 0.0, np.full((240, 320, 3), 128, np.uint8)))
    assert len(result.faces) == 0


def test_demo_clip_gives_exactly_one_face_id_in_nearly_every_frame(bundled_weights):
    ids, found = set(), 0
    for result in track("demo", weights=bundled_weights, backend="onnxruntime"):
        faces = result.faces
        ids |= {int(i) for i in faces.face_id[faces.success]}
        found += int(faces.success.sum() == 1)
        assert faces.success.sum() <= 1, f"frame {result.frame.index}: {faces.success.sum()} faces"
    assert ids == {0}
    assert found >= 98


# ---------------------------------------------------------------- CLI

def _shtrack(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tracker.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=600)


@pytest.mark.slow
def test_cli_demo_writes_csv_and_video(tmp_path):
    proc = _shtrack("--source", "demo", "--quiet", "--csv", str(tmp_path / "d.csv"),
                    "--save-video", str(tmp_path / "d.mp4"), "--min-face", "20")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.reader((tmp_path / "d.csv").open()))
    assert {int(r[0]) for r in rows[1:]} == set(range(1, 101))
    with open_source(str(tmp_path / "d.mp4")) as src:
        assert len(list(src)) == 100


@pytest.mark.slow
def test_cli_save_faces_writes_hallucinated_faces(tmp_path):
    """--save-faces is the one path that loads the graph with the face output (the default graph has none)."""
    proc = _shtrack("--source", "demo", "--quiet", "--csv", str(tmp_path / "d.csv"), "--min-face", "20",
                    "--save-faces", str(tmp_path / "faces"), "--save-faces-every", "25")
    assert proc.returncode == 0, proc.stderr
    pngs = sorted((tmp_path / "faces").glob("face_*/*.png"))
    assert {p.name for p in pngs} == {"000001.png", "000026.png", "000051.png", "000076.png"}
    face = cv2.imread(str(pngs[0]))
    assert face.shape == (64, 64, 3) and face.std() > 10     # cpu-rt: a 64x64 face, not a blank image


def test_package_metadata_declares_the_bundled_files_licences():
    """The installed package does not read as MIT-only: its licence expression names the landmark weights'
    non-commercial terms and YuNet's Apache-2.0, and it carries both licence texts (pyproject.toml, LICENSE)."""
    from importlib.metadata import metadata

    meta = metadata("shtrack")
    terms = set(meta["License-Expression"].split(" AND "))
    assert terms == {"MIT", "Apache-2.0", "LicenseRef-shtrack-weights-non-commercial"}
    assert {"LICENSE", "tracker/assets/LICENSE.yunet"} <= set(meta.get_all("License-File"))


@pytest.mark.parametrize("name, stacks", [("cpu-rt", 2), ("cpu-fast", 1)])
def test_bundled_models_load_and_are_small(name, stacks):
    from sht_model.weights import load_model, read_extra
    from tracker.backends import WEIGHTS

    path = WEIGHTS[name].file
    assert path.stat().st_size < 20e6
    model = load_model(path)
    assert model.cfg.name == name and model.cfg.num_stacks == stacks
    assert model.cfg.fusion == "paper"          # Eq. 1-2 as written, not the v0.1 layout
    assert read_extra(path)["stage"] == "dhln"   # made by our own training command


def test_weights_table_holds_each_shipped_files_hash_and_licence():
    """One table (tracker.backends.WEIGHTS) says everything about a shipped file; a retrained file updates it."""
    from tracker.backends import WEIGHTS
    from tracker.backends.onnx_backend import sha256_of

    for tag, w in WEIGHTS.items():
        assert sha256_of(w.file) == w.sha256, f"{tag}: {w.file.name} is not the file of the table ({sha256_of(w.file)})"
        assert "non-commercial" in w.licence


def test_weights_table_names_each_files_preset_and_precision():
    """tracker.backends.WEIGHTS: every tag's file holds the preset and precision the table says."""
    import onnx

    from sht_model.config import DHLNConfig
    from sht_model.weights import load_model
    from tracker.backends import WEIGHTS

    for tag, entry in WEIGHTS.items():
        if entry.file.suffix == ".onnx":
            meta = {p.key: p.value for p in onnx.load(str(entry.file), load_external_data=False).metadata_props}
            cfg, precision = DHLNConfig.from_json(meta["shtrack_config"]), meta.get("shtrack_precision", "float32")
        else:
            cfg, precision = load_model(entry.file).cfg, "float32"
        assert (cfg.name, precision) == (entry.preset, entry.precision), tag


@pytest.mark.parametrize("name", ["cpu-rt", "cpu-fast"])
def test_bundled_int8_models_agree_with_their_float_models(name):
    """The shipped int8 exports land within a tenth of a heatmap pixel of the float models on real faces (median)."""
    from sht_model.heatmap import decode
    from tracker.backends import WEIGHTS, load_backend
    from train.data import NO_AUGMENT, LabelledFaces, split_records
    from train.readers import read_300w

    int8, fp32 = load_backend(WEIGHTS[f"{name}-int8"].file), load_backend(WEIGHTS[name].file, "onnxruntime")
    assert WEIGHTS[f"{name}-int8"].file.stat().st_size < 0.5 * WEIGHTS[name].file.stat().st_size
    _, val = split_records(read_300w(shared("300w_train")))
    ds = LabelledFaces(val[:24], fp32.cfg, aug=NO_AUGMENT, seed=3, face_width=24.0)
    x = np.stack([ds[i]["input"].numpy() for i in range(len(ds))])
    sigma = fp32.cfg.heatmap_sigma
    xy8, xy32 = decode(int8.infer(x)[0], sigma)[0], decode(fp32.infer(x)[0], sigma)[0]
    moved = np.linalg.norm(xy8 - xy32, axis=-1)
    print(f"{name}: int8 vs float landmarks, median {np.median(moved):.3f} / p95 {np.percentile(moved, 95):.3f} heatmap px")
    assert np.median(moved) < 0.08 and np.percentile(moved, 95) < 0.3   # v0.2.0's all-int8 cpu-rt: 0.12 / 0.47


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cpu-rt", "cpu-fast"])
def test_bundled_models_have_no_left_right_bias_against_the_labels(name):
    """Mirroring is not a symmetry of 300W's x labels: a model whose last fine-tune mirrored faces lands ~0.2 input
    px left of the labels on average (round 4's weights: -0.22). The shipped ones must not."""
    from sht_model.heatmap import decode, from_heatmap_coords
    from tracker.backends import WEIGHTS, load_backend
    from train.data import NO_AUGMENT, LabelledFaces, split_records
    from train.readers import read_300w

    backend = load_backend(WEIGHTS[name].file, "onnxruntime")
    _, val = split_records(read_300w(shared("300w_train")))
    ds = LabelledFaces(val[:96], backend.cfg, aug=NO_AUGMENT, seed=3, face_width=32.0)
    items = [ds[i] for i in range(len(ds))]
    xy = decode(backend.infer(np.stack([it["input"].numpy() for it in items]))[0], backend.cfg.heatmap_sigma)[0]
    pred = from_heatmap_coords(xy, backend.cfg.input_size, backend.cfg.feature_size)
    offset = (pred - np.stack([it["landmarks"].numpy() for it in items])).mean(axis=(0, 1))
    print(f"{name}: mean offset from the labels {offset.round(3)} input px")
    assert abs(offset[0]) < 0.1 and abs(offset[1]) < 0.1


@pytest.mark.slow
def test_cli_int8_model_on_torch_is_a_one_line_error():
    proc = _shtrack("--source", "demo", "--model", "cpu-fast-int8", "--backend", "torch")
    err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(err) == 1 and "onnxruntime" in err[0], proc.stderr


@pytest.mark.slow
def test_cli_model_flag_picks_bundled_weights(tmp_path):
    proc = _shtrack("--source", "demo", "--quiet", "--csv", str(tmp_path / "d.csv"), "--min-face", "20",
                    "--model", "cpu-fast")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((tmp_path / "d.csv").open()))
    assert len(rows) >= 100 and sum(r["success"] == "1" for r in rows) >= 95
    both = _shtrack("--source", "demo", "--model", "cpu-fast", "--weights", "x.safetensors")
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_cli_missing_file_exits_2_with_one_line(tmp_path):
    proc = run_main("--source", str(tmp_path / "nope.mp4"), "--csv", str(tmp_path / "x.csv"))
    assert proc.returncode == 2
    err = [ln for ln in proc.stderr.splitlines() if "error" in ln]    # INFO lines go to stderr too
    assert len(err) == 1 and "nope.mp4" in err[0] and "Traceback" not in proc.stderr


def test_cli_batch_mode_one_csv_per_video(tmp_path, tiny_weights):
    videos = tmp_path / "in"
    for name in ("a", "b"):
        write_video(videos / f"{name}.mp4", astronaut_scene(4, lambda i: [(160, 120)], 40))
    proc = run_main("--source", str(videos), "--out", str(tmp_path / "out"), "--weights", str(tiny_weights),
                    "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.csv", "a.summary.json", "b.csv",
                                                                    "b.summary.json"]


def test_cli_resume_continues_after_last_frame(tmp_path, tiny_weights):
    clip = write_video(tmp_path / "c.mp4", astronaut_scene(10, lambda i: [(160, 120)], 40))
    out = tmp_path / "o.csv"
    proc = run_main("--source", str(clip), "--csv", str(out), "--weights", str(tiny_weights), "--quiet")
    assert proc.returncode == 0, proc.stderr
    full = out.read_text().splitlines()
    # Simulate a run killed mid-row during frame 7: frames 1-6 complete, a half row after them.
    partial = out.with_name("o.csv.partial")
    cut = [ln for ln in full if ln.split(",")[0] in ("frame", "1", "2", "3", "4", "5", "6")]
    partial.write_text("\n".join(cut) + "\n" + full[-1][:40])
    out.unlink()
    proc = run_main("--source", str(clip), "--csv", str(out), "--weights", str(tiny_weights), "--quiet", "--resume")
    assert proc.returncode == 0, proc.stderr
    resumed = out.read_text().splitlines()
    # Frames 1-5 kept as they were, frame 6 (maybe incomplete) redone, then every later frame once, in order.
    # (Rows per frame after the resume may differ: the tracks there are new.)
    assert resumed[: len(cut) - sum(ln.startswith("6,") for ln in cut)] == [ln for ln in cut if not ln.startswith("6,")]
    frames = [int(ln.split(",")[0]) for ln in resumed[1:]]
    assert frames == sorted(frames) and sorted(set(frames)) == sorted({int(ln.split(",")[0]) for ln in full[1:]})


# ---------------------------------------------------------------- base install: no torch on the tracking path

@pytest.mark.slow
def test_tracking_path_never_imports_torch(tmp_path):
    code = ("import sys; from tracker.cli import main; "
            f"code = main(['--source', 'demo', '--quiet', '--csv', r'{tmp_path / 'd.csv'}']); "
            "print(code, 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.stdout.split() == ["0", "False"], proc.stdout + proc.stderr


@pytest.mark.parametrize("name", ["cpu-rt", "cpu-fast"])
def test_bundled_onnx_files_are_exports_of_the_bundled_weights(name):
    import torch

    from sht_model.weights import load_model
    from tracker.backends import WEIGHTS
    from tracker.backends.onnx_backend import OnnxBackend, onnx_for

    weights = WEIGHTS[name].file
    assert onnx_for(weights, faces=False)[0] == weights.with_suffix(".onnx"), "the shipped file, not a fresh export"
    x = np.random.default_rng(0).normal(size=(3, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = load_model(weights).eval()(torch.from_numpy(x)).heatmaps[-1].numpy()
    got, _ = OnnxBackend(weights).infer(x)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_every_shtrack_flag_has_help():
    import argparse

    from tracker.cli import build_parser

    actions = [a for a in build_parser()._actions if not isinstance(a, argparse._HelpAction)]
    assert all(a.help for a in actions), [a.dest for a in actions if not a.help]


def _gui_python():
    import os
    import shutil

    python = os.environ.get("SHTRACK_GUI_PYTHON") or str(REPO / ".venv-gui" / "bin" / "python")
    reason = "needs xvfb-run and a Python with GUI OpenCV + Pillow (.venv-gui, made by .ci/run)"
    if not Path(python).exists() or not shutil.which("xvfb-run"):
        pytest.skip(reason)
    check = "import cv2, PIL, sys; sys.exit('GUI: NONE' in ' '.join(cv2.getBuildInformation().split()))"
    if subprocess.run([python, "-c", check], capture_output=True).returncode != 0:
        pytest.skip(reason)
    return python


@pytest.mark.slow
def test_show_opens_a_window_with_landmarks_and_fps(tmp_path):
    """--show under a virtual display: the screenshot has the frame, green landmarks and the yellow FPS text."""
    import os

    from PIL import Image

    python = _gui_python()
    shot = tmp_path / "show.png"
    proc = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 900x700x24", python, str(REPO / "tests" / "show_window.py"),
                           str(shot)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    rgb = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    green = (rgb[..., 1] > 200) & (rgb[..., 0] < 80) & (rgb[..., 2] < 80)
    yellow = (rgb[..., 0] > 200) & (rgb[..., 1] > 200) & (rgb[..., 2] < 80)
    assert green.sum() > 30, "landmarks drawn"
    assert yellow.sum() > 30, "FPS text drawn"


@pytest.mark.parametrize("name", ["cpu-rt-int8", "cpu-fast-int8"])
def test_bundled_int8_files_keep_the_float_nodes_the_export_names(name):
    """The nodes sht_model.export.KEEP_FLOAT names run in float in the shipped int8 graph: float weights, and no
    QuantizeLinear between two of them (only where an int8 node reads their result); the rest is int8."""
    import onnx

    from sht_model.export import KEEP_FLOAT
    from tracker.backends import WEIGHTS

    graph = onnx.load(str(WEIGHTS[name].file)).graph
    produced_by = {out: n for n in graph.node for out in n.output}
    quantised_outputs = {n.input[0] for n in graph.node if n.op_type == "QuantizeLinear"}
    qdq = ("QuantizeLinear", "DequantizeLinear")      # named after the tensor they convert
    kept = [n for n in graph.node if n.name.startswith(KEEP_FLOAT) and n.op_type not in qdq]
    assert {n.op_type for n in kept} >= {"Conv", "Add"}
    kept_names = {n.name for n in kept}
    read_by = {}
    for n in graph.node:
        for name in n.input:
            read_by.setdefault(name, []).append(n)
    for node in kept:
        if all(reader.name in kept_names for reader in read_by.get(node.output[0], [])):
            assert node.output[0] not in quantised_outputs, node.name
        if node.op_type == "Conv":
            weight = produced_by.get(node.input[1])
            assert weight is None or weight.op_type != "DequantizeLinear", f"{node.name}: int8 weights"
    convs = [n for n in graph.node if n.op_type == "Conv" and not n.name.startswith(KEEP_FLOAT)]
    assert all(produced_by[n.input[1]].op_type == "DequantizeLinear" for n in convs), "the rest is int8"


def test_the_default_model_is_int8_on_the_cpu_and_float_where_int8_cannot_run():
    from tracker.backends import WEIGHTS, default_weights

    assert default_weights("onnxruntime", "cpu") == WEIGHTS["cpu-rt-int8"].file
    assert default_weights("onnxruntime", "cpu", faces=True) == WEIGHTS["cpu-rt"].file   # int8 has no face output
    assert default_weights("torch", "cpu") == WEIGHTS["cpu-rt"].file
    assert default_weights("onnxruntime", "cuda") == WEIGHTS["cpu-rt"].file
    assert default_weights("onnxruntime", "cpu", live=True) == WEIGHTS["cpu-rt"].file   # still-face jitter
