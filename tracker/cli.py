"""`shtrack`: track faces in a video source and write landmark CSVs / JSON lines / annotated video.

    shtrack --source demo                          # bundled clip -> shtrack_out/demo.csv + demo_annotated.mp4
    shtrack --source clip.mp4 --csv out.csv --save-video out.mp4
    shtrack --source DIR_OF_VIDEOS --out DIR       # batch: one CSV per video
    shtrack --source webcam --show
    shtrack train dhln ...                         # training (python -m train)
    shtrack export --weights W.safetensors --onnx W.onnx
    shtrack convert run.csv run.parquet            # landmark tables between CSV and Parquet
    shtrack export --weights W.safetensors --int8 W-int8.onnx --calibration-data ../shared/data/300w_train
Exit codes: 0 success, 2 bad input (or a file of a batch failed), 3 the input ended early (outputs partial),
4 writing outputs failed (disk full, I/O error; rows so far kept), 129 hung up (SIGHUP), 130 interrupted (Ctrl-C,
SIGTERM); interrupted runs keep and finalise the outputs written so far.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from enum import IntEnum
from pathlib import Path

log = logging.getLogger("shtrack")


class ExitCode(IntEnum):
    """Every exit code of `shtrack`, in one place (docs/failures.md)."""
    OK = 0
    BAD_INPUT = 2            # a usage error, an input or weights file that cannot be used, a batch file that failed
    PARTIAL = 3              # the input ended early: the outputs hold what was read
    OUTPUT_FAILED = 4        # disk full or an I/O error while writing outputs
    HANGUP = 129             # SIGHUP
    INTERRUPTED = 130        # Ctrl-C or SIGTERM


EXIT_OUTPUT_FAILED = ExitCode.OUTPUT_FAILED


class Interrupted(KeyboardInterrupt):
    """A signal that ends the run as Ctrl-C does (outputs finalised), with its own exit code."""

    def __init__(self, code: ExitCode):
        super().__init__(code.name.lower())
        self.code = code


class _Help(argparse.RawDescriptionHelpFormatter):
    """Raw description and epilog; every option's default shown (unless its help already says it, or it has none)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if "default" in text or default is None or default is False or default == argparse.SUPPRESS \
                or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


MAX_THREADS = 4 * (os.cpu_count() or 1)     # a few times the cores: more only costs (and can exhaust pids)


MAX_FOLLOW = 3600.0   # seconds a growing file is waited for at its end

MAX_SMOOTH_LAG = 50    # frames held back by rts: each holds a decoded frame (50 of 1080p: ~300 MB)


