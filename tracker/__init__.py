"""shtrack's tracker: source -> detector -> crop -> backend -> smoother -> sinks."""

from .pipeline import FaceTracker, TrackerOptions, track
from .sinks import CsvSink, JsonlSink, VideoSink
from .sources import SourceError, open_source
from .types import Faces, Frame, FrameResult

__all__ = ["FaceTracker", "TrackerOptions", "track", "CsvSink", "JsonlSink", "VideoSink", "SourceError",
           "open_source", "Faces", "Frame", "FrameResult"]
