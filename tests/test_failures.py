"""Bad input and faults: one-line errors with exit code 2, logged skips, odd frame formats, fuzzed readers."""

from __future__ import annotations

import csv
import string
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import REPO, noise_video, run_main, write_video
from tests.conftest import astronaut_scene
from tracker.backends import load_backend
from tracker.pipeline import FaceTracker, TrackerOptions
from tracker.sources import SourceError, open_source
from tracker.types import Frame
from train.readers import DatasetError, read_300vw, read_pts, read_wflw


def _shtrack(*args):
    return subprocess.run([sys.executable, "-m", "tracker.cli", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=300)


def _one_line_exit_2(proc, name: str):
    """Exit 2, and the error is one line naming the input (stderr may carry INFO lines before it)."""
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if "error" in ln.lower()]
    assert len(errors) == 1 and name in errors[0] and "Traceback" not in proc.stderr, proc.stderr


def test_zero_length_file(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    _one_line_exit_2(run_main("--source", str(empty), "--csv", str(tmp_path / "o.csv")), "empty.mp4")


def test_not_a_video(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("hello, this is not a video\n" * 100)
    _one_line_exit_2(run_main("--source", str(text), "--csv", str(tmp_path / "o.csv")), "notes.mp4")


def test_unreadable_file(tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    f = tmp_path / "locked.mp4"
    write_video(f, astronaut_scene(3, lambda i: [(160, 120)], 40))
    f.chmod(0)
    _one_line_exit_2(run_main("--source", str(f), "--csv", str(tmp_path / "o.csv")), "locked.mp4")


@pytest.mark.slow
def test_truncated_mp4_without_its_index_is_a_one_line_error(tmp_path, tiny_weights):
    clip = write_video(tmp_path / "c.mp4", astronaut_scene(40, lambda i: [(100 + 2 * i, 120)], 40, jitter=20))
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    out = tmp_path / "o.csv"
    # PyAV writes the index (moov) at the end, so cutting the file loses it: the whole file is unreadable, and
    # a clean error is right. (With the index first, frames before the cut are kept:
    # test_file_cut_in_half_with_index_first_is_a_partial_result.)
    assert data.rfind(b"moov") > 0.6 * len(data)
    proc = _shtrack("--source", str(cut), "--csv", str(out), "--weights", str(tiny_weights), "--quiet")
    _one_line_exit_2(proc, "cut.mp4")


@pytest.mark.slow
def test_overwritten_middle_is_skipped_not_fatal(tmp_path, tiny_weights):
    clip = write_video(tmp_path / "c.mp4", astronaut_scene(60, lambda i: [(100 + i, 120)], 40, jitter=20))
    data = bytearray(clip.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 4000] = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    out = tmp_path / "o.csv"
    proc = _shtrack("--source", str(bad), "--csv", str(out), "--weights", str(tiny_weights), "--quiet")
    assert proc.returncode == 0, proc.stderr
    frames = {row[0] for row in list(csv.reader(out.open()))[1:]}
    assert len(frames) >= 40


@pytest.mark.parametrize("shape", [(1, 1, 3), (240, 320), (240, 320, 4), (7, 5, 3)])
def test_odd_frames_do_not_crash(shape, tiny_weights):
    tracker = FaceTracker(load_backend(tiny_weights, "torch"), TrackerOptions(min_face=16))
    image = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    if image.ndim == 2:
        import cv2

        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = image[..., :3].copy()
    result = tracker.process(Frame(1, 0.0, image))
    assert len(result.faces) == 0, "noise is no face"
    assert {"detect", "infer"} <= set(result.timings), "the frame went through the whole loop"


def _write_raw_video(path, codec: str, pix_fmt: str, arrays) -> None:
    """Frames in an unusual pixel format (what cameras and archives hand us), written losslessly."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.height, stream.width = arrays[0].shape[:2]
        stream.pix_fmt = pix_fmt
        for array in arrays:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format=pix_fmt)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_grayscale_and_10bit_video_decode_to_bgr(tmp_path):
    path = tmp_path / "gray10.mkv"
    _write_raw_video(path, "ffv1", "gray10le", [np.full((48, 64), 100 * i, np.uint16) for i in range(3)])
    with open_source(str(path)) as src:
        frames = list(src)
    assert len(frames) == 3 and frames[0].image.shape == (48, 64, 3) and frames[0].image.dtype == np.uint8


@pytest.mark.slow
def test_bad_weights_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / "w.safetensors"
    bad.write_bytes(b"garbage")
    _one_line_exit_2(_shtrack("--source", "demo", "--weights", str(bad), "--csv", str(tmp_path / "o.csv")),
                     "w.safetensors")


def test_folder_without_media(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path))


# ---------------------------------------------------------------- fuzzing

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


VALID_PTS = "version: 1\nn_points: 3\n{\n1 2\n3.5 4\n5 6e1\n}\n"


@FUZZ
@example(VALID_PTS)                                    # reaches the asserts (random text seldom parses)
@example(VALID_PTS.replace("6e1", "nan"))
@given(st.text(alphabet=string.printable, max_size=400))
def test_fuzz_pts_reader(tmp_path, text):
    path = tmp_path / "f.pts"
    path.write_text(text)
    try:
        xy = read_pts(path)
    except DatasetError:
        assert text != VALID_PTS, "a well-formed .pts file must parse"
        return
    assert xy.ndim == 2 and xy.shape[1] == 2 and np.isfinite(xy).all()
    if text == VALID_PTS:
        np.testing.assert_allclose(xy, [[0, 1], [2.5, 3], [4, 59]])     # 1-based in the file, 0-based out


@FUZZ
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=0, max_size=140))
def test_fuzz_pts_reader_numbers(tmp_path, values):
    body = "\n".join(f"{a} {b}" for a, b in zip(values[::2], values[1::2]))
    path = tmp_path / "n.pts"
    path.write_text(f"version: 1\nn_points: {len(values) // 2}\n{{\n{body}\n}}\n")
    try:
        xy = read_pts(path)
    except DatasetError:
        return
    assert np.isfinite(xy).all()


VALID_WFLW = " ".join(str(float(i % 50)) for i in range(196)) + " 0 0 10 10 0 0 0 0 0 0 face.jpg\n"


@FUZZ
@example(VALID_WFLW)                                   # reaches the asserts
@example(VALID_WFLW.replace("49.0", "inf", 1))
@given(st.text(alphabet=string.printable, max_size=600))
def test_fuzz_wflw_reader(tmp_path, text):
    path = tmp_path / "list.txt"
    path.write_text(text)
    try:
        records = read_wflw(path, tmp_path)
    except DatasetError:
        assert text != VALID_WFLW, "a well-formed WFLW line must parse"
        return
    assert records and all(r.landmarks.shape == (68, 2) and np.isfinite(r.landmarks).all() for r in records)
    if text == VALID_WFLW:
        assert records[0].image == tmp_path / "face.jpg"


@FUZZ
@given(st.text(alphabet=string.ascii_letters + string.digits + "._-", min_size=1, max_size=12),
       st.text(alphabet=string.printable, max_size=200))
def test_fuzz_300vw_reader(tmp_path, name, text):
    root = tmp_path / "vw"
    annot = root / "001" / "annot"
    annot.mkdir(parents=True, exist_ok=True)
    for old in annot.iterdir():
        old.unlink()
    (annot / f"{name}.pts").write_text(text)
    try:
        records = read_300vw(root)
    except DatasetError:
        return
    assert all(r.landmarks.shape == (68, 2) for r in records)


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_csv_resume_reader(tmp_path, blob):
    from pathlib import Path

    from tracker.run import cut_csv_for_resume

    path = Path(tmp_path) / "o.csv"
    path.write_bytes(b"frame,face_id\n" + blob)
    try:
        last, last_id = cut_csv_for_resume(path)
    except SourceError:
        return   # a CSV that is not ours: a one-line error
    assert last >= 0 and last_id >= -1


TWO_FRAMES = None


def _two_frame_clip():
    global TWO_FRAMES
    if TWO_FRAMES is None:
        import tempfile
        from pathlib import Path

        from tracker.demo import demo_frames

        TWO_FRAMES = write_video(Path(tempfile.mkdtemp()) / "two.mp4", demo_frames(2))
    return TWO_FRAMES


FLAG_VALUES = {"--max-faces": ["-2", "0", "1", "3", "x"], "--min-face": ["-5", "0", "3.9", "4", "16", "64", "nan", "1e9"],
               "--detect-every": ["-3", "0", "1", "25", "x"], "--smooth": ["none", "auto", "rts", "one-euro", "kalman"],
               "--min-confidence": ["-1", "0", "0.5", "2"], "--cut-threshold": ["-1", "0", "20", "1e6"],
               "--detector": ["yunet", "haar", "other"], "--threads": ["0", "1", "2"],
               "--smooth-lag": ["0", "8", "-1", "x"], "--model": ["cpu-fast-int8", "nope"]}


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(sorted(FLAG_VALUES)), st.integers(0, 7), max_size=4))
def test_main_never_shows_a_traceback(tmp_path, flags):
    """main() itself (not only the parser) with random flag values on a 2-frame clip: it returns an exit code
    or exits 2 with a usage line; no exception escapes."""
    from tracker.cli import main

    argv = ["--source", str(_two_frame_clip()), "--quiet", "--csv", str(tmp_path / "o.csv")]
    for flag, k in flags.items():
        values = FLAG_VALUES[flag]
        argv += [flag, values[k % len(values)]]
    try:
        code = main(argv)
    except SystemExit as exc:
        assert exc.code == 2, argv
        return
    assert code in (0, 2), argv


# ---------------------------------------------------------------- interruption and long streams

@pytest.mark.slow
def test_sigterm_mid_file_finalises_csv_and_resume_completes_it(tmp_path, tiny_weights):
    import signal
    import time

    clip = write_video(tmp_path / "long.mp4", astronaut_scene(400, lambda i: [(100 + i % 120, 120)], 40))
    out = tmp_path / "o.csv"
    cmd = [sys.executable, "-m", "tracker.cli", "--source", str(clip), "--csv", str(out), "--weights",
           str(tiny_weights), "--quiet", "--backend", "torch", "--min-face", "16"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = out.with_name("o.csv.partial")
    deadline = time.time() + 120
    while time.time() < deadline and (not partial.exists() or partial.stat().st_size < 20000):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert out.exists() and not partial.exists()
    text = out.read_text()
    assert text.endswith("\n")
    rows = list(csv.reader(text.splitlines()))
    assert all(len(r) == len(rows[0]) for r in rows)
    done = int(rows[-1][0])
    assert 0 < done < 400
    proc = subprocess.run(cmd + ["--resume"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    frames = [int(r[0]) for r in list(csv.reader(out.open()))[1:]]
    assert sorted(set(frames)) == list(range(1, 401))


@pytest.mark.slow
def test_long_stream_runs_in_constant_memory(bundled_weights):
    """A shortened soak (benchmarks/soak.py runs the full hour): RSS must not grow with the stream."""
    from benchmarks.soak import run

    r = run(minutes=0.5, fps=25, size=(160, 120))
    print(f"soak: {r['frames']} frames at {r['fps']:.0f} FPS, RSS {r['rss_start_mb']:.0f} -> {r['rss_end_mb']:.0f} MB")
    assert r["rss_end_mb"] - r["rss_start_mb"] < 30


@pytest.mark.slow
def test_stalled_stream_times_out_with_one_line_error():
    """A server that accepts the connection and then says nothing: open gives up after read_timeout."""
    import socket
    import threading
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    start = time.time()
    try:
        with pytest.raises(SourceError, match=f"127.0.0.1:{port}"):
            open_source(f"http://127.0.0.1:{port}/live.mp4", read_timeout=2.0)
    finally:
        server.close()
    assert time.time() - start < 30


def test_variable_frame_rate_timestamps_come_from_the_stream(tmp_path):
    import av
    from fractions import Fraction

    path = tmp_path / "vfr.mkv"
    pts_ms = [0, 40, 50, 200, 210, 1000]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=1000)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for ms in pts_ms:
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="bgr24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with open_source(str(path)) as src:
        stamps = [f.timestamp for f in src]
    np.testing.assert_allclose(stamps, np.array(pts_ms) / 1000, atol=1e-3)


# ---------------------------------------------------------------- odd streams

def test_display_matrix_rotation_is_applied():
    """tests/data/rotated_90.mp4: 64x32 frames with a white block top-left, display matrix 90 deg (made with
    `ffmpeg -i plain.mp4 -c copy -metadata:s:v:0 rotate=90`). ffmpeg's own autorotate shows it 32 wide,
    64 tall, block at the bottom left: so must we."""
    from tests.conftest import REPO

    with open_source(str(REPO / "tests" / "data" / "rotated_90.mp4")) as src:
        frame = next(iter(src))
    assert frame.image.shape == (64, 32, 3)
    ys, xs = np.nonzero(frame.image[..., 0] > 128)
    assert ys.mean() > 48 and xs.mean() < 16


def test_rgba_video_decodes_to_bgr(tmp_path):
    path = tmp_path / "rgba.mov"
    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 128
    _write_raw_video(path, "png", "rgba", [rgba, rgba])
    with open_source(str(path)) as src:
        frames = list(src)
    assert len(frames) == 2 and frames[0].image.shape == (24, 32, 3)
    assert frames[0].image[0, 0, 2] == 200   # red lands in BGR's third channel


def test_8k_frame_with_a_face(bundled_weights):
    frame = np.full((4320, 7680, 3), 70, np.uint8)
    face = astronaut_scene(1, lambda i: [(400, 400)], 400, size=(800, 800))[0]
    frame[1000:1800, 3000:3800] = face
    tracker = FaceTracker(load_backend(bundled_weights, "onnxruntime"), TrackerOptions(min_face=300))
    result = tracker.process(Frame(1, 0.0, frame))
    assert len(result.faces) >= 1 and result.faces.success.any()
    centre = result.faces.xy[result.faces.success][0].mean(0)
    assert 3000 < centre[0] < 3800 and 1000 < centre[1] < 1800


def test_unreadable_file_error_path(tmp_path, monkeypatch):
    """EACCES from the demuxer (root cannot provoke it with file modes, so the error is injected)."""
    import av

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(args[0]))

    locked = tmp_path / "locked.mp4"
    locked.write_bytes(b"x")
    monkeypatch.setattr(av, "open", refuse)
    with pytest.raises(SourceError, match="locked.mp4: cannot open"):
        open_source(str(locked))


@pytest.mark.slow
def test_twenty_faces_get_twenty_stable_ids(bundled_weights):
    import time

    centres = [(40 + 64 * c, 40 + 80 * r) for r in range(4) for c in range(5)]
    frames = astronaut_scene(12, lambda i: [(x + i % 3, y) for x, y in centres], 40, size=(320, 320))
    ids_per_frame, start = [], time.perf_counter()
    from tracker.pipeline import track
    from tracker.sources import frames_from_arrays

    for result in track(frames_from_arrays(frames), weights=bundled_weights, backend="onnxruntime", min_face=28):
        ids_per_frame.append(set(result.faces.face_id[result.faces.success].tolist()))
    fps = len(frames) / (time.perf_counter() - start)
    print(f"20-face scene: {len(ids_per_frame[-1])} faces tracked, {fps:.1f} FPS")
    assert all(ids == set(range(20)) for ids in ids_per_frame), ids_per_frame


# ---------------------------------------------------------------- outputs that must not destroy or corrupt

def _demo_args(*args):
    return _shtrack("--source", "demo", "--quiet", *args)


@pytest.mark.slow
def test_fifo_output_is_written_directly_never_replaced(tmp_path):
    import os
    import stat
    import threading

    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(open(fifo, "rb").read()))
    reader.start()
    proc = _demo_args("--csv", str(fifo))
    reader.join(timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode), "the FIFO was replaced"
    assert received and received[0].startswith(b"frame,face_id")
    assert not (tmp_path / "out.csv.partial").exists()


@pytest.mark.slow
def test_symlinked_output_is_written_through(tmp_path):
    target = tmp_path / "real.csv"
    target.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    proc = _demo_args("--csv", str(link))
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and link.resolve() == target
    assert target.read_text().startswith("frame,face_id")


def test_device_full_is_its_own_exit_code(tmp_path):
    import os

    device = tmp_path / "full"
    try:
        os.mknod(device, 0o666 | __import__("stat").S_IFCHR, os.makedev(1, 7))   # like /dev/full, made here
    except PermissionError:
        pytest.skip("making a device node needs root")
    proc = _demo_args("--csv", str(device))
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.count("\n") == 1 and "No space left" in proc.stderr and "Traceback" not in proc.stderr
    assert __import__("stat").S_ISCHR(os.stat(device).st_mode), "the device was replaced"


def test_directory_output_is_refused_before_any_frame(tmp_path):
    proc = _demo_args("--csv", str(tmp_path))
    _one_line_exit_2(proc, str(tmp_path))
    assert "is a directory" in proc.stderr
    assert not list(tmp_path.glob("*.partial"))


def test_output_in_use_by_another_run_is_refused(tmp_path):
    from tracker.sinks import CsvSink, OutputError

    path = tmp_path / "out.csv"
    with CsvSink(path):
        with pytest.raises(OutputError, match="in use by another shtrack run"):
            with CsvSink(path):
                pass
    with CsvSink(path):      # released when the first run closed it
        pass


@pytest.mark.slow
def test_dash_writes_csv_to_stdout_and_logs_to_stderr():
    proc = _shtrack("--source", "demo", "--csv", "-")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("frame,face_id") and len(lines) == 101
    assert "backend" in proc.stderr and "backend" not in proc.stdout


def test_random_and_foreign_onnx_files_are_one_line_errors(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    junk = tmp_path / "random.onnx"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    _one_line_exit_2(run_main("--source", "demo", "--quiet", "--weights", str(junk)), "random.onnx")
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    foreign = tmp_path / "other_model.onnx"
    onnx.save(helper.make_model(graph), foreign)
    proc = run_main("--source", "demo", "--quiet", "--weights", str(foreign))
    _one_line_exit_2(proc, "other_model.onnx")
    assert "shtrack export" in proc.stderr


@pytest.mark.slow
def test_tensorrt_without_cuda_is_a_one_line_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    proc = _shtrack("--source", "demo", "--quiet", "--backend", "tensorrt")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "CUDA" in proc.stderr, proc.stderr


@pytest.mark.parametrize("flag", [["--min-face", "0"], ["--min-face", "-5"], ["--detect-every", "0"],
                                  ["--detect-every", "-3"], ["--max-faces", "-2"]])
def test_out_of_range_flags_are_usage_errors(flag, tmp_path):
    proc = run_main("--source", "demo", "--quiet", "--csv", str(tmp_path / "x.csv"), *flag)
    assert proc.returncode == 2 and "usage:" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.slow
def test_jsonl_values_carry_at_most_3_decimals(tmp_path):
    import json
    import re

    proc = _shtrack("--source", "demo", "--quiet", "--jsonl", str(tmp_path / "d.jsonl"))
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "d.jsonl").read_text()
    assert json.loads(text.splitlines()[0])["faces"][0]["landmarks"]
    assert not re.search(r"\.\d{7,}", text), "float32 noise in the JSON"


# ---------------------------------------------------------------- partial inputs, image folders, batch, resume

def _faststart_clip(path, frames):
    """An MP4 with its index at the front (movflags=faststart), as web-ready files are."""
    import av

    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.slow
def test_file_cut_in_half_with_index_first_is_a_partial_result(tmp_path):
    from tracker.demo import demo_frames

    full = tmp_path / "full.mp4"
    _faststart_clip(full, demo_frames(100))
    data = full.read_bytes()
    half = tmp_path / "half.mp4"
    half.write_bytes(data[: len(data) // 2])
    proc = _shtrack("--source", str(half), "--csv", str(tmp_path / "h.csv"))
    assert proc.returncode == 3, proc.stderr
    assert "ended early" in proc.stderr and "Traceback" not in proc.stderr
    rows = list(csv.reader((tmp_path / "h.csv").open()))
    frames = {int(r[0]) for r in rows[1:]}
    assert 20 < len(frames) < 100 and frames == set(range(1, len(frames) + 1)), "frames before the cut are kept"


def test_image_folder_frames_are_separate_photos_with_a_file_column(tmp_path):
    import cv2

    from tracker.demo import demo_frames

    folder = tmp_path / "photos"
    folder.mkdir()
    frames = demo_frames(100)
    for i, k in enumerate((0, 50, 99)):
        cv2.imwrite(str(folder / f"p{i}.png"), frames[k])
    proc = run_main("--source", str(folder), "--quiet", "--csv", str(tmp_path / "p.csv"))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert [r["file"] for r in rows] == ["p0.png", "p1.png", "p2.png"]
    ids = [r["face_id"] for r in rows if r["success"] == "1"]
    assert len(ids) == 3 and len(set(ids)) == 3, "a track never carries from one photo to the next"


@pytest.mark.slow
def test_batch_outputs_are_distinct_for_same_stem_and_single_file_flags_refused(tmp_path, tiny_weights):
    from tracker.demo import demo_frames

    videos = tmp_path / "in"
    videos.mkdir()
    write_video(videos / "a.mp4", demo_frames(3))
    write_video(videos / "a.mov", demo_frames(3))
    write_video(videos / "b.mp4", demo_frames(3))
    proc = _shtrack("--source", str(videos), "--out", str(tmp_path / "out"), "--quiet", "--weights", str(tiny_weights))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.csv")) == ["a.mov.csv", "a.mp4.csv", "b.csv"]
    assert len(list((tmp_path / "out").glob("*.summary.json"))) == 3
    proc = _shtrack("--source", str(videos), "--out", str(tmp_path / "o2"), "--jsonl", str(tmp_path / "x.jsonl"))
    _one_line_exit_2(proc, "batch mode")


@pytest.mark.slow
def test_resume_refuses_a_video_and_trims_the_jsonl(tmp_path):
    import json

    proc = _shtrack("--source", "demo", "--quiet", "--resume", "--csv", str(tmp_path / "d.csv"),
                    "--save-video", str(tmp_path / "d.mp4"))
    _one_line_exit_2(proc, "d.mp4")
    # A run stopped after frame 40: CSV and JSONL hold frames 1-40 (the JSONL with half of frame 41).
    full = _shtrack("--source", "demo", "--quiet", "--csv", str(tmp_path / "d.csv"), "--jsonl", str(tmp_path / "d.jsonl"))
    assert full.returncode == 0
    rows = (tmp_path / "d.csv").read_text().splitlines()
    (tmp_path / "d.csv").write_text("\n".join(r for r in rows if not r[0].isdigit() or int(r.split(",")[0]) <= 40) + "\n")
    lines = (tmp_path / "d.jsonl").read_text().splitlines()
    (tmp_path / "d.jsonl").write_text("\n".join(lines[:40]) + "\n" + lines[40][:30])
    proc = _shtrack("--source", "demo", "--quiet", "--resume", "--csv", str(tmp_path / "d.csv"),
                    "--jsonl", str(tmp_path / "d.jsonl"))
    assert proc.returncode == 0, proc.stderr
    frames = [json.loads(ln)["frame"] for ln in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert frames == list(range(1, 101)), "every frame once, in order"
    ids = [int(r.split(",")[1]) for r in (tmp_path / "d.csv").read_text().splitlines()[1:]]
    before, after = set(ids[:39]), set(ids[39:])
    assert not before & after - {-1}, "ids after a resume continue above the ones before"


@pytest.mark.slow
def test_export_without_an_output_is_a_usage_error():
    proc = _shtrack("export")
    assert proc.returncode == 2 and "nothing to export" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_export_to_a_path_that_cannot_be_written_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = _shtrack("export", "--onnx", str(blocker / "x.onnx"), "--heatmaps-only")
    _one_line_exit_2(proc, "file")


def _mpegts_bytes(frames: int = 100) -> bytes:
    """An H.264 MPEG-TS recording of noise frames (a camera's format: no index, no frame count)."""
    import io

    return noise_video(io.BytesIO(), frames, container_format="mpegts").getvalue()


def _grow(path, data: bytes, chunks: int = 20, pause: float = 0.1):
    """Write the first chunk now, the others from a thread `pause` s apart (a recorder writing the file)."""
    import threading
    import time

    size = -(-len(data) // chunks)
    path.write_bytes(data[:size])

    def rest():
        with path.open("ab") as f:
            for i in range(size, len(data), size):
                time.sleep(pause)
                f.write(data[i:i + size])
                f.flush()

    thread = threading.Thread(target=rest, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_a_recording_still_being_written_is_read_on_with_follow(tmp_path):
    path = tmp_path / "camera.ts"
    writer = _grow(path, _mpegts_bytes(100))
    with open_source(str(path), follow=2.0) as src:
        frames = [f.index for f in src]
    writer.join()
    assert frames == list(range(1, 101)) and not src.ended_early


def test_a_recording_that_grows_while_read_without_follow_is_a_partial_result(tmp_path, caplog):
    path = tmp_path / "camera.ts"
    writer = _grow(path, _mpegts_bytes(100))
    with open_source(str(path)) as src:
        frames = [f.index for f in src]
    writer.join()
    assert len(frames) < 100 and src.ended_early, "read to the end of the file as it was, and said so"
    assert "--follow" in caplog.text


def test_follow_is_for_one_file(tmp_path):
    from tracker.cli import main

    assert main(["--source", str(tmp_path), "--follow", "5", "--csv", str(tmp_path / "o.csv")]) == 2
    with pytest.raises(SystemExit):
        main(["--source", "demo", "--follow", "4000"])        # above the bound: a usage error


def test_a_faststart_file_cut_short_gives_every_frame_a_plain_decode_gives(tmp_path):
    """The threaded decoder's frames in flight at the cut come out too (none of the last decodable ones is lost)."""
    import av

    from tracker.demo import demo_frames

    full = tmp_path / "full.mp4"
    _faststart_clip(full, demo_frames(60))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])
    plain = 0
    with av.open(str(cut)) as container:        # one thread, every frame the decoder can give
        try:
            for packet in container.demux(video=0):
                try:
                    plain += len(packet.decode())
                except av.error.InvalidDataError:
                    continue
        except av.error.FFmpegError:
            pass
    with open_source(str(cut)) as src:
        got = [f.index for f in src]
    assert 10 < plain < 60 and got == list(range(1, plain + 1))
