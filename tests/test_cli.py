"""What a user meets first and what a hostile input throws at it: usage, frame ranges, the summary, outputs as
transactions, resume checks, bounds. In-process `main()` calls where a subprocess adds nothing."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, astronaut_scene, write_video
from tracker.cli import main


def _clip(tmp_path, n=12, name="c.mp4", faces=1):
    centres = (lambda i: [(160, 120)]) if faces == 1 else (lambda i: [(90, 120), (230, 120)])
    return write_video(tmp_path / name, astronaut_scene(n, centres, 40))


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _run(*args, **kw) -> tuple[int, str]:
    """main() in-process -> (exit code, stderr)."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main([*args])
        except SystemExit as exc:      # argparse's usage errors
            code = exc.code
    return code, err.getvalue()


def test_version_and_a_bare_command_print_and_touch_nothing(tmp_path, monkeypatch, capsys):
    from tracker import __version__

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"shtrack {__version__}"
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "usage: shtrack" in err and "--source demo" in err
    assert list(tmp_path.iterdir()) == [], "a bare shtrack runs nothing and writes nothing"


def test_help_shows_every_default():
    from tracker.cli import build_parser

    text = " ".join(build_parser().format_help().split())
    for flag, default in (("--detect-every", "25"), ("--cut-threshold", "20.0"), ("--min-confidence", "0.35"),
                          ("--max-faces", "0"), ("--min-face", "16.0"), ("--threads", "0")):
        tail = text.split(f"{flag} ", 2)[-1]          # the flag's help entry (after the usage line)
        assert f"(default: {default})" in tail.split(" --", 1)[0], flag


@pytest.mark.parametrize("flag,value,ok", [("--max-faces", "1e3", True), ("--max-faces", "2.5", False),
                                           ("--max-faces", "1e9", False), ("--threads", "100000", False),
                                           ("--threads", "2", True), ("--smooth-lag", "1000", False),
                                           ("--min-confidence", "nan", False), ("--max-frames", "1e2", True)])
def test_number_flags_take_exponents_and_refuse_what_could_exhaust_the_machine(flag, value, ok):
    from tracker.cli import build_parser

    if ok:
        args = build_parser().parse_args(["--source", "demo", flag, value])
        assert getattr(args, flag[2:].replace("-", "_")) == int(float(value))
    else:
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(["--source", "demo", flag, value])
        assert exc.value.code == 2


def test_a_misspelled_source_is_reported_before_the_model_loads(tmp_path, monkeypatch, tiny_weights):
    import tracker.backends

    def refuse(*a, **k):
        raise AssertionError("the model was loaded before the source was checked")
    monkeypatch.setattr(tracker.backends, "load_backend", refuse)
    code, err = _run("--source", str(tmp_path / "nope.mp4"), "--csv", str(tmp_path / "o.csv"),
                     "--weights", str(tiny_weights), "--quiet")
    assert code == 2 and "nope.mp4" in err and "Traceback" not in err


def test_start_end_and_max_frames_pick_the_frames_tracked(tmp_path, tiny_weights):
    clip = _clip(tmp_path, n=20)
    for args, frames in ((["--start", "5", "--end", "9"], list(range(5, 10))),
                         (["--max-frames", "3"], [1, 2, 3]),
                         (["--start", "0.2s", "--end", "0.4s"], [6, 7, 8, 9, 10]),       # 25 fps: 0.20-0.36 s
                         (["--start", "0:00.6", "--max-frames", "2"], [16, 17])):
        out = tmp_path / "o.csv"
        code, err = _run("--source", str(clip), "--csv", str(out), "--weights", str(tiny_weights), "--quiet", *args)
        assert code == 0, err
        assert sorted({int(r["frame"]) for r in _rows(out)}) == frames, args
    code, err = _run("--source", str(clip), "--csv", str(out), "--weights", str(tiny_weights), "--start", "9",
                     "--end", "5")
    assert code == 2 and "frame range" in err
    code, err = _run("--source", str(clip), "--csv", str(out), "--weights", str(tiny_weights), "--start", "ten")
    assert code == 2 and "not a frame number" in err


