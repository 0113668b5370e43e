"""Drawing, apart from writing: what the annotated video, the live window and the docs' pictures show.

    annotator = LandmarkAnnotator()
    picture = annotator.annotate(frame.image, faces)          # a copy; the frame is not touched

Green points and a blue box: landmarks trusted (`success=1`). A red box without points: a face that is tracked
but whose landmarks this frame are not trusted (`success=0`). Labels and lines are sized for the frame, so an id
reads at 1080p as at 320x240, and the legend says what the colours mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .types import Faces, FrameResult

TRUSTED = (255, 200, 0)      # BGR: box of a face whose landmarks are trusted
UNTRUSTED = (0, 0, 255)      # box of a tracked face whose landmarks are not
POINTS = (0, 255, 0)


@dataclass(frozen=True)
class LandmarkAnnotator:
    legend: bool = True
    # Faces narrower than this (source px) get an enlarged inset beside them, so their 68 points can be seen.
    inset_below: float = 0.0
    inset_scale: int = 4

    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        canvas = image.copy()
        h, w = canvas.shape[:2]
        # Text ~1/45 of the frame's height (24 px at 1080p), never below what OpenCV's Hershey font can render.
        font = max(0.45, h / 1350)
        thick = max(1, int(round(h / 540)))
        for i in range(len(faces)):
            x0, y0, x1, y1 = faces.boxes[i]
            side = float(x1 - x0)
            pad = 0.15 * side
            colour = TRUSTED if faces.success[i] else UNTRUSTED
            p0, p1 = (int(x0 - pad), int(y0 - pad)), (int(x1 + pad), int(y1 + pad))
            cv2.rectangle(canvas, p0, p1, colour, thick)
            _label(canvas, f"{faces.face_id[i]}", (p0[0], max(0, p0[1] - 3)), font, colour, thick)
            if not faces.success[i]:
                continue
            radius = int(round(4 * min(max(side / 60, 0.5), 3.0)))      # in 1/4 px (shift=2)
            for x, y in faces.xy[i]:
                cv2.circle(canvas, (int(round(x * 4)), int(round(y * 4))), radius, POINTS, -1, cv2.LINE_AA, shift=2)
        if self.inset_below > 0:
            self._insets(canvas, image, faces)
        if self.legend and len(faces):
            _legend(canvas, font, thick)
        return canvas

    def _insets(self, canvas: np.ndarray, image: np.ndarray, faces: Faces) -> None:
        """An enlarged copy of each small trusted face, with its points, above-right of its box."""
        k = self.inset_scale
        for i in np.flatnonzero(faces.success):
            x0, y0, x1, y1 = faces.boxes[i]
            side = x1 - x0
            if side >= self.inset_below:
                continue
            m = 0.3 * side
            cx0, cy0 = int(max(0, x0 - m)), int(max(0, y0 - m))
            cx1, cy1 = int(min(image.shape[1], x1 + m)), int(min(image.shape[0], y1 + m))
            if cx1 <= cx0 or cy1 <= cy0:
                continue
            patch = cv2.resize(image[cy0:cy1, cx0:cx1], None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
            for x, y in faces.xy[i]:
                cv2.circle(patch, (int((x - cx0) * k), int((y - cy0) * k)), max(1, k // 2), POINTS, -1, cv2.LINE_AA)
            ph, pw = patch.shape[:2]
            tx, ty = int(x1 + m + 4), int(y0 - ph)
            tx, ty = min(max(tx, 0), canvas.shape[1] - pw), min(max(ty, 0), canvas.shape[0] - ph)
            if tx < 0 or ty < 0:
                continue
            canvas[ty:ty + ph, tx:tx + pw] = patch
            cv2.rectangle(canvas, (tx, ty), (tx + pw - 1, ty + ph - 1), TRUSTED, 1)


def _label(canvas, text, origin, font, colour, thick) -> None:
    """Text with a dark outline: legible on any background."""
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font, colour, thick, cv2.LINE_AA)


def _legend(canvas, font, thick) -> None:
    h = canvas.shape[0]
    y = h - int(12 * font) - 4
    x = 8
    for text, colour in (("landmarks trusted", TRUSTED), ("tracked, landmarks not trusted", UNTRUSTED)):
        size = int(14 * font)
        cv2.rectangle(canvas, (x, y - size), (x + size, y), colour, -1)
        _label(canvas, text, (x + size + 6, y), font * 0.8, (255, 255, 255), max(1, thick - 1))
        x += size + 16 + cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font * 0.8, thick)[0][0]


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