def build_parser() -> argparse.ArgumentParser:
    from .backends import KINDS, WEIGHTS

    from . import __version__

    p = argparse.ArgumentParser(prog="shtrack", description=__doc__.split("\n")[0],
                                epilog="\n".join(__doc__.split("\n")[1:]), formatter_class=_Help)
    p.add_argument("--version", action="version", version=f"shtrack {__version__}")
    src = p.add_argument_group("input")
    src.add_argument("--source", required=True,
                     help="demo | webcam | device index | video file | RTSP/HTTP URL | folder of images or videos")
    src.add_argument("--start", metavar="POS", help="first frame to track: a frame number (250) or a time (90s, 1:30)")
    src.add_argument("--end", metavar="POS", help="last frame to track (a frame number, inclusive) or a time "
                     "(exclusive: --end 60s tracks the first minute)")
    src.add_argument("--max-frames", type=_number(1, int), metavar="N", help="track at most N frames")
    src.add_argument("--follow", type=_number(0, float, MAX_FOLLOW), default=0.0, metavar="SECONDS",
                     help="a video file still being written: read on as it grows, until no data has come for "
                     "SECONDS (without it, a file that grows while read ends the run with exit 3)")
    out = p.add_argument_group("outputs")
    out.add_argument("--csv", type=Path, help="landmark CSV (OpenFace columns, then the face box)")
    out.add_argument("--jsonl", type=Path, help="JSON lines, one frame per line, with per-landmark confidence")
    out.add_argument("--parquet", type=Path, help="the CSV's columns as Parquet, float32, for long runs (pip install "
                     "'shtrack[parquet]'); `shtrack convert` goes between the two")
    out.add_argument("--save-video", type=Path, help="annotated MP4")
    out.add_argument("--insets", type=_number(0, float, 1000), default=0.0, metavar="PX",
                     help="annotated video and window: faces narrower than PX get an enlarged inset beside them; 0 = none")
    out.add_argument("--save-faces", type=Path, metavar="DIR", help="hallucinated faces of each track as PNG")
    out.add_argument("--save-faces-every", type=_number(1, int, 10 ** 9), default=10, metavar="N",
                     help="with --save-faces: one PNG per track every N frames")
    out.add_argument("--out", type=Path, metavar="DIR", help="batch mode: one CSV per video of --source DIR")
    out.add_argument("--no-missing-rows", action="store_true", help="no success=0 row for frames without a face")
    out.add_argument("--resume", action="store_true", help="continue an interrupted CSV after its last frame")
    out.add_argument("--ray", metavar="ADDRESS", help="batch mode on a Ray cluster: auto | local | ray://host:port")
    out.add_argument("--show", action="store_true", help="live window (needs a display and opencv-python<5); the "
                     "outputs asked for are written as in any run (a file source with none gets the default CSV)")
    out.add_argument("--quiet", action="store_true", help="no progress or summary output")
    model = p.add_argument_group("model")
    which = model.add_mutually_exclusive_group()
    which.add_argument("--weights", type=Path, help="DHLN weights (.safetensors or exported .onnx); default: bundled")
    which.add_argument("--model", choices=sorted(WEIGHTS) + ["ladder"],
                       help="bundled weights by name, one model for every face (cpu-fast: one stack, faster, less "
                            "accurate: MODEL_CARD.md); ladder: each face to the cheapest model accurate at its size "
                            "(the default when its models are bundled); default: cpu-rt-int8 for a file on ONNX Runtime on the "
                            "CPU without --save-faces, else cpu-rt")
    model.add_argument("--backend", default="auto", choices=KINDS,
                       help="auto: TensorRT with CUDA and torch-tensorrt, else ONNX Runtime")
    model.add_argument("--device", default="cpu", help="cpu | cuda[:N]: torch, tensorrt, or onnxruntime with the "
                       "onnxruntime-gpu package (its CUDA / TensorRT providers)")
    model.add_argument("--workers", type=_number(1, int, MAX_THREADS), default=1, metavar="N",
                       help="track one video file in N processes (time segments, tracks joined at the boundaries; "
                            "with --csv only)")
    model.add_argument("--threads", type=_number(0, int, MAX_THREADS), default=0,
                       help=f"inference threads, at most {MAX_THREADS}; 0: the runtime chooses")
    from .detector import DETECTORS
    from .pipeline import TrackerOptions

    defaults = TrackerOptions()
    trk = p.add_argument_group("tracking")
    trk.add_argument("--max-faces", type=_number(0, int, 10_000), default=defaults.max_faces,
                     help="most faces tracked at once; 0 = no limit")
    trk.add_argument("--min-face", type=_number(4, float, 10_000), default=defaults.min_face, metavar="PX",
                     help="smallest face width (landmark box) to look for; larger is cheaper on wide frames")
    trk.add_argument("--detector", default=defaults.detector, choices=sorted(DETECTORS),
                     help="face detector (yunet: learned, few false faces; haar: OpenCV's cascade)")
    trk.add_argument("--detect-every", type=_number(1, int, 100_000), default=defaults.detect_every, metavar="N",
                     help="search every part of the frame for new faces once per N frames (the cost is spread "
                          "over them; the first frame and shot changes are searched whole)")
    trk.add_argument("--min-confidence", type=_number(0.0, float, 1.0), default=defaults.min_confidence,
                     help="mean heatmap peak below which a frame counts as a miss")
    trk.add_argument("--reliability", action="store_true",
                     help="success=1 also needs the face's predicted NME under the weights' reliability threshold "
                          "(their .reliability.json; MODEL_CARD.md)")
    trk.add_argument("--cut-threshold", type=_number(0, float, 255), default=defaults.cut_threshold,
                     help="shot-change test: thumbnail difference (0-255) that ends every track; 0 = off")
    pose = p.add_argument_group("head pose (pose_Tx..pose_Rz: the camera; default: OpenFace's guess from the frame)")
    for name, meaning in (("fx", "focal length x, px (default 500 * width / 640)"),
                          ("fy", "focal length y, px (default fx)"), ("cx", "principal point x, px (default: centre)"),
                          ("cy", "principal point y, px (default: centre)")):
        pose.add_argument(f"--{name}", type=_number(-1e6, float, 1e6), metavar="PX", help=meaning)
    from .smoothing import MODES

    trk.add_argument("--smooth", default=defaults.smooth, choices=MODES,
                     help="landmark smoothing: rts = zero-lag smoothing that holds each frame back --smooth-lag "
                          "frames; one-euro = a live filter without delay; auto = rts, held back "
                          f"{defaults.rts.lag} frames in files and {defaults.rts.live_lag} on webcams and URLs "
                          "(docs/results.md)")
    trk.add_argument("--smooth-lag", type=_number(0, int, MAX_SMOOTH_LAG), default=None, metavar="N",
                     help=f"frames of the future rts waits for, at most {MAX_SMOOTH_LAG} (default {defaults.rts.lag} "
                          f"for files, {defaults.rts.live_lag} for live sources)")
    return p