def test_summary_sidecar_reports_the_run(tmp_path, bundled_weights):
    clip = _clip(tmp_path, n=15, faces=2)
    out = tmp_path / "o.csv"
    code, err = _run("--source", str(clip), "--csv", str(out), "--quiet")
    assert code == 0, err
    summary = json.loads((tmp_path / "o.summary.json").read_text())
    rows = _rows(out)
    assert summary["complete"] is True and summary["frames"] == 15 and summary["first_frame"] == 1
    assert summary["model"]["preset"] == "cpu-rt" and summary["source"]["frames_declared"] == 15
    ids = {r["face_id"] for r in rows if r["success"] == "1"}
    assert summary["distinct_ids"] == len(summary["ids"]) >= len(ids) == 2
    for face_id, entry in summary["ids"].items():
        mine = [int(r["frame"]) for r in rows if r["face_id"] == face_id]
        assert (entry["first_frame"], entry["last_frame"], entry["frames"]) == (min(mine), max(mine), len(mine))
        assert 0 < entry["mean_confidence"] <= 1
    assert summary["frames_with_face"] == len({r["frame"] for r in rows if r["success"] == "1"})
    assert {"infer", "detect"} <= set(summary["stage_ms"]) and summary["fps"] > 0


def test_broken_pipe_on_stdout_ends_quietly(tmp_path, tiny_weights):
    clip = _clip(tmp_path, n=30)
    proc = subprocess.run(f"{sys.executable} -m tracker.cli --source {clip} --weights {tiny_weights} --csv - "
                          f"--quiet | head -2", shell=True, capture_output=True, text=True, cwd=REPO, timeout=300,
                          executable="/bin/bash")
    assert "error" not in proc.stderr.lower() and "Traceback" not in proc.stderr, proc.stderr
    status = subprocess.run(f"set -o pipefail; {sys.executable} -m tracker.cli --source {clip} --weights "
                            f"{tiny_weights} --csv - --quiet | head -1 >/dev/null", shell=True, cwd=REPO,
                            timeout=300, executable="/bin/bash")
    assert status.returncode == 0


# --- outputs as transactions ----------------------------------------------------------------------------------

def test_a_refused_output_leaves_every_other_output_byte_identical(tmp_path, tiny_weights):
    clip = _clip(tmp_path)
    good = tmp_path / "good.csv"
    good.write_bytes(b"frame,face_id\n1,0\n2,0\n")
    (tmp_path / "somedir").mkdir()
    code, err = _run("--source", str(clip), "--csv", str(good), "--save-video", str(tmp_path / "somedir"),
                     "--weights", str(tiny_weights), "--quiet")
    assert code == 2 and "is a directory" in err
    assert good.read_bytes() == b"frame,face_id\n1,0\n2,0\n"
    assert not (tmp_path / "good.csv.partial").exists() and not (tmp_path / "good.summary.json").exists()


@pytest.mark.parametrize("case", ["csv-is-jsonl", "csv-is-source", "both-stdout"])
def test_outputs_that_are_the_input_or_each_other_are_refused(tmp_path, tiny_weights, case):
    clip = _clip(tmp_path)
    before = clip.read_bytes()
    args = {"csv-is-jsonl": ["--csv", str(tmp_path / "x"), "--jsonl", str(tmp_path / "x")],
            "csv-is-source": ["--csv", str(clip)],
            "both-stdout": ["--csv", "-", "--jsonl", "-"]}[case]
    code, err = _run("--source", str(clip), *args, "--weights", str(tiny_weights), "--quiet")
    assert code == 2 and "in use by another" not in err and len(err.strip().splitlines()) == 1, err
    assert clip.read_bytes() == before and not (tmp_path / "x").exists()


