"""Frame sources: video files, URLs (RTSP/HTTP), webcams, image folders and the bundled demo clip.

`open_source(spec)` returns an iterator of `Frame`s. Video is decoded with PyAV on a reader thread that
feeds a bounded queue, so decoding overlaps inference while memory stays constant. Timestamps come from
the stream's presentation times. Damaged packets mid-file are skipped and counted, not fatal.
"""

from __future__ import annotations

import errno
import logging
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import os

# Decoded pictures are bounded (OpenCV reads this once, at its first decode): a few-MB PNG can declare
# gigapixels. 2^26 pixels is an 8192x8192 photo, 200 MB in BGR.
MAX_IMAGE_PIXELS = 1 << 26
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_PIXELS))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from .types import Frame  # noqa: E402

log = logging.getLogger("shtrack")

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv")
URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
DEMO_CLIP = Path(__file__).parent / "assets" / "demo.mp4"


class SourceError(ValueError):
    """An input that cannot be opened; the message is one line naming the input."""


class Source:
    """Iterator of Frames with a known (or unknown: None) frame count and a close()."""

    def __init__(self, name: str, frames: Iterator[Frame], total: int | None, fps: float | None, live: bool,
                 closer: Callable[[], None] = lambda: None):
        self.name, self._frames, self.total, self.fps, self.live = name, frames, total, fps, live
        self._closer = closer
        self.skipped = 0
        self.ended_early = False    # the stream stopped before its end (an error, or fewer frames than it declares)
        self.frames_read = 0
        self.photos = False         # an image folder: every frame is its own photo (Frame.source names it)

    def __iter__(self) -> Iterator[Frame]:
        return self._frames

    def close(self) -> None:
        self._closer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def is_live(spec: str | int) -> bool:
    """A webcam, a device index or a stream URL: frames come as they happen, not from a file."""
    text = str(spec)
    return text == "webcam" or text.isdigit() or text.startswith(URL_SCHEMES)


def open_source(spec: str | int, queue_size: int = 8, read_timeout: float = 10.0, follow: float = 0.0,
                first_frame: int = 1) -> Source:
    """demo | webcam | DEVICE_INDEX | URL | video file | folder of images. follow: a video file still being
    written is read on as it grows, until no byte has come for `follow` seconds (0: read to its current end).
    first_frame: a video file starts at the keyframe before it (open_video)."""
    text = str(spec)
    if text == "demo":
        if not DEMO_CLIP.exists():
            raise SourceError(f"demo clip missing at {DEMO_CLIP} (reinstall shtrack)")
        return open_video(str(DEMO_CLIP), queue_size, name="demo")
    if text == "webcam" or text.isdigit():
        return open_webcam(0 if text == "webcam" else int(text), queue_size)
    if text.startswith(URL_SCHEMES):
        return open_video(text, queue_size, live=True, read_timeout=read_timeout)
    path = Path(text)
    if not path.exists():
        raise SourceError(f"{text}: no such file or directory")
    if path.is_dir():
        return open_image_folder(path)
    if not path.is_file():
        # A FIFO or device would block until a writer comes (or stream without end): streams come as URLs,
        # cameras as `webcam` or an index.
        raise SourceError(f"{text}: not a regular file (give a stream as a URL, a camera as an index)")
    return open_video(text, queue_size, follow=follow, first_frame=first_frame)


def _threaded(name: str, produce: Callable[[Callable[[Frame], bool]], None], queue_size: int) -> tuple[Iterator[Frame], Callable[[], None]]:
    """Run `produce(put)` on a reader thread; frames come out of a bounded queue on the caller's thread."""
    q: queue.Queue = queue.Queue(maxsize=queue_size)
    stop = threading.Event()
    done = object()

    def put(frame: Frame) -> bool:
        while not stop.is_set():
            try:
                q.put(frame, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run():
        try:
            produce(put)
        except BaseException as exc:  # noqa: BLE001 -- handed to the consumer thread
            q.put(exc)
        finally:
            q.put(done)

    thread = threading.Thread(target=run, name=f"reader:{name}", daemon=True)
    thread.start()

    def frames() -> Iterator[Frame]:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close():
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)

    return frames(), close


