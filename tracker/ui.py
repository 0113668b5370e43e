"""Terminal UI with rich: a progress bar (frames, FPS, ETA) for files, live stats for streams, a summary table."""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .types import FrameResult


class Stats:
    """Per-frame timings and counts of one run."""

    def __init__(self):
        self.started = time.perf_counter()
        self.frames = 0
        self.faces = 0
        self.frames_with_face = 0
        self.ids: set[int] = set()
        self.stage_ms: dict[str, list[float]] = defaultdict(list)

    def add(self, result: FrameResult) -> None:
        self.frames += 1
        self.ids.update(int(i) for i in result.faces.face_id)
        n = int(result.faces.success.sum()) if len(result.faces) else 0
        self.faces += n
        self.frames_with_face += n > 0
        for stage, ms in result.timings.items():
            self.stage_ms[stage].append(ms)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def fps(self) -> float:
        return self.frames / max(self.elapsed, 1e-9)

    def percentiles(self) -> dict[str, tuple[float, float]]:
        return {s: (float(np.percentile(v, 50)), float(np.percentile(v, 95)))
                for s, v in self.stage_ms.items() if v}

    def lines(self, title: str) -> str:
        """The end-of-run summary: a few short lines that no terminal width wraps."""
        found = self.frames_with_face / max(self.frames, 1)
        stages = ", ".join(f"{s} {p50:.1f}" for s, (p50, _) in self.percentiles().items())
        return (f"{title}: {self.frames} frames, a face in {found:.1%}, {len(self.ids)} distinct id(s), "
                f"{self.faces / max(self.frames, 1):.2f} faces/frame, {self.fps:.1f} FPS\n"
                f"  median ms per frame: {stages}")

    def table(self, title: str) -> Table:
        """One row per stage (p50/p95 ms), the run's totals in the caption: fits an 80-column terminal."""
        found = self.frames_with_face / max(self.frames, 1)
        caption = (f"{self.frames} frames, face found in {found:.1%}, "
                   f"{self.faces / max(self.frames, 1):.2f} faces/frame, {self.fps:.1f} FPS")
        table = Table(title=title, caption=caption)
        table.add_column("stage")
        table.add_column("p50 ms", justify="right")
        table.add_column("p95 ms", justify="right")
        for stage, (p50, p95) in self.percentiles().items():
            table.add_row(stage, f"{p50:.2f}", f"{p95:.2f}")
        return table


LOG_EVERY_S = 10.0      # off a terminal (nohup, a log file, CI): one progress line this often


class Monitor:
    """`with Monitor(name, total, live, quiet) as m: m.update(result)`; prints the summary on exit. On a terminal:
    a rich progress bar (files) or a live table (streams); elsewhere a plain log line every LOG_EVERY_S seconds
    (frames, percent, FPS, ETA), so a run under nohup shows where it is."""

    def __init__(self, name: str, total: int | None, live: bool, quiet: bool = False,
                 console: Console | None = None, log_every: float | None = None):
        self.name, self.total, self.live, self.quiet = name, total, live, quiet
        self.console = console or Console(stderr=True)
        self.stats = Stats()
        self._progress = self._live = None
        self._last_draw = 0.0
        self.log_every = LOG_EVERY_S if log_every is None else log_every
        self._last_log = time.perf_counter()

    def __enter__(self) -> "Monitor":
        if self.quiet:
            return self
        if not self.console.is_terminal:
            return self
        if self.live or not self.total:
            self._live = Live(self.stats.table(self.name), console=self.console, refresh_per_second=2)
            self._live.__enter__()
        else:
            self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[fps]:.1f} FPS"), TimeRemainingColumn(),
                                      console=self.console, transient=True)
            self._progress.__enter__()
            self._task = self._progress.add_task(self.name, total=self.total, fps=0.0)
        return self

    def update(self, result: FrameResult) -> None:
        self.stats.add(result)
        if self.quiet:
            return
        now = time.perf_counter()
        if now - self._last_draw < 0.25:
            return
        self._last_draw = now
        if not self.console.is_terminal:
            if now - self._last_log >= self.log_every:
                self._last_log = now
                self.console.print(progress_line(self.name, self.stats.frames, self.total, self.stats.fps),
                                   soft_wrap=True, highlight=False)
            return
        if self._progress is not None:
            self._progress.update(self._task, completed=self.stats.frames, fps=self.stats.fps)
        elif self._live is not None:
            self._live.update(self.stats.table(f"{self.name} (live)"))

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
        if self._live is not None:
            self._live.__exit__(*exc)
        if not self.quiet:
            self.console.print(self.stats.lines(self.name), soft_wrap=True, highlight=False)


def progress_line(name: str, done: int, total: int | None, fps: float) -> str:
    """'clip.mp4: 1500/90000 frames (1.7%), 25.1 FPS, ETA 0:59:40' (no total: frames and FPS only)."""
    if not total:
        return f"{name}: {done} frames, {fps:.1f} FPS"
    left = max(total - done, 0) / fps if fps > 0 else float("nan")
    eta = "?" if left != left else f"{int(left // 3600)}:{int(left % 3600 // 60):02d}:{int(left % 60):02d}"
    return f"{name}: {done}/{total} frames ({done / total:.1%}), {fps:.1f} FPS, ETA {eta}"


class BatchProgress:
    """A batch's progress in frames over every video (their declared counts), with an ETA: a rich bar on a
    terminal, a log line every LOG_EVERY_S seconds elsewhere."""

    def __init__(self, total_frames: int, videos: int, quiet: bool = False, console: Console | None = None):
        self.total, self.videos, self.quiet = total_frames or None, videos, quiet
        self.console = console or Console(stderr=True)
        self.done = self.videos_done = 0
        self.started = self._last_log = time.perf_counter()
        self._bar = None

    def __enter__(self) -> "BatchProgress":
        if not self.quiet and self.console.is_terminal:
            self._bar = Progress(TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("frames, {task.fields[videos]}"), TimeRemainingColumn(),
                                 console=self.console, transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task("batch", total=self.total, videos=f"0/{self.videos} videos")
        return self

    def frame(self) -> None:
        self.done += 1
        now = time.perf_counter()
        if self._bar is not None:
            if now - self._last_log >= 0.25:
                self._last_log = now
                self._bar.update(self._task, completed=self.done)
        elif not self.quiet and now - self._last_log >= LOG_EVERY_S:
            self._last_log = now
            fps = self.done / max(now - self.started, 1e-9)
            self.console.print(progress_line(f"batch ({self.videos_done}/{self.videos} videos)", self.done,
                                             self.total, fps), soft_wrap=True, highlight=False)

    def video_done(self, frames: int | None) -> None:
        self.videos_done += 1
        if self._bar is not None:
            self._bar.update(self._task, videos=f"{self.videos_done}/{self.videos} videos")

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
