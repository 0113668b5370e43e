"""Face detection: OpenCV's frontal Haar cascade, which ships inside the opencv-python 4.x wheel (no download).

Small faces: the cascade's window is 24 px, so frames are upscaled until a `min_face` px face covers
~27 px; large minimum sizes downscale instead, which is what makes detection cheap at 640x480.
Boxes are returned in the landmark-box convention of sht_model.geometry (square around the 68 points),
mapped from the Haar box by a fit on 300W (benchmarks/fit_detector_box.py: median of 475 faces).
"""

from __future__ import annotations

import cv2
import numpy as np

# Landmark box relative to the Haar box, in Haar-box widths (benchmarks/fit_detector_box.py).
HAAR_TO_LANDMARK_DY = 0.144
HAAR_TO_LANDMARK_SIDE = 0.888
FINE_SCALE_FACTOR = 1.05   # cascade pyramid step of a full scan: the finest step, misses least
CASCADE_WINDOW = 27.0   # upscale so a min_face face covers this many px (1.5x for 16-px faces)


class HaarDetector:
    def __init__(self, min_face: float = 16.0, max_faces: int = 0, min_neighbors: int = 2):
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"cannot load the Haar cascade at {path} (opencv-python 4.x is required)")
        self.min_face = float(min_face)
        self.max_faces = max_faces
        self.min_neighbors = min_neighbors

    def detect(self, image: np.ndarray, scale_factor: float = FINE_SCALE_FACTOR) -> np.ndarray:
        """BGR or gray image -> (n, 5) float32 boxes x0, y0, x1, y1, score, largest first.

        `scale_factor` is the cascade's pyramid step: FINE_SCALE_FACTOR misses least; the tracker's periodic scan
        for new faces uses a coarser step (TrackerOptions.rescan_scale_factor) at a third of the cost."""
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        # Haar boxes are ~1/0.888 of the landmark box: a face of `min_face` landmark width gives this Haar box.
        min_haar = self.min_face / HAAR_TO_LANDMARK_SIDE
        scale = CASCADE_WINDOW / min_haar
        if abs(scale - 1.0) > 0.05:
            gray = cv2.resize(gray, None, fx=scale, fy=scale,
                              interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
        found, _, weights = self.cascade.detectMultiScale3(
            gray, scaleFactor=scale_factor, minNeighbors=self.min_neighbors, minSize=(24, 24), outputRejectLevels=True)
        if len(found) == 0:
            return np.zeros((0, 5), np.float32)
        found = np.asarray(found, np.float32) / scale
        score = np.asarray(weights, np.float32).reshape(-1)
        x, y, w = found[:, 0], found[:, 1], found[:, 2]
        cx, cy = x + w / 2, y + w / 2 + HAAR_TO_LANDMARK_DY * w
        half = HAAR_TO_LANDMARK_SIDE * w / 2
        boxes = np.stack([cx - half, cy - half, cx + half, cy + half, score], 1)
        boxes = boxes[np.argsort(-(boxes[:, 2] - boxes[:, 0]))]
        return boxes[: self.max_faces] if self.max_faces else boxes
