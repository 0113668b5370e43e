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
import errno
import logging
import signal
import sys
from pathlib import Path

log = logging.getLogger("shtrack")

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
    from .smoothing import MODES

    trk.add_argument("--smooth", default=defaults.smooth, choices=MODES,
                     help="landmark smoothing: rts = zero-lag smoothing that holds each frame back --smooth-lag "
                          "frames; one-euro = a live filter without delay; auto = rts, held back "
                          f"{defaults.rts.lag} frames in files and {defaults.rts.live_lag} on webcams and URLs "
                          "(README, Results)")
    trk.add_argument("--smooth-lag", type=_at_least(0, int), default=None, metavar="N",
                     help=f"frames of the future rts waits for (default {defaults.rts.lag} for files, "
                          f"{defaults.rts.live_lag} for live sources)")
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
        train = _checkout_module("train.__main__", "training")
        return 2 if train is None else train.main(argv[1:], prog="shtrack train")
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


def _checkout_module(name: str, what: str):
    """A module of the source checkout's `train` package, or None after a one-line error. Looked up by name when
    the command runs: the tracker itself never imports training code (tests/test_layers.py), and the installed
    wheel does not carry it."""
    import importlib

    # An editable install puts only the listed packages on sys.path; `train` sits beside them in the checkout.
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "train" / "__init__.py").is_file() and str(checkout) not in sys.path:
        sys.path.append(str(checkout))
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        print(f"shtrack: error: {what} runs from a source checkout with the [train] extra "
              f"(pip install -e '.[train]'): {exc}", file=sys.stderr)
        return None


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _logging(quiet: bool) -> None:
    from rich.logging import RichHandler

    from rich.console import Console

    # Diagnostics go to stderr: stdout carries data only when asked for (`--csv -`, `--jsonl -`).
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=Console(stderr=True), show_path=False, show_time=False)])


def _tracker_options(args):
    import dataclasses

    from .pipeline import TrackerOptions

    defaults = TrackerOptions()
    return TrackerOptions(max_faces=args.max_faces, min_face=args.min_face, detector=args.detector,
                          detect_every=args.detect_every, min_confidence=args.min_confidence,
                          cut_threshold=args.cut_threshold, smooth=args.smooth,
                          rts=defaults.rts if args.smooth_lag is None else
                          dataclasses.replace(defaults.rts, lag=args.smooth_lag, live_lag=args.smooth_lag),
                          hallucinate=args.save_faces is not None)


def _outputs(args):
    from .run import Outputs

    return Outputs(csv=args.csv, jsonl=args.jsonl, video=args.save_video, faces=args.save_faces,
                   faces_every=args.save_faces_every, show=args.show, missing_rows=not args.no_missing_rows,
                   resume=args.resume, quiet=args.quiet)


def run(args) -> int:
    from .backends import load_backend
    from .run import run_batch, run_source
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
    options, outputs = _tracker_options(args), _outputs(args)
    if videos and args.ray:
        from .cluster import run_batch_ray

        model = {"weights": args.weights, "kind": args.backend, "device": args.device, "threads": args.threads}
        return run_batch_ray(videos, args.out, args.ray, model, options, outputs).exit_code
    backend = load_backend(args.weights, args.backend, args.device, args.threads,
                           faces=args.save_faces is not None)
    if videos:
        return run_batch(videos, args.out, backend, options, outputs, args.threads).exit_code
    return run_source(str(args.source), backend, options, outputs, args.threads)


def export_parser() -> argparse.ArgumentParser:
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
        quantize = _checkout_module("train.quantize", "--int8 calibrates on training faces")
        if quantize is None:
            return 2
        try:
            print(quantize.export_int8(model, args.int8, args.calibration_data, args.calibration_samples))
        except ValueError as exc:     # DatasetError, or an image of the calibration set that cannot be decoded
            print(f"shtrack: error: {exc}", file=sys.stderr)
            return 2
    if args.tensorrt:
        try:
            print(export_tensorrt(model, args.tensorrt, with_face=not args.heatmaps_only))
        except RuntimeError as exc:
            print(f"shtrack: error: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
