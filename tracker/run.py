"""One tracking run: source -> tracker -> smoothing -> sinks, with resume, frame ranges, default outputs and a
summary, over typed options.

    code = run_source("clip.mp4", backend, TrackerOptions(), Outputs(csv=Path("clip.csv")))
    report = run_batch(videos, Path("out"), backend, TrackerOptions(), Outputs(quiet=True))

`cli.py` turns flags into `TrackerOptions` + `Outputs` + `Span` and calls these; `cluster.py` runs `run_source`
per video on Ray workers, so a batch on Ray writes the same bytes as a serial one.

Outputs are a transaction: every output is checked (a usable path, none the input, no two the same) and locked
before any is opened, so a refused one leaves every file as it was; a resumed output is checked against the
summary of the run it continues (same source, model and options) under that lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .pipeline import FaceTracker, TrackerOptions, run_frames, smoothing_for
from .pose import HeadPose, pose_stage
from .sources import Source, SourceError, open_source

log = logging.getLogger("shtrack")

EXIT_PARTIAL = 3                                    # the input ended early: outputs hold what was read
SUMMARY_FORMAT = "shtrack-summary/1"


@dataclass(frozen=True)
class Outputs:
    """Where one run writes. With none of csv/jsonl/video/faces/show, a file source gets the defaults
    (`with_defaults`)."""
    csv: Path | None = None
    jsonl: Path | None = None
    parquet: Path | None = None              # the CSV's columns as Parquet (the [parquet] extra)
    video: Path | None = None                # annotated MP4
    faces: Path | None = None                # folder of hallucinated faces
    faces_every: int = 10
    show: bool = False                       # live window (writes the other outputs as any run does)
    missing_rows: bool = True                # a success=0 row for frames without a face
    resume: bool = False                     # continue an interrupted CSV after its last complete frame
    quiet: bool = False
    summary: bool = True                     # <csv stem>.summary.json beside the CSV (or the JSONL)
    insets: float = 0.0                      # annotated video / window: faces narrower than this get a zoomed inset

    def with_defaults(self, name: str) -> "Outputs":
        """shtrack_out/<name>.csv and <name>_annotated.mp4 when no file output was asked for (the live window is
        not one: `--show` on a file also writes the default CSV)."""
        if any([self.csv, self.jsonl, self.parquet, self.video, self.faces]):
            return self
        if self.show:
            stem = "demo" if name == "demo" else Path(name).stem
            return dataclasses.replace(self, csv=Path("shtrack_out") / f"{stem}.csv")
        stem = "demo" if name == "demo" else Path(name).stem
        video = None if self.resume else Path("shtrack_out") / f"{stem}_annotated.mp4"   # cannot be resumed
        return dataclasses.replace(self, csv=Path("shtrack_out") / f"{stem}.csv", video=video)

    def summary_path(self) -> Path | None:
        for path in (self.csv, self.jsonl, self.parquet):
            if path is not None and str(path) != "-" and self.summary:
                return path.with_name(path.name.rsplit(".", 1)[0] + ".summary.json")
        return None


@dataclass(frozen=True)
class Span:
    """Which frames of a file are tracked: from `start` to `end` (each a 1-based frame number, or seconds when
    `*_seconds`), at most `max_frames`. Frames before the start are decoded and dropped (frame numbers stay the
    file's)."""
    start: int = 1
    end: int | None = None
    start_seconds: float | None = None
    end_seconds: float | None = None
    max_frames: int | None = None

    def __post_init__(self):
        if self.start < 1 or (self.end is not None and self.end < self.start):
            raise ValueError(f"frame range {self.start}-{self.end}: the start is 1 or more and the end not before it")
        if (self.start_seconds is not None and self.end_seconds is not None
                and self.end_seconds <= self.start_seconds):
            raise ValueError(f"time range {self.start_seconds}-{self.end_seconds} s is empty")

    @classmethod
    def parse(cls, start: str | None = None, end: str | None = None, max_frames: int | None = None) -> "Span":
        """`--start` / `--end`: a frame number (`250`) or a time (`90s`, `1:30`, `1:02:03.5`)."""
        kw: dict = {"max_frames": max_frames}
        for name, text in (("start", start), ("end", end)):
            if text is None:
                continue
            value, is_time = parse_position(text)
            kw[f"{name}_seconds" if is_time else name] = value
        return cls(**kw)

    def frames(self, source):
        """The source's frames inside the span; stops reading at its end."""
        taken = 0
        for frame in source:
            if frame.index < self.start or (self.start_seconds is not None and frame.timestamp < self.start_seconds):
                continue
            if (self.end is not None and frame.index > self.end) or \
                    (self.end_seconds is not None and frame.timestamp >= self.end_seconds):
                return
            if self.max_frames is not None and taken >= self.max_frames:
                return
            taken += 1
            yield frame

    @property
    def whole(self) -> bool:
        return self == Span()


def parse_position(text: str) -> tuple[float, bool]:
    """'250' -> (250, False): a frame number; '90s', '1.5s', '1:30', '1:02:03.5' -> (seconds, True)."""
    t = text.strip()
    if re.fullmatch(r"\d+", t):
        return int(t), False
    if re.fullmatch(r"\d+(\.\d+)?s", t):
        return float(t[:-1]), True
    if re.fullmatch(r"\d+(:\d{1,2}){1,2}(\.\d+)?", t):
        seconds = 0.0
        for part in t.split(":"):
            seconds = seconds * 60 + float(part)
        return seconds, True
    raise ValueError(f"{text!r} is not a frame number (250) or a time (90s, 1:30, 1:02:03.5)")


def _sinks(outputs: Outputs, src: Source):
    from .sinks import CsvSink, FaceDumpSink, JsonlSink, ParquetSink, VideoSink, WindowSink

    from .annotate import LandmarkAnnotator

    annotator = LandmarkAnnotator(inset_below=outputs.insets)
    sinks = []
    if outputs.show:   # first: a machine without a GUI fails before any output file is touched
        sinks.append(WindowSink(annotator))
    if outputs.csv:
        sinks.append(CsvSink(outputs.csv, outputs.missing_rows, resume=outputs.resume, file_column=src.photos))
    if outputs.jsonl:
        sinks.append(JsonlSink(outputs.jsonl, resume=outputs.resume))
    if outputs.parquet:
        sinks.append(ParquetSink(outputs.parquet, outputs.missing_rows, file_column=src.photos))
    if outputs.video:
        sinks.append(VideoSink(outputs.video, src.fps or 25.0, annotator=annotator))
    if outputs.faces:
        sinks.append(FaceDumpSink(outputs.faces, outputs.faces_every))
    return sinks


def check_outputs(outputs: Outputs, spec: str) -> None:
    """No output is the input, and no two outputs are the same file (stdout aside): one line, before anything is
    opened."""
    from .sinks import OutputError

    named = [(flag, p) for flag, p in (("--csv", outputs.csv), ("--jsonl", outputs.jsonl), ("--parquet", outputs.parquet),
                                        ("--save-video", outputs.video), ("--save-faces", outputs.faces),
                                        ("summary", outputs.summary_path()))
             if p is not None and str(p) != "-"]
    source = Path(spec)
    inputs = [source.resolve()] if source.exists() else []
    seen: dict[Path, str] = {}
    for flag, path in named:
        real = Path(os.path.realpath(path))
        if real in inputs or (source.is_dir() and real.parent == source.resolve() and flag == "--save-faces"):
            raise OutputError(f"{path}: {flag} names the input {spec}; write the output elsewhere")
        if real in seen:
            raise OutputError(f"{path}: given both as {seen[real]} and as {flag}; each output needs its own file")
        seen[real] = flag
    if str(outputs.csv) == "-" and str(outputs.jsonl) == "-":
        raise OutputError("--csv - and --jsonl - would interleave on standard output: send one to a file")


def frame_count(path: Path) -> int | None:
    """The frames a video declares (its container header), without decoding; None when it does not say."""
    import av

    try:
        with av.open(str(path)) as container:
            streams = container.streams.video
            return int(streams[0].frames) or None if streams else None
    except (av.error.FFmpegError, OSError, ValueError):
        return None


def run_source(spec: str | Source, backend, options: TrackerOptions, outputs: Outputs, threads: int = 0,
               span: Span = Span(), on_frame=None, first_id: int = 0, follow: float = 0.0) -> int:
    """Track one source into its outputs -> 0, or EXIT_PARTIAL when the input ended early. `backend`: a loaded
    backend, or a function of no arguments that loads one (called once the source and outputs are checked, so a
    misspelled path is reported before the model loads). follow: sources.open_source's."""
    from .ui import Monitor

    if outputs.resume and outputs.video:
        raise SourceError(f"{outputs.video}: --resume cannot continue an annotated video (it would hold only the "
                          "resumed part); resume without --save-video")
    src = spec if isinstance(spec, Source) else open_source(spec, follow=follow, first_frame=span.start)
    name = src.name if isinstance(spec, Source) else spec
    with contextlib.ExitStack() as stack:
        stack.enter_context(src)
        if not src.live:
            outputs = outputs.with_defaults(name)
        check_outputs(outputs, name)
        sinks = _sinks(outputs, src)
        for sink in sinks:       # every output checked and locked before any is opened
            if hasattr(sink, "abandon_unopened"):
                stack.push(sink.abandon_unopened)
            sink.acquire()
        fingerprint = source_fingerprint(name)
        skip_until, last_id = 0, first_id - 1
        if outputs.resume and outputs.csv:
            check_resume(outputs, fingerprint, options, sinks)
        if callable(backend) and not hasattr(backend, "infer"):
            backend = backend()
        if outputs.resume and outputs.csv:
            check_resume_model(outputs, backend)
            skip_until, last_id = cut_csv_for_resume(_partial_of(sinks, outputs.csv))
            if outputs.jsonl:
                cut_jsonl_for_resume(_partial_of(sinks, outputs.jsonl), skip_until)
        # After a resume, tracks are new: their ids continue above the CSV's, so no id names two people.
        tracker = FaceTracker(backend, options, threads, first_id=last_id + 1)
        summary = Summary(outputs.summary_path(), src, backend, options, span, fingerprint, skip_until)
        summary.write(complete=False)
        for sink in sinks:
            stack.enter_context(sink)
        monitor = stack.enter_context(Monitor(src.name, _span_total(src, span), src.live, outputs.quiet))
        try:
            results = pose_stage(smoothing_for(options, src)(run_frames(span.frames(src), tracker, skip_until,
                                                                        ahead=not src.live)), HeadPose(options.camera))
            for result in results:
                for sink in sinks:
                    sink.append(result)
                monitor.update(result)
                summary.add(result)
                if on_frame is not None:
                    on_frame()
        except KeyboardInterrupt:
            summary.finish(monitor.stats, interrupted=True)
            raise
        warnings = []
        if src.skipped:
            warnings.append(f"{src.skipped} damaged frames/packets skipped")
        if src.ended_early:
            warnings.append(f"the input ended early, after frame {src.frames_read}: the outputs are partial")
        for text in warnings:
            summary.warn(text)
            log.warning("%s: %s", src.name, text)
        summary.finish(monitor.stats)
    if src.ended_early:
        return EXIT_PARTIAL
    for label, path in (("csv", outputs.csv), ("jsonl", outputs.jsonl), ("parquet", outputs.parquet),
                        ("video", outputs.video),
                        ("faces", outputs.faces), ("summary", summary.path)):
        if path and str(path) != "-" and not outputs.quiet:
            log.info("%s: %s", label, path)
    return 0


def _span_total(src: Source, span: Span) -> int | None:
    if src.total is None:
        return None
    last = min(src.total, span.end) if span.end is not None else src.total
    total = max(0, last - span.start + 1)
    return min(total, span.max_frames) if span.max_frames is not None else total


def _partial_of(sinks, path: Path) -> Path:
    for sink in sinks:
        if getattr(sink, "path", None) is not None and Path(os.path.realpath(path)) == sink.path:
            return sink.partial
    return path


def source_fingerprint(spec: str) -> dict:
    """What identifies a file source for --resume: its size and the sha256 of its first MiB (the container header
    and the first frames); an image folder: its file names and sizes."""
    path = Path(spec)
    if path.is_file():
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            digest.update(f.read(1 << 20))
        return {"size": path.stat().st_size, "head_sha256": digest.hexdigest()}
    if path.is_dir():
        listing = sorted(f"{p.name}:{p.stat().st_size}" for p in path.iterdir() if p.is_file())
        return {"files": len(listing), "listing_sha256": hashlib.sha256("\n".join(listing).encode(
            errors="surrogateescape")).hexdigest()}
    return {"name": spec}


def _model_facts(backend) -> dict:
    cfg = getattr(backend, "cfg", None)
    return {"preset": getattr(cfg, "name", None), "config": json.loads(cfg.to_json()) if cfg is not None else None,
            "weights": str(getattr(backend, "weights", "")) or None, "backend": getattr(backend, "name", None)}


def check_resume(outputs: Outputs, fingerprint: dict, options: TrackerOptions, sinks) -> None:
    """--resume continues only what it can prove is the same run: the CSV's header is ours, the summary beside it
    names the same source and options, and every output asked for exists."""
    from .sinks import CSV_COLUMNS

    csv_file = _partial_of(sinks, outputs.csv)
    if not csv_file.exists() or csv_file.stat().st_size == 0:
        if outputs.jsonl and _partial_of(sinks, outputs.jsonl).exists() \
                and _partial_of(sinks, outputs.jsonl).stat().st_size:
            raise SourceError(f"{outputs.jsonl}: cannot --resume, it has records but {outputs.csv} has none")
        return     # nothing to continue: a fresh run
    with open(csv_file, "rb") as f:
        header = f.readline().decode(errors="replace").strip().split(",")
    if header[:len(CSV_COLUMNS)] != CSV_COLUMNS or len(header) not in (len(CSV_COLUMNS), len(CSV_COLUMNS) + 1):
        raise SourceError(f"{outputs.csv}: cannot --resume, its header is not this version's CSV columns")
    jsonl_sink = next((k for k in sinks if outputs.jsonl and getattr(k, "path", None) ==
                       Path(os.path.realpath(outputs.jsonl))), None)
    if jsonl_sink is not None and not jsonl_sink.existed:
        raise SourceError(f"{outputs.jsonl}: cannot --resume, it does not exist while {outputs.csv} does "
                          "(resume without --jsonl, or run again without --resume)")
    path = outputs.summary_path()
    if path is None or not path.exists():
        raise SourceError(f"{outputs.csv}: cannot --resume, no {path.name if path else 'summary'} beside it to "
                          "check the source and options against (run again without --resume)")
    try:
        saved = json.loads(path.read_text())
        same_source = saved["source"]["fingerprint"] == fingerprint
        same_options = saved["options"] == _jsonable(dataclasses.asdict(options))
    except (ValueError, KeyError, TypeError, OSError):
        raise SourceError(f"{path}: cannot --resume, the summary is damaged") from None
    if not same_source:
        raise SourceError(f"{outputs.csv}: cannot --resume, it was made from another input than this one")
    if not same_options:
        raise SourceError(f"{outputs.csv}: cannot --resume with other tracking options than its run's "
                          f"(see {path.name})")


def check_resume_model(outputs: Outputs, backend) -> None:
    """--resume with the model the run began with (its architecture and weights file)."""
    path = outputs.summary_path()
    if path is None or not path.exists():
        return            # a fresh run (check_resume refused a continued one without its summary)
    try:
        saved = json.loads(path.read_text())["model"]
    except (ValueError, KeyError, TypeError, OSError):
        raise SourceError(f"{path}: cannot --resume, the summary is damaged") from None
    mine = _model_facts(backend)
    if (saved.get("config"), saved.get("weights")) != (mine["config"], mine["weights"]):
        raise SourceError(f"{outputs.csv}: cannot --resume with another model than its run's "
                          f"({saved.get('weights')} there, {mine['weights']} now)")


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


class Summary:
    """`<name>.summary.json` beside the CSV: what was run (versions, model, options, source) and what was found
    (frames, frames with a face, each id's first/last frame, frame count and mean confidence, speed, stage times,
    warnings). Written at the start (complete: false), so --resume can check what it continues, and again at the
    end."""

    def __init__(self, path: Path | None, src: Source, backend, options: TrackerOptions, span: Span,
                 fingerprint: dict, resumed_after: int):
        from . import __version__

        self.path = path
        self.data = {"format": SUMMARY_FORMAT, "shtrack": __version__, "versions": _versions(),
                     "source": {"name": src.name, "fingerprint": fingerprint, "frames_declared": src.total,
                                "fps": src.fps},
                     "model": _model_facts(backend), "options": _jsonable(dataclasses.asdict(options)),
                     "span": dataclasses.asdict(span), "resumed_after_frame": resumed_after or None}
        self.ids: dict[int, dict] = {}
        self.frames = self.with_face = 0
        self.first = self.last = None

    def add(self, result) -> None:
        index, faces = result.frame.index, result.faces
        self.frames += 1
        self.first = index if self.first is None else self.first
        self.last = index
        trusted = faces.success
        self.with_face += bool(trusted.any())
        scores = faces.score
        for i in range(len(faces)):
            entry = self.ids.setdefault(int(faces.face_id[i]), {"first_frame": index, "last_frame": index,
                                                                "frames": 0, "frames_trusted": 0, "_conf": 0.0})
            entry["last_frame"] = index
            entry["frames"] += 1
            entry["frames_trusted"] += int(trusted[i])
            entry["_conf"] += float(scores[i])

    def finish(self, stats, interrupted: bool = False) -> None:
        ids = {str(k): {**{n: v for n, v in e.items() if not n.startswith("_")},
                        "mean_confidence": round(e["_conf"] / max(e["frames"], 1), 4)} for k, e in sorted(self.ids.items())}
        self.data.update({"frames": self.frames, "first_frame": self.first, "last_frame": self.last,
                          "frames_with_face": self.with_face, "distinct_ids": len(ids), "ids": ids,
                          "fps": round(stats.fps, 2), "seconds": round(stats.elapsed, 2),
                          "stage_ms": {s: {"p50": round(a, 3), "p95": round(b, 3)}
                                       for s, (a, b) in stats.percentiles().items()},
                          "interrupted": interrupted})
        self.write(complete=not interrupted)

    def warn(self, text: str) -> None:
        self.data.setdefault("warnings", []).append(text)

    def write(self, complete: bool) -> None:
        if self.path is None:
            return
        self.data["complete"] = complete
        tmp = self.path.with_name(self.path.name + ".partial")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(self.data, indent=1) + "\n")
        os.replace(tmp, self.path)