def test_export_refuses_to_overwrite_its_own_weights(tmp_path, tiny_weights, capsys):
    import shutil

    w = tmp_path / "w.safetensors"
    shutil.copy(tiny_weights, w)
    before = w.read_bytes()
    with pytest.raises(SystemExit) as exc:
        main(["export", "--weights", str(w), "--onnx", str(w)])
    assert exc.value.code == 2 and "replace the weights" in capsys.readouterr().err
    assert w.read_bytes() == before


def test_batch_names_never_collide():
    from tracker.run import batch_names

    videos = [Path("d/a.mp4"), Path("d/a.mov"), Path("d/a.mp4.mkv"), Path("d/b.mp4")]
    names = batch_names(videos)
    assert len(set(names.values())) == len(videos) and names[Path("d/b.mp4")] == "b"


def _failing_backend(tiny_weights, fail_at_call: int):
    from tracker.backends import load_backend

    backend = load_backend(tiny_weights, "onnxruntime")
    real, calls = backend.infer, [0]

    def infer(batch):
        calls[0] += 1
        if calls[0] >= fail_at_call:
            raise RuntimeError("inference failed")
        return real(batch)
    backend.infer = infer
    return backend


def test_a_crash_mid_run_keeps_the_previous_complete_file_and_the_partial_one(tmp_path, tiny_weights):
    from tracker.run import Outputs, run_source
    from tracker.pipeline import TrackerOptions

    clip = _clip(tmp_path, n=12)
    out = tmp_path / "o.csv"
    assert run_source(str(clip), _failing_backend(tiny_weights, 10 ** 9), TrackerOptions(),
                      Outputs(csv=out, quiet=True)) == 0
    complete = out.read_bytes()
    with pytest.raises(RuntimeError):
        run_source(str(clip), _failing_backend(tiny_weights, 6), TrackerOptions(), Outputs(csv=out, quiet=True))
    assert out.read_bytes() == complete, "a failed run never replaces a complete file"
    partial = (tmp_path / "o.csv.partial").read_text().splitlines()
    assert partial[0].startswith("frame,face_id") and 1 < len(partial) < len(complete.splitlines())


def test_a_broken_stdout_keeps_the_other_outputs_previous_file(tmp_path, tiny_weights):
    clip = _clip(tmp_path, n=30)
    also = tmp_path / "also.csv"
    also.write_text("frame,face_id\nold complete file\n")
    proc = subprocess.run(f"{sys.executable} -m tracker.cli --source {clip} --weights {tiny_weights} --jsonl - "
                          f"--csv {also} --quiet | head -1 > /dev/null", shell=True, cwd=REPO, timeout=300,
                          executable="/bin/bash", capture_output=True, text=True)
    assert also.read_text() == "frame,face_id\nold complete file\n", proc.stderr


def test_a_full_disk_keeps_the_complete_rows_in_the_final_file_and_names_it(tmp_path):
    import errno

    from tracker.sinks import CsvSink

    out = tmp_path / "o.csv"
    sink = CsvSink(out)
    sink.__enter__()
    sink._file.write("1,0,0.000,0.9,1\n2,0,0.04")       # the disk filled up halfway through frame 2's row
    sink._file.flush()
    sink.frames = 2
    full = sink._write_failed(OSError(errno.ENOSPC, "No space left on device"))
    assert full.filename == str(tmp_path / "o.csv.partial")
    sink.__exit__(OSError, full, None)
    assert out.read_text().splitlines()[-1] == "1,0,0.000,0.9,1"
    code_line = []
    import contextlib
    import io

    import tracker.cli as cli

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        def run(args):
            raise full
        original, cli.run = cli.run, run
        try:
            code_line.append(cli.main(["--source", "demo", "--quiet"]))
        finally:
            cli.run = original
    assert code_line == [4] and "o.csv.partial" in err.getvalue()