def _number(lowest: float, kind=float, highest: float | None = None):
    """argparse type: a number in [lowest, highest] (bad values are a usage error, exit 2). Integers may be
    written as 1e3 or 1000.0 when they are whole."""
    def parse(text: str):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
        if kind is int:
            if value != int(value):
                raise argparse.ArgumentTypeError(f"must be a whole number, not {text}")
            value = int(value)
        if value < lowest or (highest is not None and value > highest):
            bound = f"between {lowest:g} and {highest:g}" if highest is not None else f">= {lowest:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}, not {text}")
        return value
    return parse


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:      # a bare `shtrack` explains itself instead of running anything
        build_parser().print_help(sys.stderr)
        print("\nshtrack: give --source (try: shtrack --source demo)", file=sys.stderr)
        return ExitCode.BAD_INPUT
    if argv[0] == "train":
        return _checkout_command(["train", *argv[1:]], "training")
    if argv[0] == "export":
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
    if argv[0] == "convert":
        from .convert import main as convert_main

        return convert_main(argv[1:])
    if argv[0] == "track":
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    if args.model and args.model != "ladder":
        from .backends import WEIGHTS

        args.weights = WEIGHTS[args.model].file
    _logging(args.quiet)
    from sht_model.errors import BackendError, WeightsError

    from .sinks import WRITE_FAILURES
    from .sources import SourceError

    for sig, code in ((signal.SIGTERM, ExitCode.INTERRUPTED), (signal.SIGHUP, ExitCode.HANGUP)):
        signal.signal(sig, _interrupt_with(code))
    try:
        return run(args)
    except BrokenPipeError:
        # The reader of stdout has what it wanted (`| head`): end quietly, like other Unix tools.
        _silence_stdout()
        return ExitCode.OK
    except OSError as exc:
        if exc.errno in WRITE_FAILURES:   # the disk, not the input: its own exit code; rows so far are kept
            print(f"shtrack: error: writing {exc.filename or 'an output'} failed ({exc.strerror}); "
                  "the rows written before it are kept", file=sys.stderr)
            return ExitCode.OUTPUT_FAILED
        print(f"shtrack: error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except (SourceError, WeightsError, BackendError, ValueError) as exc:
        print(f"shtrack: error: {str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except KeyboardInterrupt as exc:
        print("shtrack: interrupted; outputs written so far are complete", file=sys.stderr)
        return getattr(exc, "code", ExitCode.INTERRUPTED)


def _interrupt_with(code: ExitCode):
    def handler(signum, frame):
        raise Interrupted(code)
    return handler


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _checkout_command(args: list[str], what: str) -> int:
    """`python -m <args>` in the source checkout this tracker was installed from (an editable install): the
    training code is a checkout's, not the installed package's, and the tracker never imports it
    (tests/test_layers.py). Outside a checkout: one line saying so."""
    import subprocess

    checkout = Path(__file__).resolve().parents[1]
    if not (checkout / "train" / "__init__.py").is_file():
        print(f"shtrack: error: {what} runs from a source checkout (git clone, then pip install -e '.[train]' and "
              "python -m train ...); this install has no train package", file=sys.stderr)
        return ExitCode.BAD_INPUT
    try:
        return subprocess.run([sys.executable, "-m", *args], cwd=checkout).returncode
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED


def _logging(quiet: bool) -> None:
    from rich.logging import RichHandler

    from rich.console import Console

    # Diagnostics go to stderr: stdout carries data only when asked for (`--csv -`, `--jsonl -`).
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=Console(stderr=True), show_path=False, show_time=False)])


