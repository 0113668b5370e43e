"""`shtrack`: track faces in a video source and write landmark CSVs / JSON lines / annotated video.

    shtrack --source demo                          # bundled clip -> shtrack_out/demo.csv + demo_annotated.mp4
    shtrack --source clip.mp4 --csv out.csv --save-video out.mp4
    shtrack --source DIR_OF_VIDEOS --out DIR       # batch: one CSV per video
    shtrack --source webcam --show
    shtrack train dhln ...                         # training (python -m train)
    shtrack export --weights W.safetensors --onnx W.onnx
    shtrack export --weights W.safetensors --int8 W-int8.onnx --calibration-data ../shared/data/300w_train
Exit codes: 0 success, 2 bad input, 3 the input ended early (outputs partial), 4 writing outputs failed (disk full, I/O error; rows so far kept),
130 interrupted (outputs written so far are kept and finalised).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import signal
import sys
from pathlib import Path

log = logging.getLogger("shtrack")

EXIT_PARTIAL = 3                                    # the input ended early: outputs hold what was read
EXIT_OUTPUT_FAILED = 4                              # disk full or an I/O error while writing outputs
OUTPUT_FAILURES = {errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG}


def build_parser() -> argparse.ArgumentParser:
    from .backends import BUNDLED, KINDS

    p = argparse.ArgumentParser(prog="shtrack", description=__doc__.split("\n")[0],
                                epilog="\n".join(__doc__.split("\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("input")
    src.add_argument("--source", default="demo",
                     help="demo | webcam | device index | video file | RTSP/HTTP URL | folder of images or videos")
    out = p.add_argument_group("outputs")
    out.add_argument("--csv", type=Path, help="landmark CSV (OpenFace columns, then the face box)")
    out.add_argument("--jsonl", type=Path, help="JSON lines, one frame per line, with per-landmark confidence")
    out.add_argument("--save-video", type=Path, help="annotated MP4")
    out.add_argument("--save-faces", type=Path, metavar="DIR", help="hallucinated faces of each track as PNG")
    out.add_argument("--save-faces-every", type=_at_least(1, int), default=10, metavar="N",
                     help="with --save-faces: one PNG per track every N frames")
    out.add_argument("--out", type=Path, metavar="DIR", help="batch mode: one CSV per video of --source DIR")
    out.add_argument("--no-missing-rows", action="store_true", help="no success=0 row for frames without a face")
    out.add_argument("--resume", action="store_true", help="continue an interrupted CSV after its last frame")
    out.add_argument("--ray", metavar="ADDRESS", help="batch mode on a Ray cluster: auto | local | ray://host:port")
    out.add_argument("--show", action="store_true", help="live window (needs a display and opencv-python)")
    out.add_argument("--quiet", action="store_true", help="no progress or summary output")
    model = p.add_argument_group("model")
    which = model.add_mutually_exclusive_group()
    which.add_argument("--weights", type=Path, help="DHLN weights (.safetensors or exported .onnx); default: bundled")
    which.add_argument("--model", choices=sorted(BUNDLED), help="bundled weights by name (default cpu-rt; "
                       "cpu-fast: one stack, faster, less accurate: MODEL_CARD.md)")
    model.add_argument("--backend", default="auto", choices=KINDS,
                       help="auto: TensorRT with CUDA and torch-tensorrt, else ONNX Runtime")
    model.add_argument("--device", default="cpu", help="cpu | cuda[:N] (torch backend)")
    model.add_argument("--threads", type=int, default=0, help="inference threads (0 = runtime default)")
    from .detector import DETECTORS
    from .pipeline import TrackerOptions

    defaults = TrackerOptions()
    trk = p.add_argument_group("tracking")
    trk.add_argument("--max-faces", type=_at_least(0, int), default=defaults.max_faces, help="0 = no limit")
    trk.add_argument("--min-face", type=_at_least(4, float), default=defaults.min_face, metavar="PX",
                     help=f"smallest face width (landmark box) to look for (default {defaults.min_face:g}; "
                          "larger is cheaper on wide frames)")
    trk.add_argument("--detector", default=defaults.detector, choices=sorted(DETECTORS),
                     help="face detector (yunet: learned, few false faces; haar: OpenCV's cascade)")
    trk.add_argument("--detect-every", type=_at_least(1, int), default=defaults.detect_every, metavar="N",
                     help="search every part of the frame for new faces once per N frames (the cost is spread "
                          "over them; the first frame and shot changes are searched whole)")
    trk.add_argument("--min-confidence", type=_at_least(0.0), default=defaults.min_confidence,
                     help="mean heatmap peak below which a frame counts as a miss")
    trk.add_argument("--cut-threshold", type=_at_least(0, float), default=defaults.cut_threshold,
                     help="shot-change test: thumbnail difference (0-255) that ends every track; 0 = off")
    trk.add_argument("--smooth", default="none", choices=["kalman", "none"],
                     help="kalman: steadier static faces, but it lags moving ones (README, Results)")
    trk.add_argument("--kalman-measurement", type=_at_least(0.0), default=None, help="measurement noise / face size")
    trk.add_argument("--kalman-process", type=_at_least(0.0), default=None, help="process noise / face size")
    return p


def _at_least(lowest: float, kind=float):
    """argparse type: a number >= lowest (bad values are a usage error, exit 2)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not value >= lowest:    # also refuses nan
            raise argparse.ArgumentTypeError(f"must be a number >= {lowest:g}, not {text}")
        if value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be finite, not {text}")
        return value
    return parse


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "train":
        try:
            from train.__main__ import main as train_main
        except ImportError as exc:
            print(f"shtrack: error: training runs from a source checkout with the [train] extra "
                  f"(pip install -e '.[train]'; then python -m train): {exc}", file=sys.stderr)
            return 2
        return train_main(argv[1:], prog="shtrack train")
    if argv and argv[0] == "export":
        try:
            import torch  # noqa: F401
        except ImportError:
            print("shtrack: error: export needs torch: pip install 'shtrack[torch]'", file=sys.stderr)
            return 2
        try:
            return export_main(argv[1:])
        except OSError as exc:
            print(f"shtrack: error: {exc}", file=sys.stderr)
            return 2
    args = build_parser().parse_args(argv)
    if args.model:
        from .backends import BUNDLED

        args.weights = BUNDLED[args.model]
    _logging(args.quiet)
    from sht_model.errors import BackendError, WeightsError

    from .sources import SourceError

    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return run(args)
    except OSError as exc:
        if exc.errno in OUTPUT_FAILURES:   # the disk, not the input: its own exit code; rows so far are kept
            print(f"shtrack: error: writing output failed ({exc.strerror}: {exc.filename or ''}); "
                  "the rows written before it are kept", file=sys.stderr)
            return EXIT_OUTPUT_FAILED
        print(f"shtrack: error: {exc}", file=sys.stderr)
        return 2
    except (SourceError, WeightsError, BackendError) as exc:
        print(f"shtrack: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("shtrack: interrupted; outputs written so far are complete", file=sys.stderr)
        return 130


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _logging(quiet: bool) -> None:
    from rich.logging import RichHandler

    from rich.console import Console

    # Diagnostics go to stderr: stdout carries data only when asked for (`--csv -`, `--jsonl -`).
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=Console(stderr=True), show_path=False, show_time=False)])