def test_save_faces_checks_every_write(tmp_path, monkeypatch):
    import builtins
    import errno

    from tracker.sinks import FaceDumpSink
    from tracker.types import Faces, Frame, FrameResult

    faces = Faces(np.zeros((1, 68, 2)), np.ones((1, 68)), np.array([[0, 0, 10, 10]]), np.array([3]),
                  np.array([True]), [np.zeros((8, 8, 3), np.uint8)])
    result = FrameResult(Frame(1, 0.0, np.zeros((20, 20, 3), np.uint8)), faces)
    real_open = builtins.open

    class Full:
        def __init__(self, *a): pass
        def __enter__(self): return self
        def __exit__(self, *a): return False
        def write(self, data): raise OSError(errno.ENOSPC, "No space left on device")

    with FaceDumpSink(tmp_path / "faces", 1) as sink:
        monkeypatch.setattr(builtins, "open", lambda p, m="r", *a, **k: Full() if str(p).endswith(".png")
                            else real_open(p, m, *a, **k))
        with pytest.raises(OSError) as exc:
            sink.append(result)
    assert exc.value.errno == errno.ENOSPC


# --- resume that checks what it continues ----------------------------------------------------------------------

def _interrupted(tmp_path, tiny_weights, clip, out, jsonl=None):
    code, err = _run("--source", str(clip), "--csv", str(out), *(["--jsonl", str(jsonl)] if jsonl else []),
                     "--weights", str(tiny_weights), "--quiet", "--max-frames", "6")
    assert code == 0, err


def test_resume_refuses_another_video_other_options_and_a_missing_jsonl(tmp_path, tiny_weights):
    clip, other = _clip(tmp_path, n=12), _clip(tmp_path, n=14, name="other.mp4", faces=2)
    out = tmp_path / "o.csv"
    _interrupted(tmp_path, tiny_weights, clip, out)
    before = out.read_bytes()
    for args, says in (([str(other)], "another input"),
                       ([str(clip), "--min-face", "30"], "other tracking options"),
                       ([str(clip), "--jsonl", str(tmp_path / "o.jsonl")], "does not exist")):
        code, err = _run("--source", *args, "--csv", str(out), "--weights", str(tiny_weights), "--resume", "--quiet")
        assert code == 2 and says in err, err
        assert out.read_bytes() == before and not (tmp_path / "o.csv.partial").exists()
    code, err = _run("--source", str(clip), "--csv", str(out), "--weights", str(tiny_weights), "--resume", "--quiet")
    assert code == 0, err
    assert sorted({int(r["frame"]) for r in _rows(out)}) == list(range(1, 13))


def test_resume_refuses_a_damaged_jsonl_line_and_a_foreign_csv(tmp_path, tiny_weights):
    clip = _clip(tmp_path, n=12)
    out, jsonl = tmp_path / "o.csv", tmp_path / "o.jsonl"
    _interrupted(tmp_path, tiny_weights, clip, out, jsonl)
    lines = jsonl.read_text().splitlines()
    lines[2] = lines[2][:10] + "#" + lines[2][11:]
    jsonl.write_text("\n".join(lines) + "\n")
    code, err = _run("--source", str(clip), "--csv", str(out), "--jsonl", str(jsonl), "--weights", str(tiny_weights),
                     "--resume", "--quiet")
    assert code == 2 and "line 3" in err
    rows = out.read_text().splitlines()
    out.write_text("\n".join([",".join(rows[0].split(",")[:-1])] + rows[1:]) + "\n")    # one column fewer
    code, err = _run("--source", str(clip), "--csv", str(out), "--weights", str(tiny_weights), "--resume", "--quiet")
    assert code == 2 and "header" in err


def test_resume_against_a_running_job_touches_nothing_of_it(tmp_path, tiny_weights):
    """A second run's --resume is refused by the first run's lock before it cuts a byte."""
    from tracker.sinks import CsvSink

    out = tmp_path / "o.csv"
    holder = CsvSink(out)
    holder.__enter__()
    holder._file.write("1,0,0.000,0.9,1,partial row of a running job\n")
    holder._file.flush()
    clip = _clip(tmp_path)
    before = (tmp_path / "o.csv.partial").read_bytes()
    code, err = _run("--source", str(clip), "--csv", str(out), "--weights", str(tiny_weights), "--resume", "--quiet")
    assert code == 2 and "in use" in err
    assert (tmp_path / "o.csv.partial").read_bytes() == before
    holder.__exit__(None, None, None)


