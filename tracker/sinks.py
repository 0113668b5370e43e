"""Sinks: context managers that take one frame's faces at a time.

    with CsvSink("out.csv") as sink:
        for result in track("video.mp4"):
            sink.append(result)

Each writes to `<path>.partial` and renames it into place when the run ends, so a file with the final name is
always complete; rows are flushed every frame, so an interrupted run keeps every finished frame. A run that
fails never puts a shorter file in place of a complete one (_AtomicFile). Drawing is tracker.annotate's.
"""

from __future__ import annotations

import csv
import errno
import json
import logging
import os
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from .annotate import LandmarkAnnotator, enlarged
from .pose import POSE_COLUMNS
from .types import NUM_LANDMARKS, FrameResult

log = logging.getLogger("shtrack")

# OpenFace's order: the head pose before the 2D landmarks.
OPENFACE_COLUMNS = (["frame", "face_id", "timestamp", "confidence", "success"] + POSE_COLUMNS
                    + [f"x_{i}" for i in range(NUM_LANDMARKS)] + [f"y_{i}" for i in range(NUM_LANDMARKS)])
EXTRA_COLUMNS = ["box_x0", "box_y0", "box_x1", "box_y1", "model"]    # model: which ladder model gave the row
CSV_COLUMNS = OPENFACE_COLUMNS + EXTRA_COLUMNS
NUMBERS = len(POSE_COLUMNS) + 2 * NUM_LANDMARKS + 4              # pose, x_*, y_*, box: 3 decimals each
_COORDINATES = ",".join(["%.3f"] * NUMBERS)


class OutputError(OSError):
    """An output path that cannot be used (a directory, an unwritable folder, in use by another run)."""


WRITE_FAILURES = {errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG}   # the disk, not the input


class Sink(Protocol):
    """What the run loop writes to: entered once, one `append` per frame, left once. Leaving with an exception
    decides what becomes of the output (see _AtomicFile)."""

    def __enter__(self) -> "Sink": ...
    def append(self, result: FrameResult) -> None: ...
    def __exit__(self, exc_type, exc, tb) -> None: ...


