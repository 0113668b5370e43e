"""Sinks: context managers that take one frame's faces at a time.

    with CsvSink("out.csv") as sink:
        for result in track("video.mp4"):
            sink.append(result)

Each writes to `<path>.partial` and renames it into place on close, so a file with the final name is
always complete; rows are flushed every frame, so an interrupted run keeps every finished frame.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import cv2
import numpy as np

from .types import NUM_LANDMARKS, FrameResult

OPENFACE_COLUMNS = (["frame", "face_id", "timestamp", "confidence", "success"]
                    + [f"x_{i}" for i in range(NUM_LANDMARKS)] + [f"y_{i}" for i in range(NUM_LANDMARKS)])
EXTRA_COLUMNS = ["box_x0", "box_y0", "box_x1", "box_y1"]
CSV_COLUMNS = OPENFACE_COLUMNS + EXTRA_COLUMNS
_COORDINATES = ",".join(["%.3f"] * (2 * NUM_LANDMARKS + 4))     # x_*, y_*, box: 3 decimals


class OutputError(OSError):
    """An output path that cannot be used (a directory, an unwritable folder, in use by another run)."""


class _AtomicFile:
    """Where a sink writes. A regular file (or a new path) is written as `<path>.partial`, locked against a
    second shtrack run (flock, released when the process ends), and renamed into place on close. A symlink is
    written through: the link stays and its target gets the result. Anything else that exists (a device, a
    FIFO) is written directly and never replaced. `-` is standard output (CSV and JSONL)."""

    def __init__(self, path: str | Path, resume: bool = False):
        self.stdout = str(path) == "-"
        self.path = Path(path)
        if self.path.is_symlink():
            self.path = Path(os.path.realpath(self.path))
        self.direct = self.stdout or (self.path.exists() and not self.path.is_file() and not self.path.is_dir())
        self.partial = self.path if self.direct else self.path.with_name(self.path.name + ".partial")
        self.resume = resume and not self.direct
        self._lock_fd: int | None = None

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

    def _lock(self) -> None:
        """Create/lock `<path>.partial` without truncating it first (a second run must not wipe the first's)."""
        import fcntl

        if self.resume and self.path.exists() and not self.partial.exists():
            os.replace(self.path, self.partial)
        fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(f"{self.path}: in use by another shtrack run") from None
        if not self.resume:
            os.ftruncate(fd, 0)
        self._lock_fd = fd

    def _open_target(self, mode: str = "w", **kw):
        self.check()
        if self.stdout:
            return os.fdopen(os.dup(1), "w", **kw)
        if self.direct:
            return open(self.path, "w", **kw)
        self._lock()
        return open(self.partial, "a", **kw)

    def _finalise(self) -> None:
        if not self.direct and self.partial.exists():
            os.replace(self.partial, self.path)
        self._release()

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


class CsvSink(_AtomicFile):
    """OpenFace's column layout (frame, face_id, timestamp, confidence, success, x_0..x_67, y_0..y_67), then the
    face box. Coordinates carry 3 decimals. Frames without faces get one `success=0` row (face_id -1) unless
    `missing_rows=False`."""

    def __init__(self, path: str | Path, missing_rows: bool = True, resume: bool = False, file_column: bool = False):
        super().__init__(path, resume)
        self.missing_rows = missing_rows
        self.file_column = file_column    # image folders: which photo a row is from, after the box columns

    def __enter__(self) -> "CsvSink":
        existing = self.resume and (self.partial.exists() or self.path.exists())
        self._file = self._open_target(newline="")
        self._writer = csv.writer(self._file)
        if not existing or self._file.tell() == 0:
            self._writer.writerow(CSV_COLUMNS + (["file"] if self.file_column else []))
        return self

    def append(self, result: FrameResult) -> None:
        frame, faces = result.frame, result.faces
        if len(faces) == 0 and self.missing_rows:
            self._writer.writerow([frame.index, -1, f"{frame.timestamp:.3f}", "0.000", 0]
                                  + [""] * (2 * NUM_LANDMARKS) + [""] * 4 + self._file_cell(frame))
        # x_0..x_67, y_0..y_67, then the box: formatted in one operation per row (16 faces a frame: a 2 ms
        # loop of f-strings otherwise).
        values = np.concatenate([faces.xy.transpose(0, 2, 1).reshape(len(faces), 2 * NUM_LANDMARKS), faces.boxes], 1)
        scores = faces.score
        for i in range(len(faces)):
            row = [frame.index, int(faces.face_id[i]), f"{frame.timestamp:.3f}", f"{scores[i]:.3f}",
                   int(faces.success[i])]
            row += (_COORDINATES % tuple(values[i].tolist())).split(",")
            self._writer.writerow(row + self._file_cell(frame))
        self._file.flush()

    def _file_cell(self, frame) -> list[str]:
        return [Path(frame.source).name] if self.file_column else []

    def __exit__(self, *exc) -> None:
        self._file.close()
        self._finalise()


class JsonlSink(_AtomicFile):
    """One JSON object per frame, with per-landmark confidence."""

    def __enter__(self) -> "JsonlSink":
        self._file = self._open_target()
        return self

    def append(self, result: FrameResult) -> None:
        faces = result.faces
        record = {"frame": result.frame.index, "timestamp": round(result.frame.timestamp, 6), "faces": [
            {"face_id": int(faces.face_id[i]), "confidence": round(float(faces.score[i]), 4),
             "success": bool(faces.success[i]), "box": [round(float(v), 3) for v in faces.boxes[i]],
             # float64 before rounding: a rounded float32 printed as a Python float is 131.718994140625
             "landmarks": np.round(faces.xy[i].astype(np.float64), 3).tolist(),
             "landmark_confidence": np.round(faces.confidence[i].astype(np.float64), 3).tolist()}
            for i in range(len(faces))]}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def __exit__(self, *exc) -> None:
        self._file.close()
        self._finalise()


def draw(image: np.ndarray, result: FrameResult) -> np.ndarray:
    """Landmarks, boxes and ids drawn on a copy of the frame, sized to each face: a dot is 1/60 of the face
    (so the 68 points of a 20-px face stay 68 points, not one blob); faces whose landmarks failed this frame
    get their box only, in red."""
    canvas = image.copy()
    faces = result.faces
    font = max(0.35, max(canvas.shape[:2]) / 2400)
    for i in range(len(faces)):
        x0, y0, x1, y1 = faces.boxes[i]
        side = float(x1 - x0)
        pad = 0.15 * side
        box_colour = (255, 200, 0) if faces.success[i] else (0, 0, 255)
        cv2.rectangle(canvas, (int(x0 - pad), int(y0 - pad)), (int(x1 + pad), int(y1 + pad)), box_colour, 1)
        cv2.putText(canvas, f"{faces.face_id[i]}", (int(x0 - pad), max(0, int(y0 - pad) - 3)),
                    cv2.FONT_HERSHEY_SIMPLEX, font, box_colour, 1, cv2.LINE_AA)
        if not faces.success[i]:
            continue
        radius = int(round(4 * min(max(side / 60, 0.5), 3.0)))      # in 1/4 px (shift=2)
        for x, y in faces.xy[i]:
            cv2.circle(canvas, (int(round(x * 4)), int(round(y * 4))), radius, (0, 255, 0), -1, cv2.LINE_AA, shift=2)
    return canvas


def enlarged(result: FrameResult, at_least: int) -> tuple[np.ndarray, FrameResult]:
    """The frame enlarged by a whole factor until its longer side is >= at_least, with the faces scaled
    to match (pixel centres kept): what the video and window sinks draw on."""
    image = result.frame.image
    k = max(1, int(np.ceil(at_least / max(image.shape[:2]))))
    if k == 1:
        return image, result
    faces = result.faces[np.arange(len(result.faces))]
    faces.xy, faces.boxes = faces.xy * k + (k - 1) / 2, faces.boxes * k
    return cv2.resize(image, None, fx=k, fy=k, interpolation=cv2.INTER_NEAREST), FrameResult(result.frame, faces)


class VideoSink(_AtomicFile):
    """Annotated MP4 (H.264 when FFmpeg has it, else MPEG-4 Part 2), written with PyAV."""

    def __init__(self, path: str | Path, fps: float = 25.0, upscale_to: int = 480):
        super().__init__(path)
        self.fps, self.upscale_to = fps, upscale_to
        self._container = None

    def __enter__(self) -> "VideoSink":
        self.check()
        if not self.direct:
            self._lock()
        return self

    def _open(self, width: int, height: int) -> None:
        import av
        from fractions import Fraction

        self._container = av.open(str(self.partial), mode="w", format="mp4")   # the partial file is locked
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        rate = Fraction(self.fps).limit_denominator(1000) if self.fps else Fraction(25)
        self._stream = self._container.add_stream(codec, rate=rate)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"

    def append(self, result: FrameResult) -> None:
        import av

        # Tiny surveillance frames are drawn on an upscaled copy so the 68 points stay visible.
        canvas = draw(*enlarged(result, self.upscale_to))
        h, w = canvas.shape[:2]
        canvas = canvas[: h - h % 2, : w - w % 2]
        if self._container is None:
            self._open(canvas.shape[1], canvas.shape[0])
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(canvas), format="bgr24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def __exit__(self, *exc) -> None:
        if self._container is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._finalise()
        else:   # no frame came: keep whatever the path held, drop the empty partial
            if not self.direct and self.partial.exists() and self.partial.stat().st_size == 0:
                self.partial.unlink()
            self._release()


class FaceDumpSink:
    """Each track's hallucinated (super-resolved) face as PNG every `every` frames: DIR/face_<id>/<frame>.png."""

    def __init__(self, folder: str | Path, every: int = 10):
        self.folder, self.every = Path(folder), max(1, every)

    def __enter__(self) -> "FaceDumpSink":
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
            cv2.imwrite(str(out / f"{result.frame.index:06d}.png"), faces.hallucinated[i])

    def __exit__(self, *exc) -> None:
        pass


class WindowSink:
    """Live OpenCV window (webcam --show). Needs a display and opencv-python (not -headless)."""

    def __enter__(self) -> "WindowSink":
        if "GUI: NONE" in " ".join(cv2.getBuildInformation().split()):
            raise OSError("--show needs OpenCV built with a GUI; this one is opencv-python-headless: "
                          "pip uninstall opencv-python-headless && pip install opencv-python")
        try:
            cv2.namedWindow("shtrack", cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise OSError(f"--show cannot open a window (no display?): {str(exc).strip().splitlines()[-1]}") from None
        return self

    SMALL = 480     # frames are enlarged to at least this side, so small faces stay visible

    def __init__(self):
        self._last: float | None = None
        self._fps = 0.0
        self._last_shape = None

    def append(self, result: FrameResult) -> None:
        import time

        now = time.perf_counter()
        if self._last is not None:     # live FPS: frames shown per second, smoothed over ~10 frames
            rate = 1 / max(now - self._last, 1e-6)
            self._fps = 0.9 * self._fps + 0.1 * rate if self._fps else rate
        self._last = now
        canvas = draw(*enlarged(result, self.SMALL))
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