# --- names, bytes and non-regular files -------------------------------------------------------------------------

def test_image_names_in_any_encoding_and_formula_like_names(tmp_path, tiny_weights):
    import cv2

    folder = tmp_path / "d"
    folder.mkdir()
    face = astronaut_scene(1, lambda i: [(160, 120)], 60)[0]
    ok, png = cv2.imencode(".png", face)
    for name in (b"caf\xe9.png", b"=cmd|calc!A0.png"):
        with open(os.path.join(os.fsencode(folder), name), "wb") as f:
            f.write(png.tobytes())
    out = tmp_path / "o.csv"
    code, err = _run("--source", str(folder), "--csv", str(out), "--weights", str(tiny_weights), "--quiet")
    assert code == 0, err
    files = {r["file"] for r in _rows(out)}
    assert files == {"caf\\xe9.png", "'=cmd|calc!A0.png"}, files


def test_fifo_sources_and_weights_are_refused_without_waiting(tmp_path, tiny_weights):
    fifo = tmp_path / "in.mp4"
    os.mkfifo(fifo)
    started = time.monotonic()
    code, err = _run("--source", str(fifo), "--csv", str(tmp_path / "o.csv"), "--weights", str(tiny_weights),
                     "--quiet")
    assert code == 2 and "not a regular file" in err and time.monotonic() - started < 10
    wfifo = tmp_path / "w.onnx"
    os.mkfifo(wfifo)
    code, err = _run("--source", str(_clip(tmp_path)), "--csv", str(tmp_path / "o.csv"), "--weights", str(wfifo),
                     "--quiet")
    assert code == 2 and "not a regular file" in err and time.monotonic() - started < 20


def test_a_batch_names_its_failed_file_skips_a_fifo_and_says_so_in_the_exit_code(tmp_path, tiny_weights, caplog):
    folder = tmp_path / "in"
    folder.mkdir()
    _clip(folder, n=6, name="good.mp4")
    (folder / "bad.mp4").write_bytes(b"not a video")
    os.mkfifo(folder / "pipe.mp4")
    code, err = _run("--source", str(folder), "--out", str(tmp_path / "out"), "--weights", str(tiny_weights))
    assert code == 2 and "bad.mp4" in caplog.text and "pipe.mp4" in caplog.text, err
    assert (tmp_path / "out" / "good.csv").exists() and not (tmp_path / "out" / "pipe.csv").exists()


def test_hostile_weights_metadata_is_one_line_and_allocates_nothing(tmp_path):
    import json as js

    from safetensors.numpy import save_file

    from sht_model.config import get_config

    cfg = js.loads(get_config("cpu-rt").to_json())
    for name, meta in (("huge", {**cfg, "channels": 30000}), ("zero", {**cfg, "feature_size": 0}),
                       ("type", {**cfg, "channels": "96"}), ("unknown", {**cfg, "colour": 1}),
                       ("notjson", None), ("missing", "absent")):
        path = tmp_path / f"{name}.safetensors"
        metadata = {"format": "shtrack-dhln/1"}
        if meta == "absent":
            pass
        elif meta is None:
            metadata["config"] = "{not json"
        else:
            metadata["config"] = js.dumps(meta)
        save_file({"x": np.zeros(1, np.float32)}, str(path), metadata=metadata)
        started = time.monotonic()
        code, err = _run("--source", "demo", "--weights", str(path), "--backend", "torch", "--quiet")
        assert code == 2 and "Traceback" not in err and str(path) in err, (name, err)
        assert time.monotonic() - started < 10, name