class _AtomicFile:
    """Where a sink writes. A regular file (or a new path) is written as `<path>.partial`, locked against a
    second shtrack run (flock, released when the process ends), and renamed into place when the run ends well
    or is interrupted (Ctrl-C, SIGTERM, SIGHUP: the frames so far are complete). When the run fails instead:
    before the first frame the partial file goes and the path keeps what it held, byte for byte; after it the
    partial file is kept under its own name and the path is left alone; a full disk keeps the rows up to the last
    complete one and renames them into place. A symlink is written through: the link stays and its target gets
    the result. Anything else that exists (a device, a FIFO) is written directly and never replaced. `-` is
    standard output (CSV and JSONL).

    `acquire()` checks and locks (no byte of an existing file changes); `__enter__` then opens. The run acquires
    every output before it opens any, so one refused output leaves the others untouched."""

    def __init__(self, path: str | Path, resume: bool = False):
        self.stdout = str(path) == "-"
        self.path = Path(path)
        if self.path.is_symlink():
            self.path = Path(os.path.realpath(self.path))
        self.direct = self.stdout or (self.path.exists() and not self.path.is_file() and not self.path.is_dir())
        self.partial = self.path if self.direct else self.path.with_name(self.path.name + ".partial")
        if resume and self.direct:
            raise OutputError(f"{path}: --resume continues a file; this is standard output, a FIFO or a device")
        self.resume = resume
        self.frames = 0                       # frames appended by this run
        self._lock_fd: int | None = None
        self._moved = False                   # resume: the final file was moved to the partial name
        self._had_partial = False             # resume: a partial file was there before this run

    def check(self) -> None:
        """Refuse a path that cannot take the output, before any frame is read."""
        if self.stdout:
            return
        if self.path.is_dir():
            raise OutputError(f"{self.path}: is a directory, not an output file")
        if self.direct:
            return
        parent = self.path.parent
        parent.mkdir(parents=True, exist_ok=True)
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OutputError(f"{self.path}: cannot write in {parent}")

    def acquire(self) -> None:
        """Check the path and lock `<path>.partial` (created empty if new, never truncated here)."""
        import fcntl

        self.check()
        if self.direct or self._lock_fd is not None:
            return
        self._had_partial = self.partial.exists()
        fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(f"{self.path}: in use by another shtrack run") from None
        self._lock_fd = fd
        if self.resume and not self._had_partial and self.path.exists():
            # Continue the finished file: its rows move to the (locked) partial name until the run ends.
            os.replace(self.path, self.partial)
            self._moved = True

    @property
    def existed(self) -> bool:
        """After acquire(): the output held something before this run (a final or a partial file)."""
        return self._had_partial or self._moved

    def abandon_unopened(self, exc_type, exc, tb) -> None:
        """Leaving a run that failed after `acquire()` and before this output was opened: the path as it was (a
        resumed file moved back, a new partial file removed), the lock released. Opened outputs end in __exit__."""
        if not self._opened:
            self.frames = 0
            self._end(exc_type or RuntimeError, exc)

    _opened = False

    def _open_target(self, mode: str = "w", **kw):
        self._opened = True
        if self.stdout:
            return os.fdopen(os.dup(1), "w", **kw)
        if self.direct:
            self.check()
            return open(self.path, "w", **kw)
        self.acquire()
        if not self.resume:
            os.ftruncate(self._lock_fd, 0)
        return open(self.partial, "a", **kw)

    def _write_failed(self, exc: OSError) -> OSError:
        """A write error with this output's name on it (the disk's errors name no file)."""
        if exc.filename is None:
            return OSError(exc.errno, exc.strerror or str(exc), str(self.partial))
        return exc

    def _end(self, exc_type, exc) -> None:
        """What becomes of the output (the class docstring): called by each sink's __exit__ after closing."""
        if self.direct:
            return self._release()
        if exc_type is None or issubclass(exc_type, KeyboardInterrupt):
            self._finalise()
        elif isinstance(exc, OSError) and exc.errno in WRITE_FAILURES and self.partial.exists():
            _cut_to_last_line(self.partial)
            self._finalise()
        elif self.frames == 0 and not self._had_partial:
            if self._moved:
                os.replace(self.partial, self.path)     # the resumed file, as it was
            elif self.partial.exists():
                self.partial.unlink()
            self._release()
        else:
            if self.partial.exists() and self.frames:
                log.warning("%s: the run failed; the frames written so far are kept in %s (%s itself is unchanged)",
                            self.path, self.partial, self.path.name)
            self._release()

    def _finalise(self) -> None:
        try:
            if not self.direct:
                if not self.partial.exists():
                    # Deleted under the run (its folder removed, say): never report a file that is not there.
                    raise OutputError(f"{self.path}: {self.partial.name} was deleted while the run wrote it; "
                                      "nothing is in place")
                os.replace(self.partial, self.path)
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _cut_to_last_line(path: Path) -> None:
    """Drop a half-written last row (a full disk stops a write midway)."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        back = min(size, 1 << 20)
        f.seek(size - back)
        tail = f.read(back)
        cut = tail.rfind(b"\n") + 1
        if cut < len(tail):
            f.truncate(size - back + cut)


def _close(file) -> None:
    """Close a file whose buffered rows may no longer fit on the disk (the error was already reported)."""
    try:
        file.close()
    except OSError:
        pass


def row_numbers(faces) -> np.ndarray:
    """(n, NUMBERS): each face's pose (NaN without one), x_0..x_67, y_0..y_67 and box, in the CSV's order."""
    pose = faces.pose if faces.pose is not None else np.full((len(faces), len(POSE_COLUMNS)), np.nan, np.float32)
    return np.concatenate([pose, faces.xy.transpose(0, 2, 1).reshape(len(faces), 2 * NUM_LANDMARKS), faces.boxes], 1)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """A text cell that spreadsheets show as text: one that starts like a formula (= + - @, tab, CR) gets a
    leading apostrophe (OWASP's advice for CSV injection). Numbers are never text cells here."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class CsvSink(_AtomicFile):
    """OpenFace's column layout (frame, face_id, timestamp, confidence, success, x_0..x_67, y_0..y_67), then the
    face box. Coordinates carry 3 decimals. Frames without faces get one `success=0` row (face_id -1) unless
    `missing_rows=False`."""

    def __init__(self, path: str | Path, missing_rows: bool = True, resume: bool = False, file_column: bool = False):
        super().__init__(path, resume)
        self.missing_rows = missing_rows
        self.file_column = file_column    # image folders: which photo a row is from, after the box columns

    def __enter__(self) -> "CsvSink":
        self._file = self._open_target(newline="")
        self._writer = csv.writer(self._file)
        if self.stdout or self.direct or self._file.tell() == 0:
            self._guard(lambda: self._writer.writerow(CSV_COLUMNS + (["file"] if self.file_column else [])))
        return self

    def append(self, result: FrameResult) -> None:
        frame, faces = result.frame, result.faces
        rows = []
        if len(faces) == 0 and self.missing_rows:
            rows.append([frame.index, -1, f"{frame.timestamp:.3f}", "0.000", 0]
                        + [""] * (NUMBERS + 1) + self._file_cell(frame))
        values = row_numbers(faces)
        scores = faces.score
        for i in range(len(faces)):
            row = [frame.index, int(faces.face_id[i]), f"{frame.timestamp:.3f}", f"{scores[i]:.3f}",
                   int(faces.success[i])]
            # pose, x_0..x_67, y_0..y_67, then the box: formatted in one operation per row (16 faces a frame: a
            # 2 ms loop of f-strings otherwise); a value that could not be had (no pose fitted) is left empty.
            row += [v if v != "nan" else "" for v in (_COORDINATES % tuple(values[i].tolist())).split(",")]
            row.append(str(faces.model[i]) if faces.model is not None else "")
            rows.append(row + self._file_cell(frame))

        def write():
            self._writer.writerows(rows)
            self._file.flush()
        self._guard(write)
        self.frames += 1

    def _guard(self, write) -> None:
        try:
            write()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._write_failed(exc) from None

    def _file_cell(self, frame) -> list[str]:
        if not self.file_column:
            return []
        # Names in any encoding: undecodable bytes written as \x escapes, so the CSV stays UTF-8.
        name = os.fsencode(Path(frame.source).name).decode("utf-8", "backslashreplace")
        return [spreadsheet_safe(name)]

    def __exit__(self, exc_type, exc, tb) -> None:
        _close(self._file)
        self._end(exc_type, exc)


class JsonlSink(CsvSink):
    """One JSON object per frame, with per-landmark confidence."""

    def __init__(self, path: str | Path, resume: bool = False):
        super().__init__(path, resume=resume)

    def __enter__(self) -> "JsonlSink":
        self._file = self._open_target()
        return self

    def append(self, result: FrameResult) -> None:
        faces = result.faces
        record = {"frame": result.frame.index, "timestamp": round(result.frame.timestamp, 6), "faces": [
            {"face_id": int(faces.face_id[i]), "confidence": round(float(faces.score[i]), 4),
             "success": bool(faces.success[i]), "box": [round(float(v), 3) for v in faces.boxes[i]],
             "model": str(faces.model[i]) if faces.model is not None else None,
             "pose": None if faces.pose is None or not np.isfinite(faces.pose[i]).all()
             else np.round(faces.pose[i].astype(np.float64), 4).tolist(),
             # float64 before rounding: a rounded float32 printed as a Python float is 131.718994140625
             "landmarks": np.round(faces.xy[i].astype(np.float64), 3).tolist(),
             "landmark_confidence": np.round(faces.confidence[i].astype(np.float64), 3).tolist()}
            for i in range(len(faces))]}

        def write():
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        self._guard(write)
        self.frames += 1


class VideoSink(_AtomicFile):
    """Annotated MP4 (H.264 when FFmpeg has it, else MPEG-4 Part 2), written with PyAV."""

    def __init__(self, path: str | Path, fps: float = 25.0, upscale_to: int = 480,
                 annotator: LandmarkAnnotator = LandmarkAnnotator()):
        super().__init__(path)
        self.fps, self.upscale_to, self.annotator = fps, upscale_to, annotator
        self._container = None

    def __enter__(self) -> "VideoSink":
        self.acquire()
        self._opened = True
        return self

    def _open(self, width: int, height: int) -> None:
        import av
        from fractions import Fraction

        target = self.path if self.direct else self.partial     # the partial file is locked
        # A FIFO or device is written as a stream (no seeking back to write an index): fragmented MP4.
        options = {"movflags": "frag_keyframe+empty_moov"} if self.direct else {}
        self._container = av.open(str(target), mode="w", format="mp4", options=options)
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        rate = Fraction(self.fps).limit_denominator(1000) if self.fps else Fraction(25)
        self._stream = self._container.add_stream(codec, rate=rate)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"

    def append(self, result: FrameResult) -> None:
        import av

        # Tiny surveillance frames are drawn on an upscaled copy so the 68 points stay visible.
        image, scaled = enlarged(result, self.upscale_to)
        canvas = self.annotator.annotate(image, scaled.faces)
        h, w = canvas.shape[:2]
        canvas = canvas[: h - h % 2, : w - w % 2]
        if self._container is None:
            self._open(canvas.shape[1], canvas.shape[0])
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(canvas), format="bgr24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._container is not None:
            try:
                for packet in self._stream.encode():
                    self._container.mux(packet)
            finally:
                try:
                    self._container.close()
                except OSError:
                    pass
        self._end(exc_type, exc)


class FaceDumpSink:
    """Each track's hallucinated (super-resolved) face as PNG every `every` frames: DIR/face_<id>/<frame>.png."""

    def __init__(self, folder: str | Path, every: int = 10):
        self.folder, self.every = Path(folder), max(1, every)

    def acquire(self) -> None:
        if self.folder.exists() and not self.folder.is_dir():
            raise OutputError(f"{self.folder}: --save-faces needs a folder, this is a file")

    def __enter__(self) -> "FaceDumpSink":
        self.acquire()
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def append(self, result: FrameResult) -> None:
        faces = result.faces
        if faces.hallucinated is None or (result.frame.index - 1) % self.every:
            return
        for i in range(len(faces)):
            if not faces.success[i]:
                continue
            out = self.folder / f"face_{faces.face_id[i]}"
            out.mkdir(exist_ok=True)
            path = out / f"{result.frame.index:06d}.png"
            ok, png = cv2.imencode(".png", faces.hallucinated[i])
            if not ok:
                raise OSError(errno.EIO, "cannot encode PNG", str(path))
            with open(path, "wb") as f:       # every write's result is checked: a full disk is an error
                f.write(png.tobytes())

    def __exit__(self, *exc) -> None:
        pass


class WindowSink:
    """Live OpenCV window (--show). Needs a display and opencv-python (not -headless). Closing it (q or Esc)
    ends the run like Ctrl-C: the outputs so far are complete."""

    SMALL = 480     # frames are enlarged to at least this side, so small faces stay visible

    def __init__(self, annotator: LandmarkAnnotator = LandmarkAnnotator()):
        self.annotator = annotator
        self._last: float | None = None
        self._fps = 0.0
        self._last_shape = None

    def acquire(self) -> None:
        if "GUI: NONE" in " ".join(cv2.getBuildInformation().split()):
            raise OutputError("--show needs OpenCV built with a GUI; this one is opencv-python-headless: "
                              "pip uninstall opencv-python-headless && pip install 'opencv-python<5'")

    def __enter__(self) -> "WindowSink":
        self.acquire()
        try:
            cv2.namedWindow("shtrack", cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise OutputError(f"--show cannot open a window (no display?): {str(exc).strip().splitlines()[-1]}") from None
        return self

    def append(self, result: FrameResult) -> None:
        import time

        now = time.perf_counter()
        if self._last is not None:     # live FPS: frames shown per second, smoothed over ~10 frames
            rate = 1 / max(now - self._last, 1e-6)
            self._fps = 0.9 * self._fps + 0.1 * rate if self._fps else rate
        self._last = now
        image, scaled = enlarged(result, self.SMALL)
        canvas = self.annotator.annotate(image, scaled.faces)
        n = int(result.faces.success.sum())
        cv2.putText(canvas, f"{self._fps:5.1f} FPS  {n} face{'s' if n != 1 else ''}", (8, 24),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 255), 2, cv2.LINE_AA)
        if self._last_shape != canvas.shape:     # a resizable window, opened at the frame's own size
            cv2.resizeWindow("shtrack", canvas.shape[1], canvas.shape[0])
            self._last_shape = canvas.shape
        cv2.imshow("shtrack", canvas)
        if cv2.waitKey(1) & 0xFF in (27, ord("q")):
            raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        cv2.destroyAllWindows()


PARQUET_ROW_GROUP_FRAMES = 1000     # frames per row group (and per part file while the run goes)


class ParquetSink(_AtomicFile):
    """The CSV's columns as Parquet (pyarrow, the `[parquet]` extra): float32 landmarks, box and confidence,
    zstd with byte-stream-split floats, one row group per PARQUET_ROW_GROUP_FRAMES frames. While the run goes,
    each finished row group is its own complete file in `<path>.parts/` (readable whatever happens to the process
    later: `shtrack convert <path>.parts out.parquet` joins them); when the run ends the parts become `<path>`."""

    def __init__(self, path: str | Path, missing_rows: bool = True, file_column: bool = False,
                 frames_per_group: int = PARQUET_ROW_GROUP_FRAMES):
        super().__init__(path)
        if self.stdout or self.direct:
            raise OutputError(f"{path}: --parquet writes a regular file (not standard output, a FIFO or a device)")
        self.missing_rows, self.file_column, self.frames_per_group = missing_rows, file_column, frames_per_group
        self.parts = self.path.with_name(self.path.name + ".parts")
        self._rows: list = []
        self._frames_in_group = 0

    def __enter__(self) -> "ParquetSink":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise OutputError("--parquet needs pyarrow: pip install 'shtrack[parquet]'") from None
        self._opened = True
        self.acquire()
        if self.parts.exists():
            for old in self.parts.glob("part-*.parquet"):
                old.unlink()
        self.parts.mkdir(exist_ok=True)
        return self

    def append(self, result: FrameResult) -> None:
        frame, faces = result.frame, result.faces
        name = [Path(frame.source).name] if self.file_column else []
        if len(faces) == 0 and self.missing_rows:
            self._rows.append((frame.index, -1, frame.timestamp, 0.0, 0, None, "", *name))
        values = row_numbers(faces)
        for i in range(len(faces)):
            self._rows.append((frame.index, int(faces.face_id[i]), frame.timestamp, float(faces.score[i]),
                               int(faces.success[i]), values[i],
                               str(faces.model[i]) if faces.model is not None else "", *name))
        self._frames_in_group += 1
        self.frames += 1
        if self._frames_in_group >= self.frames_per_group:
            self._flush_group()

    def _flush_group(self) -> None:
        if not self._rows:
            return
        import pyarrow.parquet as pq

        n = len(list(self.parts.glob("part-*.parquet")))
        tmp = self.parts / f"part-{n:06d}.parquet.partial"
        try:
            pq.write_table(parquet_table(self._rows, self.file_column), tmp, **PARQUET_OPTIONS)
            os.replace(tmp, self.parts / f"part-{n:06d}.parquet")
        except OSError as exc:
            raise self._write_failed(exc) from None
        self._rows, self._frames_in_group = [], 0

    def __exit__(self, exc_type, exc, tb) -> None:
        keep = exc_type is None or issubclass(exc_type, KeyboardInterrupt)
        if keep:
            self._flush_group()
            join_parquet(sorted(self.parts.glob("part-*.parquet")), self.partial)
            for part in self.parts.glob("part-*.parquet"):
                part.unlink()
            self.parts.rmdir()
            return self._end(None, None)
        if self.parts.exists() and not any(self.parts.iterdir()):
            self.parts.rmdir()
        elif self.parts.exists():
            log.warning("%s: the run failed; its finished row groups are kept in %s (shtrack convert joins them)",
                        self.path, self.parts)
        if self.partial.exists() and self.partial.stat().st_size == 0:
            self.partial.unlink()
        self._release()


PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 9, "use_dictionary": ["model", "file"],
                   "use_byte_stream_split": POSE_COLUMNS + [f"{a}_{i}" for a in "xy" for i in range(NUM_LANDMARKS)]
                   + EXTRA_COLUMNS[:4]}


