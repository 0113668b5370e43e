"""Run `shtrack --source CLIP --show` and take a screenshot of the display while its window is up.

    python tests/show_window.py OUT.png        # under a display (tests run it under xvfb-run)

Used by tests/test_tracker.py::test_show_opens_a_window_with_landmarks_and_fps with a Python that has GUI
OpenCV (opencv-python) and Pillow; the base install's headless OpenCV refuses --show instead. The clip is the
demo's 100 frames played 6 times (a camera that keeps sending), so the window is still up when the screen is
grabbed.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def main(out: str) -> int:
    from PIL import ImageGrab

    from tracker.cli import main as shtrack
    from tracker.demo import write_clip
    from tracker.sources import open_source

    with open_source("demo") as demo:
        frames = [f.image for f in demo]
    clip = write_clip(frames * 6, Path(tempfile.mkdtemp()) / "camera.mp4", 25)

    def grab():
        # Wait for the window (anything but the black root window), then one more second of tracking.
        deadline = time.time() + 30
        while time.time() < deadline and np.asarray(ImageGrab.grab()).max() == 0:
            time.sleep(0.2)
        time.sleep(1.0)
        ImageGrab.grab().save(out)

    # The GUI (and shtrack's signal handler) belong on the main thread; the screenshot is taken beside it.
    grabber = threading.Thread(target=grab)
    grabber.start()
    code = shtrack(["--source", str(clip), "--show", "--quiet"])
    grabber.join(timeout=60)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