@pytest.mark.slow
def test_sighup_and_sigterm_end_the_run_with_outputs_finalised(tmp_path, tiny_weights):
    clip = write_video(tmp_path / "long.mp4", astronaut_scene(400, lambda i: [(160, 120)], 40))
    for sig, code in ((signal.SIGHUP, 129), (signal.SIGTERM, 130)):
        out = tmp_path / f"o{code}.csv"
        proc = subprocess.Popen([sys.executable, "-m", "tracker.cli", "--source", str(clip), "--csv", str(out),
                                 "--weights", str(tiny_weights), "--quiet"], cwd=REPO, stderr=subprocess.PIPE)
        partial = out.with_name(out.name + ".partial")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (partial.exists() and partial.read_text().count("\n") > 3):
            time.sleep(0.05)
        proc.send_signal(sig)
        assert proc.wait(60) == code
        rows = _rows(out)
        assert rows and not partial.exists() and len({r["frame"] for r in rows}) < 400
        assert json.loads(out.with_name(f"o{code}.summary.json").read_text())["interrupted"] is True


# --- the Python API fails early ------------------------------------------------------------------------------

def test_track_raises_at_the_call_for_a_bad_weights_path_or_source(tmp_path):
    from sht_model.errors import WeightsError
    from tracker import track
    from tracker.sources import SourceError

    with pytest.raises(WeightsError):
        track("demo", weights=tmp_path / "missing.safetensors")      # no next() needed
    with pytest.raises(SourceError):
        track(str(tmp_path / "missing.mp4"))


def test_from_pretrained_and_update_track_one_image_at_a_time():
    from tracker import FaceTracker
    from tracker.demo import demo_frames

    tracker = FaceTracker.from_pretrained("cpu-rt")
    faces = [tracker.update(image) for image in list(demo_frames())[:3]]
    assert all(len(f) == 1 and f.xy.shape == (1, 68, 2) for f in faces)
    assert len({int(f.face_id[0]) for f in faces}) == 1 and faces[-1].model.tolist() == ["cpu-rt"]
    with pytest.raises(ValueError, match="unknown model"):
        FaceTracker.from_pretrained("cpu-huge")


def test_onnx_runtime_on_cuda_without_its_gpu_build_is_one_line():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed: the gpu test runs instead")
    code, err = _run("--source", "demo", "--backend", "onnxruntime", "--device", "cuda", "--quiet")
    assert code == 2 and "onnxruntime-gpu" in err and len(err.strip().splitlines()) == 1


