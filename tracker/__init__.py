"""shtrack's tracker: source -> detector -> crop -> backend -> smoother -> sinks."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("shtrack")
except PackageNotFoundError:     # a checkout that was never installed
    __version__ = "0+unknown"

from .annotate import LandmarkAnnotator  # noqa: E402
from .pipeline import FaceTracker, TrackerOptions, track  # noqa: E402
from .sinks import CsvSink, JsonlSink, VideoSink  # noqa: E402
from .sources import SourceError, open_source  # noqa: E402
from .types import Faces, Frame, FrameResult  # noqa: E402

__all__ = ["FaceTracker", "TrackerOptions", "track", "CsvSink", "JsonlSink", "VideoSink", "LandmarkAnnotator",
           "SourceError", "open_source", "Faces", "Frame", "FrameResult", "__version__"]