def _tracker_options(args):
    import dataclasses

    from .pipeline import TrackerOptions
    from .pose import Camera

    defaults = TrackerOptions()
    return TrackerOptions(max_faces=args.max_faces, min_face=args.min_face, detector=args.detector,
                          detect_every=args.detect_every, min_confidence=args.min_confidence,
                          cut_threshold=args.cut_threshold, smooth=args.smooth,
                          rts=defaults.rts if args.smooth_lag is None else
                          dataclasses.replace(defaults.rts, lag=args.smooth_lag, live_lag=args.smooth_lag),
                          hallucinate=args.save_faces is not None,
                          camera=Camera(args.fx, args.fy, args.cx, args.cy), use_reliability=args.reliability)


def _outputs(args):
    from .run import Outputs

    return Outputs(csv=args.csv, jsonl=args.jsonl, parquet=args.parquet, video=args.save_video, insets=args.insets, faces=args.save_faces,
                   faces_every=args.save_faces_every, show=args.show, missing_rows=not args.no_missing_rows,
                   resume=args.resume, quiet=args.quiet)


def run(args) -> int:
    from .backends import load_backend
    from .run import Span, run_batch, run_source
    from .sources import VIDEO_EXTS, SourceError, is_live

    span = Span.parse(args.start, args.end, args.max_frames)
    source = Path(str(args.source))
    videos = []
    if source.is_dir():
        for p in sorted(source.iterdir()):
            if p.suffix.lower() not in VIDEO_EXTS:
                continue
            if not p.is_file():     # a FIFO or device named like a video would block the batch
                log.warning("skipped %s: not a regular file", p)
                continue
            videos.append(p)
    if args.out is not None and not videos:
        raise SourceError(f"{args.source}: --out needs a folder of videos ({', '.join(VIDEO_EXTS)})")
    if videos and args.out is None:
        raise SourceError(f"{args.source}: a folder of videos needs --out DIR (one CSV per video)")
    if videos and (args.jsonl or args.parquet or args.save_video or args.save_faces or args.csv):
        raise SourceError(f"{args.source}: batch mode writes one CSV per video into --out; --csv, --jsonl, "
                          "--save-video and --save-faces name single files: run videos one by one for those")
    if args.follow and (videos or args.workers > 1 or source.is_dir()):
        raise SourceError(f"{args.source}: --follow reads one growing video file (not a folder, not with --workers)")
    if args.ray and not videos and args.workers <= 1:
        raise SourceError(f"{args.source}: --ray needs --source DIR_OF_VIDEOS --out DIR, or one file with --workers N")
    if args.weights is not None and not Path(args.weights).exists():
        raise SourceError(f"{args.weights}: weights file not found")
    options, outputs = _tracker_options(args), _outputs(args)
    if videos and args.ray:
        from .cluster import run_batch_ray

        model = {"weights": args.weights, "kind": args.backend, "device": args.device, "threads": args.threads}
        return run_batch_ray(videos, args.out, args.ray, model, options, outputs).exit_code

    from .backends import ladder_bundled, load_ladder

    if args.model == "ladder" and not ladder_bundled():
        raise SourceError("--model ladder: not every model of the ladder is bundled with this install")
    ladder = args.model == "ladder" or (args.weights is None and ladder_bundled())

    def backend():
        faces = args.save_faces is not None
        if ladder:
            return load_ladder(args.backend, args.device, args.threads, faces)
        return load_backend(args.weights, args.backend, args.device, args.threads, faces=faces,
                            live=is_live(args.source))

    if videos:
        return run_batch(videos, args.out, backend(), options, outputs, args.threads, span).exit_code
    if args.workers > 1:
        from .run import check_outputs
        from .segments import check, run_segments

        check(args)
        if not span.whole:
            raise SourceError("--workers tracks the whole file (no --start, --end or --max-frames with it)")
        check_outputs(outputs, str(args.source))
        return run_segments(str(args.source), args.csv, args.workers, options, args.weights, ladder, args.backend,
                            args.threads, ray_address=args.ray, resume=args.resume)
    return run_source(str(args.source), backend, options, outputs, args.threads, span, follow=args.follow)


