"""Face boxes and similarity crops, shared by training (making inputs) and the tracker (inverting them).

The crop convention: a face box is the square around the 68 landmarks (side = max of width and height);
the model sees a square crop CROP_SCALE times that side, centred on the box, warped to the input size.
"""

from __future__ import annotations

import cv2
import numpy as np

CROP_SCALE = 1.4


def landmark_box(xy: np.ndarray) -> np.ndarray:
    """(..., 68, 2) -> (..., 4) square box x0, y0, x1, y1 centred on the points, side = max(width, height)."""
    lo, hi = xy.min(-2), xy.max(-2)
    centre = (lo + hi) / 2
    side = (hi - lo).max(-1, keepdims=True)
    return np.concatenate([centre - side / 2, centre + side / 2], -1)


def crop_matrix(box: np.ndarray, out_size: int, angle_deg: float = 0.0, scale: float = CROP_SCALE) -> np.ndarray:
    """2x3 affine taking source pixels to crop pixels for a face box (x0, y0, x1, y1).

    Pixel centres sit at integer coordinates (OpenCV's convention), so the crop's centre pixel is at
    (out_size - 1) / 2.
    """
    x0, y0, x1, y1 = [float(v) for v in box]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = max(x1 - x0, y1 - y0) * scale
    k = out_size / max(side, 1e-6)
    a = np.deg2rad(angle_deg)
    cos, sin = np.cos(a) * k, np.sin(a) * k
    c = (out_size - 1) / 2
    return np.array([[cos, sin, c - cos * cx - sin * cy],
                     [-sin, cos, c + sin * cx - cos * cy]], dtype=np.float64)


def invert(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(matrix)


def apply(matrix: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to points (..., 2)."""
    return xy @ matrix[:, :2].T + matrix[:, 2]


def warp(image: np.ndarray, matrix: np.ndarray, out_size: int, interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    return cv2.warpAffine(image, matrix, (out_size, out_size), flags=interpolation, borderMode=cv2.BORDER_REPLICATE)