def _options(args):
    import dataclasses

    from .pipeline import TrackerOptions
    from .smoothing import KalmanParams

    kalman = KalmanParams()
    if args.kalman_measurement is not None:
        kalman = dataclasses.replace(kalman, measurement=args.kalman_measurement)
    if args.kalman_process is not None:
        kalman = dataclasses.replace(kalman, process=args.kalman_process)
    return TrackerOptions(max_faces=args.max_faces, min_face=args.min_face, detector=args.detector,
                          detect_every=args.detect_every, min_confidence=args.min_confidence,
                          cut_threshold=args.cut_threshold, smooth=args.smooth, kalman=kalman,
                          hallucinate=args.save_faces is not None)


def run(args) -> int:
    from .backends import load_backend
    from .sources import VIDEO_EXTS, SourceError

    source = Path(str(args.source))
    videos = sorted(p for p in source.iterdir() if p.suffix.lower() in VIDEO_EXTS) if source.is_dir() else []
    if args.out is not None and not videos:
        raise SourceError(f"{args.source}: --out needs a folder of videos ({', '.join(VIDEO_EXTS)})")
    if videos and args.out is None:
        raise SourceError(f"{args.source}: a folder of videos needs --out DIR (one CSV per video)")
    if videos and (args.jsonl or args.save_video or args.save_faces or args.csv):
        raise SourceError(f"{args.source}: batch mode writes one CSV per video into --out; --csv, --jsonl, "
                          "--save-video and --save-faces name single files: run videos one by one for those")
    if args.ray and not videos:
        raise SourceError(f"{args.source}: --ray needs --source DIR_OF_VIDEOS --out DIR")
    if videos and args.ray:
        from .cluster import run_batch_ray

        return run_batch_ray(args, videos, args.ray)
    backend = load_backend(args.weights, args.backend, args.device, args.threads,
                           faces=args.save_faces is not None)
    if videos:
        return run_batch(args, videos, backend)
    return run_one(args, str(args.source), backend)