def open_video(url: str, queue_size: int = 8, name: str | None = None, live: bool = False,
               read_timeout: float = 10.0, av_format: str | None = None, options: dict | None = None,
               follow: float = 0.0, first_frame: int = 1) -> Source:
    """first_frame: the first frame wanted (1-based); a file is sought to the keyframe before it, so the frames
    before that keyframe are neither decoded nor handed on (frame numbers stay the file's, found from the
    packets' timestamps; a file whose packets do not give them is decoded from its start)."""
    import av

    name = name or url
    opts = dict(options or {})
    if url.startswith(("rtsp://", "rtsps://")):
        opts.setdefault("rtsp_transport", "tcp")
    growing = not live and os.path.isfile(url)
    if follow > 0 and growing:
        # FFmpeg's file protocol retries at the end of the file; a read that waits `follow` s fails with EIO,
        # which is the end of a recording that stopped growing.
        opts |= {"follow": "1", "rw_timeout": str(int(follow * 1e6))}
    size_at_open = _size(url) if growing else None
    try:
        container = av.open(url, format=av_format, options=opts, timeout=(read_timeout, read_timeout))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        if getattr(exc, "errno", None) == errno.EINTR:
            raise KeyboardInterrupt("interrupted while opening") from None   # a signal, not a bad input
        raise SourceError(f"{name}: cannot open ({_reason(exc)})") from None
    streams = container.streams.video
    if not streams:
        container.close()
        raise SourceError(f"{name}: no video stream")
    stream = streams[0]
    stream.thread_type = "AUTO"
    total = stream.frames or None
    fps = float(stream.average_rate) if stream.average_rate else None
    source = Source(name, iter(()), total, fps, live)

    def produce(put: Callable[[Frame], bool]) -> None:
        index = 0
        seek = _keyframe_before(container, stream, first_frame) if first_frame > 1 and growing else None
        if seek is not None:
            container.seek(seek[0], stream=stream, backward=True, any_frame=False)
            index = seek[1] - 1
        first_pts = seek[0] if seek is not None else None
        start = index              # frames before the seek point: not read
        handed = 0                 # frames up to this number were handed on before (recover_tail)

        def emit(decoded) -> bool:
            """Hand decoded frames on; False once the consumer stopped. A frame that cannot be converted is
            damage (skipped, counted); the machine running out of threads or memory is an error, not damage."""
            nonlocal index, first_pts
            for vf in decoded:
                if first_pts is not None:
                    # After a seek: leading frames of an open GOP come before the keyframe (and before the first
                    # frame wanted); the keyframe itself must be the first frame after them, or the numbering
                    # from the timestamps does not hold.
                    if vf.pts is not None and vf.pts < first_pts:
                        continue
                    if vf.pts != first_pts:
                        raise _SeekMismatch
                    first_pts = None
                index += 1
                if index <= handed:
                    continue
                ts = float(vf.time) if vf.time is not None else (index - 1) / (fps or 25.0)
                try:
                    image = upright(vf.to_ndarray(format="bgr24"), vf)
                except (ValueError, av.error.FFmpegError) as exc:
                    if _resource_error(exc):
                        raise
                    source.skipped += 1
                    log.warning("%s: skipped frame %d (%s)", name, index, _reason(exc))
                    continue
                if not put(Frame(index, ts, image, name)):
                    return False
            return True

        def demux(source_container, video, count_damage: bool = True) -> bool:
            for packet in source_container.demux(video):
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError as exc:
                    if count_damage:
                        source.skipped += 1
                        log.warning("%s: skipped a damaged packet (%s)", name, _reason(exc))
                    continue
                if not emit(decoded):
                    return False
            return True

        def recover_tail() -> bool:
            """Frame threading drops the frames it holds when the packet after them is cut: decode the last GOP
            read again without it and hand on the frames past the last one read. False once the consumer
            stopped."""
            nonlocal index, first_pts, handed
            read = index
            try:
                with av.open(url, format=av_format, options=opts) as again:
                    tail = again.streams.video[0]
                    tail.thread_type = "SLICE"
                    seek = _keyframe_before(again, tail, read)
                    if seek is None:
                        return True
                    again.seek(seek[0], stream=tail, backward=True, any_frame=False)
                    index, first_pts, handed = seek[1] - 1, seek[0], read
                    return demux(again, tail, count_damage=False)   # its damage was counted the first time
            except (av.error.FFmpegError, _SeekMismatch):
                return True
            finally:
                index, first_pts = max(index, read), None

        try:
            try:
                if not demux(container, stream):
                    return
            except _SeekMismatch:
                log.debug("%s: the seek to frame %d missed its keyframe: decoding from the start", name, index + 1)
                stream.codec_context.flush_buffers()
                container.seek(stream.start_time or 0, stream=stream, backward=True, any_frame=False)
                index, first_pts, start = 0, None, 0
                if not demux(container, stream):
                    return
        except av.error.FFmpegError as exc:
            if _resource_error(exc):
                raise
            stopped_growing = follow > 0 and growing and getattr(exc, "errno", None) == errno.EIO
            if index == start and not stopped_growing:
                raise SourceError(f"{name}: cannot decode ({_reason(exc)})") from None
            # The frames the threaded decoder still holds are whole: they come out before the stream ends.
            try:
                emit(stream.codec_context.decode(None))
            except av.error.FFmpegError:
                pass
            if stopped_growing:
                log.info("%s: no new data for %g s after frame %d: the recording is taken as ended", name, follow,
                         index)
                if index == start:
                    raise SourceError(f"{name}: no decodable frame came within --follow {follow:g} s") from None
            else:
                log.warning("%s: stream ended early after frame %d (%s)", name, index, _reason(exc))
                source.ended_early = True
        else:
            if index == start:
                raise SourceError(f"{name}: no decodable frame (the header says {total or 'no'} frames)")
            # A file cut short with its index at the front decodes without an error, just fewer frames.
            if total and index + source.skipped < 0.98 * total:
                if growing and not recover_tail():
                    return
                log.warning("%s: the file declares %d frames, %d could be read", name, total, index)
                source.ended_early = True
            elif size_at_open is not None and not follow and _still_growing(url, size_at_open):
                log.warning("%s: the file grew while it was read (a recording still being written?): %d frames "
                            "read, up to its end at that moment; --follow SECONDS reads on as it grows", name, index)
                source.ended_early = True
        finally:
            source.frames_read = index
            container.close()

    source._frames, source._closer = _threaded(name, produce, queue_size)
    return source