def _versions() -> dict:
    import importlib.metadata as md
    import platform

    out = {"python": platform.python_version()}
    for pkg in ("numpy", "onnxruntime", "opencv-python-headless", "av"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def cut_csv_for_resume(csv_path: Path) -> tuple[int, int]:
    """Cut an interrupted CSV (final or .partial) back to its last complete frame: a trailing half row and the
    rows of the last frame (maybe incomplete) go. -> (last frame kept, highest face id kept)."""
    partial = csv_path.with_name(csv_path.name + ".partial")
    path = partial if partial.exists() and not csv_path.name.endswith(".partial") else csv_path
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
        raise SourceError(f"{path}: cannot --resume, the last row does not start with a frame number") from None
    # Rows of the last frame may be incomplete if the run died between faces: redo that frame.
    keep = [ln for ln in lines if not ln.startswith(f"{last},")]
    with open(path, "w") as f:
        f.write("\n".join(keep) + "\n")
    ids = [int(ln.split(",", 2)[1]) for ln in keep[1:] if ln.count(",") > 1 and ln.split(",", 2)[1].lstrip("-").isdigit()]
    return last - 1, max(ids, default=-1)


def cut_jsonl_for_resume(path: Path, last_kept: int) -> None:
    """Drop the JSONL records after frame `last_kept` (and a half-written last line) before a resume. A damaged
    line before that is an error: the records after it would be lost."""
    partial = path.with_name(path.name + ".partial")
    path = partial if partial.exists() and not path.name.endswith(".partial") else path
    if not path.exists():
        return
    keep = []
    lines = path.read_text(errors="replace").splitlines()
    for n, line in enumerate(lines, 1):
        try:
            frame = json.loads(line)["frame"]
        except (ValueError, KeyError, TypeError):
            if n == len(lines):       # a half-written last line: the run died writing it
                break
            raise SourceError(f"{path}: cannot --resume, line {n} is not a JSONL record of this program") from None
        if frame <= last_kept:
            keep.append(line)
    with open(path, "w") as f:
        f.write("".join(ln + "\n" for ln in keep))


def batch_names(videos: list[Path]) -> dict[Path, str]:
    """Output stem per video: its stem, or its whole name where the stem is shared (a.mov, a.mp4; and a.mp4
    beside a.mp4.mkv, whose stem is a.mp4). Whole names are unique in a folder, so no two CSVs collide."""
    names = {v: v.stem for v in videos}
    while True:
        values = list(names.values())
        clash = [v for v in videos if values.count(names[v]) > 1 and names[v] != v.name]
        if not clash:
            return names
        for v in clash:
            names[v] = v.name


def batch_outputs(outputs: Outputs, csv: Path) -> Outputs:
    """A batch writes one CSV per video (and its summary) and nothing else."""
    return dataclasses.replace(outputs, csv=csv, jsonl=None, parquet=None, video=None, faces=None, show=False,
                               quiet=True)


@dataclass
class BatchReport:
    videos: list[Path]
    partial: list[Path] = field(default_factory=list)           # the input ended early: CSV partial
    skipped: dict[Path, str] = field(default_factory=dict)      # bad input -> why
    lost: list[str] = field(default_factory=list)               # Ray tasks that died every retry -> why

    def log_summary(self, out_dir: Path) -> None:
        """The batch table: one line per video from its summary (frames, faces found, ids, speed), then failures."""
        done = len(self.videos) - len(self.skipped) - len(self.lost)
        log.info("%d of %d videos -> %s", done, len(self.videos), out_dir)
        names = batch_names(self.videos)
        for video in self.videos:
            if video in self.skipped:
                log.info("  %s: failed (%s)", video.name, self.skipped[video])
                continue
            try:
                s = json.loads((out_dir / f"{names[video]}.summary.json").read_text())
            except (OSError, ValueError):
                continue
            log.info("  %s: %d frames, a face in %d, %d ids, %.1f FPS%s", video.name, s.get("frames", 0),
                     s.get("frames_with_face", 0), s.get("distinct_ids", 0), s.get("fps", 0.0),
                     "" if s.get("complete") else " (partial)")

    @property
    def exit_code(self) -> int:
        """2 when any file failed (every other file is still done), 3 when one ended early, else 0."""
        if self.skipped or self.lost:
            return 2
        return EXIT_PARTIAL if self.partial else 0


def run_batch(videos: list[Path], out_dir: Path, backend, options: TrackerOptions, outputs: Outputs,
              threads: int = 0, span: Span = Span()) -> BatchReport:
    """One CSV per video into `out_dir`, one after another; a bad file is logged and skipped, the rest go on.
    Progress is counted in frames over all the videos (their declared frame counts), with an ETA."""
    from sht_model.errors import WeightsError

    from .ui import BatchProgress

    out_dir.mkdir(parents=True, exist_ok=True)
    report, names = BatchReport(list(videos)), batch_names(videos)
    totals = {v: frame_count(v) for v in videos}
    with BatchProgress(sum(t or 0 for t in totals.values()), len(videos), outputs.quiet) as progress:
        for video in videos:
            try:
                code = run_source(str(video), backend, options,
                                  batch_outputs(outputs, out_dir / f"{names[video]}.csv"), threads, span,
                                  on_frame=progress.frame)
                if code == EXIT_PARTIAL:
                    report.partial.append(video)
            except (SourceError, WeightsError) as exc:
                log.error("skipped %s", exc)
                report.skipped[video] = str(exc)
            except OSError as exc:
                from .sinks import WRITE_FAILURES

                if exc.errno in WRITE_FAILURES:     # the disk, not this video: the next would fail the same way
                    raise
                log.error("skipped %s: %s", video, exc)
                report.skipped[video] = str(exc)
            progress.video_done(totals[video])
    if not outputs.quiet:
        report.log_summary(out_dir)
    return report