@pytest.mark.gpu
def test_onnx_runtime_on_cuda_tracks_the_demo(tmp_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("needs onnxruntime-gpu and a CUDA device")
    code, err = _run("--source", "demo", "--backend", "onnxruntime", "--device", "cuda", "--csv",
                     str(tmp_path / "g.csv"), "--quiet")
    assert code == 0, err
    assert sum(r["success"] == "1" for r in _rows(tmp_path / "g.csv")) >= 95


def test_progress_off_a_terminal_is_a_log_line_and_a_batch_counts_frames_over_all_videos(tmp_path, tiny_weights,
                                                                                      monkeypatch, capsys):
    from tracker import ui

    monkeypatch.setattr(ui, "LOG_EVERY_S", 0.0)
    clip = _clip(tmp_path, n=8)
    code, err = _run("--source", str(clip), "--csv", str(tmp_path / "o.csv"), "--weights", str(tiny_weights))
    assert code == 0 and f"{clip}: 1/8 frames (12.5%)" in err and "ETA" in err, err
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b"):
        _clip(folder, n=6, name=f"{name}.mp4")
    code, err = _run("--source", str(folder), "--out", str(tmp_path / "out"), "--weights", str(tiny_weights))
    assert code == 0 and "batch (0/2 videos): 1/12 frames" in err and "batch (1/2 videos): 12/12 frames" in err, err


def test_a_video_without_a_decodable_frame_is_bad_input_not_a_partial_run(tmp_path, tiny_weights):
    """Its header promises frames, none decodes: exit 2 (bad input), not 3 with an empty CSV."""
    clip = _clip(tmp_path, n=10)
    data = bytearray(clip.read_bytes())
    start, moov = data.find(b"mdat") + 4, data.find(b"moov")
    end = moov - 4 if moov > start else len(data)
    data[start:end] = bytes(end - start)          # every frame's bytes zeroed; the index that promises them kept
    clip.write_bytes(bytes(data))
    code, err = _run("--source", str(clip), "--csv", str(tmp_path / "o.csv"), "--weights", str(tiny_weights),
                     "--quiet")
    assert code == 2 and ("no decodable frame" in err or "cannot decode" in err), err
    assert not (tmp_path / "o.csv").exists()


def test_running_out_of_threads_is_an_error_not_damaged_frames():
    import errno

    from tracker.sources import _resource_error

    assert _resource_error(OSError(errno.EAGAIN, "Resource temporarily unavailable"))
    assert _resource_error(OSError(errno.ENOMEM, "Cannot allocate memory"))
    assert not _resource_error(ValueError("bad frame"))


def test_the_summary_names_damaged_frames_and_an_early_end(tmp_path, tiny_weights):
    clip = _clip(tmp_path, n=40)
    data = bytearray(clip.read_bytes())
    start = data.find(b"mdat") + 4
    for k in range(start + 3000, min(len(data) - 2000, start + 9000), 97):
        data[k] ^= 0xFF                                  # bytes overwritten mid-file
    clip.write_bytes(bytes(data))
    out = tmp_path / "o.csv"
    code, err = _run("--source", str(clip), "--csv", str(out), "--weights", str(tiny_weights), "--quiet")
    summary = json.loads((tmp_path / "o.summary.json").read_text())
    assert code in (0, 3) and summary.get("warnings"), (code, err, summary.get("warnings"))
    assert any("damaged" in w or "ended early" in w for w in summary["warnings"])


def test_an_output_deleted_under_the_run_is_an_error_not_a_success(tmp_path):
    import shutil

    from tracker.sinks import CsvSink, OutputError

    folder = tmp_path / "od"
    sink = CsvSink(folder / "o.csv")
    sink.__enter__()
    shutil.rmtree(folder)
    with pytest.raises(OutputError, match="deleted while the run wrote it"):
        sink.__exit__(None, None, None)


def test_resume_refuses_another_model_and_a_stream_output(tmp_path, tiny_weights, bundled_weights):
    clip = _clip(tmp_path, n=12)
    out = tmp_path / "o.csv"
    _interrupted(tmp_path, tiny_weights, clip, out)
    before = out.read_bytes()
    code, err = _run("--source", str(clip), "--csv", str(out), "--weights", str(bundled_weights), "--resume",
                     "--quiet")
    assert code == 2 and "another model" in err, err
    assert out.read_bytes() == before
    code, err = _run("--source", str(clip), "--csv", "-", "--weights", str(tiny_weights), "--resume", "--quiet")
    assert code == 2 and "--resume continues a file" in err


def test_onnx_runtime_failing_mid_inference_is_a_one_line_backend_error(bundled_weights):
    from sht_model.errors import BackendError
    from tracker.backends import load_backend

    backend = load_backend(bundled_weights, "onnxruntime")
    with pytest.raises(BackendError, match="ONNX Runtime failed"):
        backend.infer(np.zeros((1, 3, 7, 7), np.float32))        # a shape the graph cannot take


def test_as_keypoints_needs_supervision_and_says_so():
    import importlib.util

    from tracker.types import Faces

    faces = Faces(np.zeros((1, 68, 2)), np.ones((1, 68)), np.zeros((1, 4)), np.array([4]), np.array([True]))
    if importlib.util.find_spec("supervision") is None:
        with pytest.raises(ImportError, match="pip install supervision"):
            faces.as_keypoints()
    else:
        keypoints = faces.as_keypoints()
        assert keypoints.xy.shape == (1, 68, 2) and list(keypoints.class_id) == [4]