def _default_outputs(args, name: str) -> None:
    """With no output flag, a file source writes shtrack_out/<name>.csv and <name>_annotated.mp4."""
    if any([args.csv, args.jsonl, args.save_video, args.save_faces, args.show]):
        return
    stem = "demo" if name == "demo" else Path(name).stem
    args.csv = Path("shtrack_out") / f"{stem}.csv"
    if not args.resume:   # an annotated video cannot be resumed
        args.save_video = Path("shtrack_out") / f"{stem}_annotated.mp4"


def run_one(args, spec: str, backend) -> int:
    from .pipeline import FaceTracker, run_frames
    from .sinks import CsvSink, FaceDumpSink, JsonlSink, VideoSink, WindowSink
    from .sources import open_source
    from .ui import Monitor

    if args.resume and args.save_video:
        from .sources import SourceError

        raise SourceError(f"{args.save_video}: --resume cannot continue an annotated video (it would hold only the "
                          "resumed part); resume without --save-video")
    src = open_source(spec)
    if not src.live:
        _default_outputs(args, spec)
    skip_until, last_id = _resume_point(args.csv) if args.resume and args.csv else (0, -1)
    if args.resume and args.jsonl:
        _trim_jsonl(args.jsonl, skip_until)
    # After a resume, tracks are new: their ids continue above the CSV's, so no id names two people.
    tracker = FaceTracker(backend, _options(args), args.threads, first_id=last_id + 1)
    with contextlib.ExitStack() as stack:
        stack.enter_context(src)
        sinks = []
        if args.show:   # first: a machine without a GUI fails before any output file is touched
            sinks.append(stack.enter_context(WindowSink()))
        if args.csv:
            sinks.append(stack.enter_context(CsvSink(args.csv, not args.no_missing_rows, resume=args.resume,
                                                     file_column=src.photos)))
        if args.jsonl:
            sinks.append(stack.enter_context(JsonlSink(args.jsonl, resume=args.resume)))
        if args.save_video:
            sinks.append(stack.enter_context(VideoSink(args.save_video, src.fps or 25.0)))
        if args.save_faces:
            sinks.append(stack.enter_context(FaceDumpSink(args.save_faces, args.save_faces_every)))
        monitor = stack.enter_context(Monitor(src.name, src.total, src.live, args.quiet))
        for result in run_frames(src, tracker, skip_until):
            for sink in sinks:
                sink.append(result)
            monitor.update(result)
    if src.skipped:
        log.warning("%s: %d damaged frames/packets skipped", src.name, src.skipped)
    if src.ended_early:
        log.warning("%s: ended early, after frame %d: the outputs are partial", src.name, src.frames_read)
        return EXIT_PARTIAL
    for label, path in (("csv", args.csv), ("jsonl", args.jsonl), ("video", args.save_video), ("faces", args.save_faces)):
        if path and not args.quiet:
            log.info("%s: %s", label, path)
    return 0


def _resume_point(csv_path: Path) -> tuple[int, int]:
    """(last complete frame, highest face id) of an interrupted CSV (final or .partial); a trailing half row
    and the rows of the last frame (maybe incomplete) are cut off."""
    partial = csv_path.with_name(csv_path.name + ".partial")
    path = partial if partial.exists() else csv_path
    if not path.exists():
        return 0, -1
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    if cut < len(data):
        with open(path, "r+b") as f:
            f.truncate(cut)
        data = data[:cut]
    lines = data.decode(errors="replace").splitlines()
    if len(lines) < 2:
        return 0, -1
    try:
        last = int(lines[-1].split(",", 1)[0])
    except ValueError:
        from .sources import SourceError

        raise SourceError(f"{path}: cannot --resume, the last row does not start with a frame number") from None
    # Rows of the last frame may be incomplete if the run died between faces: redo that frame.
    keep = [ln for ln in lines if not ln.startswith(f"{last},")]
    path.write_text("\n".join(keep) + "\n")
    ids = [int(ln.split(",", 2)[1]) for ln in keep[1:] if ln.count(",") > 1 and ln.split(",", 2)[1].lstrip("-").isdigit()]
    return last - 1, max(ids, default=-1)


def _trim_jsonl(path: Path, last_kept: int) -> None:
    """Drop the JSONL records after frame `last_kept` (and a half-written last line) before a resume."""
    import json

    partial = path.with_name(path.name + ".partial")
    path = partial if partial.exists() else path
    if not path.exists():
        return
    keep = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            if json.loads(line)["frame"] <= last_kept:
                keep.append(line)
        except (ValueError, KeyError, TypeError):
            break
    path.write_text("".join(ln + "\n" for ln in keep))


