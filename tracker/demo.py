"""The bundled demo clip, made by the project itself: scikit-image's `astronaut()` photo (public domain,
NASA) moved, turned and downscaled inside a 320x240 frame so the face is 20-48 px wide.

Regenerate with `python -m tracker.demo` (writes tracker/assets/demo.mp4).
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from .sources import DEMO_CLIP

# The face in astronaut() has a landmark box of ~93 px around (223, 130) in the 512-px photo (found once with the Haar detector).
ASTRONAUT_FACE_WIDTH = 93.0
ASTRONAUT_FACE_CENTRE = (223.0, 130.0)


def demo_frames(n: int = 100, size: tuple[int, int] = (320, 240)) -> list[np.ndarray]:
    from skimage import data

    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    w, h = size
    frames = []
    for i in range(n):
        t = i / max(n - 1, 1)
        face_width = 20 + 28 * (0.5 - 0.5 * np.cos(2 * np.pi * t))   # 20 -> 48 -> 20 px
        scale = face_width / ASTRONAUT_FACE_WIDTH
        angle = 10 * np.sin(2 * np.pi * t)
        cx = w * (0.3 + 0.4 * t)
        cy = h * (0.5 + 0.15 * np.sin(4 * np.pi * t))
        m = cv2.getRotationMatrix2D(ASTRONAUT_FACE_CENTRE, angle, scale)
        m[:, 2] += np.array([cx, cy]) - ASTRONAUT_FACE_CENTRE
        frames.append(cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_AREA, borderValue=(70, 70, 70)))
    return frames


def write_clip(frames: list[np.ndarray], path: str | Path, fps: int = 25) -> Path:
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "18"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def main() -> int:
    path = write_clip(demo_frames(), DEMO_CLIP)
    print(f"{path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