def upright(image: np.ndarray, frame) -> np.ndarray:
    """Apply the stream's display matrix (phone videos store portrait frames rotated): output as displayed.

    PyAV's `rotation` is the matrix's counter-clockwise angle; players show the frame turned by it.
    """
    angle = getattr(frame, "rotation", 0) or 0
    quarter = int(round(angle / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(image, quarter)) if quarter else image


def _camera_format() -> tuple[str, Callable[[int], str]]:
    if sys.platform.startswith("linux"):
        return "v4l2", lambda i: f"/dev/video{i}"
    if sys.platform == "darwin":
        return "avfoundation", lambda i: f"{i}:none"
    return "dshow", lambda i: f"video={i}"


def open_webcam(index: int, queue_size: int = 2) -> Source:
    """A camera through PyAV's capture device (v4l2 / avfoundation / dshow). A short queue keeps latency low."""
    fmt, device = _camera_format()
    if fmt == "v4l2" and not Path(device(index)).exists():
        raise SourceError(f"webcam {index}: no such device {device(index)}")
    try:
        source = open_video(device(index), queue_size, name=f"webcam:{index}", live=True, av_format=fmt,
                            options={"framerate": "30"})
    except SourceError as exc:
        raise SourceError(f"webcam {index}: cannot open ({str(exc).split('(', 1)[-1].rstrip(')')})") from None
    source.total = None
    return source


def read_image(path: Path) -> np.ndarray | None:
    """A photo as BGR, or None (unreadable, not an image, over MAX_IMAGE_PIXELS). Read as bytes and decoded in
    memory: a file name in any encoding works (cv2.imread takes only names it can encode)."""
    try:
        if not path.is_file():
            return None
        data = np.fromfile(path, np.uint8)
        return cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    except (OSError, cv2.error):
        return None


def _printable(path: Path) -> str:
    """A path for a log line, with undecodable bytes shown as escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def open_image_folder(folder: Path, fps: float = 25.0) -> Source:
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    if not images:
        raise SourceError(f"{folder}: no images in this folder (and batch mode needs --out DIR for videos)")
    source = Source(str(folder), iter(()), len(images), fps, False)
    source.photos = True

    def frames() -> Iterator[Frame]:
        for i, path in enumerate(images, 1):
            image = read_image(path)
            if image is None:
                source.skipped += 1
                log.warning("%s: skipped unreadable image", _printable(path))
                continue
            yield Frame(i, (i - 1) / fps, image, str(path))

    source._frames = frames()
    return source


def frames_from_arrays(images: list[np.ndarray], fps: float = 25.0, name: str = "arrays", live: bool = False) -> Source:
    """In-memory frames (tests, Python API users with their own capture; live=True: treated as a live stream)."""
    gen = (Frame(i, (i - 1) / fps, img, name) for i, img in enumerate(images, 1))
    return Source(name, gen, len(images), fps, live)


# A file written to within RECENT_WRITE s of its end being reached is watched GROWTH_WAIT s more: a recorder
# appends several times a second, a finished copy does not change.
RECENT_WRITE = 2.0
GROWTH_WAIT = 1.0


# Packets demuxed past the wanted frame before its keyframe is chosen: B-frames arrive out of presentation order,
# by at most a few frames.
REORDER_MARGIN = 64


class _SeekMismatch(Exception):
    """The first frame decoded after a seek is not the keyframe sought."""


def _keyframe_before(container, stream, frame: int) -> tuple[int, int] | None:
    """(pts of the last keyframe at or before frame number `frame`, that keyframe's frame number), from the
    packets' timestamps alone (demuxed, not decoded; the container is left for the caller to seek), or None
    when a packet has no timestamp or the file has fewer frames."""
    import bisect

    times, keys = [], []
    for packet in container.demux(stream):
        if packet.size == 0:        # the demuxer's end-of-stream packet
            continue
        if packet.pts is None:
            return None
        times.append(packet.pts)
        if packet.is_keyframe:
            keys.append(packet.pts)
        if len(times) >= frame + REORDER_MARGIN:
            break
    times.sort()
    if len(times) < frame:
        return None
    target = times[frame - 1]
    before = [k for k in keys if k <= target]
    if not before:
        return None
    key = max(before)
    return key, bisect.bisect_left(times, key) + 1


def _still_growing(path: str, size_at_open: int | None) -> bool:
    """True when the file at `path` has grown since it was opened, or grows within GROWTH_WAIT s of now while
    it was last written less than RECENT_WRITE s ago (a recording still being written)."""
    import time

    if _size(path) != size_at_open:
        return True
    try:
        if time.time() - os.path.getmtime(path) > RECENT_WRITE:
            return False
    except OSError:
        return False
    time.sleep(GROWTH_WAIT)
    return _size(path) != size_at_open


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def _resource_error(exc: BaseException) -> bool:
    """Out of threads, processes or memory: the machine, not the file (never counted as a damaged frame)."""
    return getattr(exc, "errno", None) in (errno.EAGAIN, errno.ENOMEM)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__