def parquet_schema(file_column: bool = False):
    import pyarrow as pa

    fields = [("frame", pa.int32()), ("face_id", pa.int32()), ("timestamp", pa.float64()),
              ("confidence", pa.float32()), ("success", pa.int8())]
    fields += [(c, pa.float32()) for c in OPENFACE_COLUMNS[5:] + EXTRA_COLUMNS[:4]]
    fields += [("model", pa.string())] + ([("file", pa.string())] if file_column else [])
    return pa.schema(fields)


def parquet_table(rows: list, file_column: bool):
    """Rows (frame, face_id, timestamp, confidence, success, numbers (row_numbers) or None, model[, file])
    -> a pyarrow Table with the CSV's columns."""
    import pyarrow as pa

    n = len(rows)
    coords = np.full((n, NUMBERS), np.nan, np.float32)
    for k, row in enumerate(rows):
        if row[5] is not None:
            coords[k] = row[5]
    columns = [pa.array([r[0] for r in rows], pa.int32()), pa.array([r[1] for r in rows], pa.int32()),
               pa.array([r[2] for r in rows], pa.float64()), pa.array([r[3] for r in rows], pa.float32()),
               pa.array([r[4] for r in rows], pa.int8())]
    missing = np.isnan(coords)
    columns += [pa.array(coords[:, j], pa.float32(), mask=missing[:, j]) for j in range(coords.shape[1])]
    columns.append(pa.array([r[6] for r in rows], pa.string()))
    if file_column:
        columns.append(pa.array([r[7] for r in rows], pa.string()))
    return pa.Table.from_arrays(columns, schema=parquet_schema(file_column))


def join_parquet(parts: list[Path], out: Path) -> int:
    """Parquet files of one schema -> one file, row group by row group (constant memory). -> rows written."""
    import pyarrow.parquet as pq

    rows, writer = 0, None
    try:
        for part in parts:
            f = pq.ParquetFile(part)
            for g in range(f.num_row_groups):
                table = f.read_row_group(g)
                if writer is None:
                    writer = pq.ParquetWriter(out, table.schema, **PARQUET_OPTIONS)
                writer.write_table(table)
                rows += table.num_rows
        if writer is None:
            pq.write_table(parquet_schema().empty_table(), out, **PARQUET_OPTIONS)
    finally:
        if writer is not None:
            writer.close()
    return rows
