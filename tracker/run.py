"""One tracking run: source -> tracker -> smoothing -> sinks, with resume and default outputs, over typed options.

    code = run_source("clip.mp4", backend, TrackerOptions(), Outputs(csv=Path("clip.csv")))
    report = run_batch(videos, Path("out"), backend, TrackerOptions(), Outputs(quiet=True))

`cli.py` turns flags into `TrackerOptions` + `Outputs` and calls these; `cluster.py` runs `run_source` per video
on Ray workers, so a batch on Ray writes the same bytes as a serial one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from .pipeline import FaceTracker, TrackerOptions, run_frames, smoothing_for
from .sources import SourceError, open_source

log = logging.getLogger("shtrack")

EXIT_PARTIAL = 3                                    # the input ended early: outputs hold what was read


@dataclass(frozen=True)
class Outputs:
    """Where one run writes. With none of csv/jsonl/video/faces/show, a file source gets the defaults
    (`with_defaults`)."""
    csv: Path | None = None
    jsonl: Path | None = None
    video: Path | None = None                # annotated MP4
    faces: Path | None = None                # folder of hallucinated faces
    faces_every: int = 10
    show: bool = False                       # live window
    missing_rows: bool = True                # a success=0 row for frames without a face
    resume: bool = False                     # continue an interrupted CSV after its last complete frame
    quiet: bool = False

    def with_defaults(self, name: str) -> "Outputs":
        """shtrack_out/<name>.csv and <name>_annotated.mp4 when nothing was asked for."""
        if any([self.csv, self.jsonl, self.video, self.faces, self.show]):
            return self
        stem = "demo" if name == "demo" else Path(name).stem
        video = None if self.resume else Path("shtrack_out") / f"{stem}_annotated.mp4"   # cannot be resumed
        return dataclasses.replace(self, csv=Path("shtrack_out") / f"{stem}.csv", video=video)


def run_source(spec: str, backend, options: TrackerOptions, outputs: Outputs, threads: int = 0) -> int:
    """Track one source into its outputs -> 0, or EXIT_PARTIAL when the input ended early."""
    from .sinks import CsvSink, FaceDumpSink, JsonlSink, VideoSink, WindowSink
    from .ui import Monitor

    if outputs.resume and outputs.video:
        raise SourceError(f"{outputs.video}: --resume cannot continue an annotated video (it would hold only the "
                          "resumed part); resume without --save-video")
    src = open_source(spec)
    if not src.live:
        outputs = outputs.with_defaults(spec)
    skip_until, last_id = cut_csv_for_resume(outputs.csv) if outputs.resume and outputs.csv else (0, -1)
    if outputs.resume and outputs.jsonl:
        cut_jsonl_for_resume(outputs.jsonl, skip_until)
    # After a resume, tracks are new: their ids continue above the CSV's, so no id names two people.
    tracker = FaceTracker(backend, options, threads, first_id=last_id + 1)
    with contextlib.ExitStack() as stack:
        stack.enter_context(src)
        sinks = []
        if outputs.show:   # first: a machine without a GUI fails before any output file is touched
            sinks.append(stack.enter_context(WindowSink()))
        if outputs.csv:
            sinks.append(stack.enter_context(CsvSink(outputs.csv, outputs.missing_rows, resume=outputs.resume,
                                                     file_column=src.photos)))
        if outputs.jsonl:
            sinks.append(stack.enter_context(JsonlSink(outputs.jsonl, resume=outputs.resume)))
        if outputs.video:
            sinks.append(stack.enter_context(VideoSink(outputs.video, src.fps or 25.0)))
        if outputs.faces:
            sinks.append(stack.enter_context(FaceDumpSink(outputs.faces, outputs.faces_every)))
        monitor = stack.enter_context(Monitor(src.name, src.total, src.live, outputs.quiet))
        for result in smoothing_for(options, src)(run_frames(src, tracker, skip_until, ahead=not src.live)):
            for sink in sinks:
                sink.append(result)
            monitor.update(result)
    if src.skipped:
        log.warning("%s: %d damaged frames/packets skipped", src.name, src.skipped)
    if src.ended_early:
        log.warning("%s: ended early, after frame %d: the outputs are partial", src.name, src.frames_read)
        return EXIT_PARTIAL
    for label, path in (("csv", outputs.csv), ("jsonl", outputs.jsonl), ("video", outputs.video),
                        ("faces", outputs.faces)):
        if path and not outputs.quiet:
            log.info("%s: %s", label, path)
    return 0


def cut_csv_for_resume(csv_path: Path) -> tuple[int, int]:
    """Cut an interrupted CSV (final or .partial) back to its last complete frame: a trailing half row and the
    rows of the last frame (maybe incomplete) go. -> (last frame kept, highest face id kept)."""
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
        raise SourceError(f"{path}: cannot --resume, the last row does not start with a frame number") from None
    # Rows of the last frame may be incomplete if the run died between faces: redo that frame.
    keep = [ln for ln in lines if not ln.startswith(f"{last},")]
    path.write_text("\n".join(keep) + "\n")
    ids = [int(ln.split(",", 2)[1]) for ln in keep[1:] if ln.count(",") > 1 and ln.split(",", 2)[1].lstrip("-").isdigit()]
    return last - 1, max(ids, default=-1)


def cut_jsonl_for_resume(path: Path, last_kept: int) -> None:
    """Drop the JSONL records after frame `last_kept` (and a half-written last line) before a resume."""
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


def batch_names(videos: list[Path]) -> dict[Path, str]:
    """Output stem per video: its stem, or its whole name where two videos share a stem (a.mov, a.mp4)."""
    stems = [v.stem for v in videos]
    return {v: v.name if stems.count(v.stem) > 1 else v.stem for v in videos}


def batch_outputs(outputs: Outputs, csv: Path) -> Outputs:
    """A batch writes one CSV per video and nothing else."""
    return dataclasses.replace(outputs, csv=csv, jsonl=None, video=None, faces=None, show=False, quiet=True)


@dataclass
class BatchReport:
    videos: list[Path]
    partial: list[Path] = field(default_factory=list)           # the input ended early: CSV partial
    skipped: dict[Path, str] = field(default_factory=dict)      # bad input -> why
    lost: list[str] = field(default_factory=list)               # Ray tasks that died every retry -> why

    def log_summary(self, out_dir: Path) -> None:
        done = len(self.videos) - len(self.skipped) - len(self.lost)
        log.info("%d of %d videos -> %s", done, len(self.videos), out_dir)

    @property
    def exit_code(self) -> int:
        if self.videos and len(self.skipped) + len(self.lost) == len(self.videos):
            return 2
        return EXIT_PARTIAL if self.partial else 0


def run_batch(videos: list[Path], out_dir: Path, backend, options: TrackerOptions, outputs: Outputs,
              threads: int = 0) -> BatchReport:
    """One CSV per video into `out_dir`, one after another; a bad file is logged and skipped, the rest go on."""
    from rich.progress import Progress

    out_dir.mkdir(parents=True, exist_ok=True)
    report, names = BatchReport(list(videos)), batch_names(videos)
    with Progress(disable=outputs.quiet, transient=True) as progress:
        task = progress.add_task("videos", total=len(videos))
        for video in videos:
            try:
                code = run_source(str(video), backend, options, batch_outputs(outputs, out_dir / f"{names[video]}.csv"),
                                  threads)
                if code == EXIT_PARTIAL:
                    report.partial.append(video)
            except SourceError as exc:
                log.error("skipped %s", exc)
                report.skipped[video] = str(exc)
            progress.advance(task)
    if not outputs.quiet:
        report.log_summary(out_dir)
    return report