def export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shtrack export", description="export DHLN weights for inference runtimes")
    p.add_argument("--weights", type=Path, help="safetensors file (default: bundled)")
    p.add_argument("--onnx", type=Path, help="write ONNX (dynamic batch)")
    p.add_argument("--tensorrt", type=Path, help="write a TensorRT FP16 TorchScript module (CUDA)")
    p.add_argument("--heatmaps-only", action="store_true", help="no hallucinated-face output (the tracker's graph)")
    p.add_argument("--int8", type=Path, help="write an int8 ONNX model (heatmaps only; needs --calibration-data)")
    p.add_argument("--calibration-data", type=Path,
                   help="300W-layout folder; int8 ranges are calibrated on its training split (held-out faces unused)")
    p.add_argument("--calibration-samples", type=_number(1, int, 100_000), default=200,
                   help="training-split faces whose activations set the int8 ranges")
    return p


def export_main(argv: list[str]) -> int:
    p = export_parser()
    args = p.parse_args(argv)
    if not (args.onnx or args.int8 or args.tensorrt):
        p.error("nothing to export: give --onnx, --int8 or --tensorrt")
    if args.int8 and not args.calibration_data:
        p.error("--int8 needs --calibration-data (a 300W-layout folder of labelled faces)")
    from sht_model.export import export_onnx, export_tensorrt
    from sht_model.errors import WeightsError
    from sht_model.weights import load_model

    from .backends import DEFAULT_TAG, WEIGHTS

    from .backends.onnx_backend import sha256_of

    weights = args.weights or WEIGHTS[DEFAULT_TAG].file
    written = [(flag, path) for flag, path in (("--onnx", args.onnx), ("--int8", args.int8),
                                                ("--tensorrt", args.tensorrt)) if path]
    real = {os.path.realpath(path) for _, path in written}
    if os.path.realpath(weights) in real:
        p.error(f"{weights}: an output would replace the weights it is exported from")
    if len(real) < len(written):
        p.error("two outputs name the same file")
    try:
        model = load_model(weights)
    except WeightsError as exc:
        print(f"shtrack: error: {exc}", file=sys.stderr)
        return 2
    if args.onnx:
        print(export_onnx(model, args.onnx, with_face=not args.heatmaps_only, source_sha256=sha256_of(weights)))
    if args.int8:
        # Calibration builds training-style inputs with the checkout's data pipeline: `python -m train.quantize`.
        code = _checkout_command(["train.quantize", "--weights", str(Path(weights).resolve()), "--out",
                                  str(args.int8.resolve()), "--calibration-data", str(args.calibration_data.resolve()),
                                  "--samples", str(args.calibration_samples)], "--int8 (it calibrates on training faces)")
        if code:
            return code
    if args.tensorrt:
        try:
            print(export_tensorrt(model, args.tensorrt, with_face=not args.heatmaps_only))
        except RuntimeError as exc:
            print(f"shtrack: error: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