def run_batch(args, videos: list[Path], backend) -> int:
    """One CSV per video into --out; a bad file is logged and skipped, the rest go on."""
    from rich.progress import Progress

    from .sources import SourceError

    args.out.mkdir(parents=True, exist_ok=True)
    failed, partial = [], []
    names = batch_names(videos)
    with Progress(disable=args.quiet, transient=True) as progress:
        task = progress.add_task("videos", total=len(videos))
        for video in videos:
            one = argparse.Namespace(**vars(args))
            one.csv, one.jsonl, one.save_video, one.save_faces, one.show = args.out / f"{names[video]}.csv", None, None, None, False
            one.quiet = True
            try:
                if run_one(one, str(video), backend) == EXIT_PARTIAL:
                    partial.append(video)
            except SourceError as exc:
                log.error("skipped %s", exc)
                failed.append(video)
            progress.advance(task)
    if not args.quiet:
        log.info("%d of %d videos -> %s", len(videos) - len(failed), len(videos), args.out)
    if failed and len(failed) == len(videos):
        return 2
    return EXIT_PARTIAL if partial else 0


def batch_names(videos: list[Path]) -> dict[Path, str]:
    """Output stem per video: its stem, or its whole name where two videos share a stem (a.mov, a.mp4)."""
    stems = [v.stem for v in videos]
    return {v: v.name if stems.count(v.stem) > 1 else v.stem for v in videos}


def export_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="shtrack export", description="export DHLN weights for inference runtimes")
    p.add_argument("--weights", type=Path, help="safetensors file (default: bundled)")
    p.add_argument("--onnx", type=Path, help="write ONNX (dynamic batch)")
    p.add_argument("--tensorrt", type=Path, help="write a TensorRT FP16 TorchScript module (CUDA)")
    p.add_argument("--heatmaps-only", action="store_true", help="no hallucinated-face output (the tracker's graph)")
    p.add_argument("--int8", type=Path, help="write an int8 ONNX model (heatmaps only; needs --calibration-data)")
    p.add_argument("--calibration-data", type=Path,
                   help="300W-layout folder; int8 ranges are calibrated on its training split (held-out faces unused)")
    p.add_argument("--calibration-samples", type=_at_least(1, int), default=200,
                   help="training-split faces whose activations set the int8 ranges")
    args = p.parse_args(argv)
    if not (args.onnx or args.int8 or args.tensorrt):
        p.error("nothing to export: give --onnx, --int8 or --tensorrt")
    if args.int8 and not args.calibration_data:
        p.error("--int8 needs --calibration-data (a 300W-layout folder of labelled faces)")
    from sht_model.export import export_onnx, export_tensorrt
    from sht_model.errors import WeightsError
    from sht_model.weights import load_model

    from .backends import DEFAULT_WEIGHTS

    from .backends.onnx_backend import sha256_of

    weights = args.weights or DEFAULT_WEIGHTS
    try:
        model = load_model(weights)
    except WeightsError as exc:
        print(f"shtrack: error: {exc}", file=sys.stderr)
        return 2
    if args.onnx:
        print(export_onnx(model, args.onnx, with_face=not args.heatmaps_only, source_sha256=sha256_of(weights)))
    if args.int8:
        import tempfile

        from sht_model.export import quantize_onnx_int8
        try:
            from train.data import calibration_inputs, split_records
            from train.readers import DatasetError, read_300w
        except ImportError:
            print("shtrack: error: --int8 calibrates on training faces with the train package: run it from a "
                  "source checkout with the [train] extra", file=sys.stderr)
            return 2

        try:
            train, _ = split_records(read_300w(args.calibration_data))
        except DatasetError as exc:
            print(f"shtrack: error: {exc}", file=sys.stderr)
            return 2
        try:
            inputs = list(calibration_inputs(train, model.cfg, args.calibration_samples))
        except ValueError as exc:     # an image of the calibration set that cannot be decoded
            print(f"shtrack: error: {exc}", file=sys.stderr)
            return 2
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = export_onnx(model, Path(tmp) / "fp32.onnx", with_face=False)
            print(quantize_onnx_int8(fp32, args.int8, inputs))
    if args.tensorrt:
        try:
            print(export_tensorrt(model, args.tensorrt, with_face=not args.heatmaps_only))
        except RuntimeError as exc:
            print(f"shtrack: error: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
