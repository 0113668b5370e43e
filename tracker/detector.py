"""Face detection: YuNet (libfacedetection.train, Apache-2.0, `assets/yunet_n_dynamic.onnx`) on ONNX Runtime,
decoded in numpy; OpenCV's Haar cascade kept behind the same interface (`--detector haar`).

A detector takes an image already scaled by the caller (`tracker.scan`) and returns boxes in that image's
pixels, in the landmark-box convention of sht_model.geometry (square around the 68 points), with a score.
`native_face_px` says how wide (landmark box, px) a face must be in the image it is given to be found
reliably; the scan scales frames so that the smallest face wanted reaches it.

YuNet was chosen over the cascade by `python -m benchmarks.crowd` (docs/results.md): on
face-free backgrounds the cascade fires tens of times per frame, YuNet about never.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

ASSETS = Path(__file__).resolve().parent / "assets"
YUNET_PATH = ASSETS / "yunet_n_dynamic.onnx"

# Landmark box from YuNet's box, in YuNet-box widths: centre offset and side (benchmarks/fit_detector_box.py,
# median over training-split 300W faces scaled to a 40-px landmark box).
# 605 of 606 faces matched, half the interquartile range 0.02 / 0.022 / 0.037.
YUNET_TO_LANDMARK_DX = -0.006
YUNET_TO_LANDMARK_DY = 0.119
YUNET_TO_LANDMARK_SIDE = 1.068
# The same for the Haar cascade's box at the settings below (575 of 606 matched).
HAAR_TO_LANDMARK_DX = -0.009
HAAR_TO_LANDMARK_DY = 0.120
HAAR_TO_LANDMARK_SIDE = 0.784


class Detector(Protocol):
    name: str
    native_face_px: float      # landmark-box width found reliably at the image's own scale
    max_face_px: float         # and the widest (faces larger than this are found at a coarser scale)

    def detect(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Images of one size (BGR uint8) -> per image (n, 5) float32: x0, y0, x1, y1 (landmark box), score.
        Called from two threads at once (the scan ahead and the re-checks): it must be safe to."""


def nms(boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """(n, >=5) boxes with score in column 4 -> the kept rows, best first (cv2.dnn.NMSBoxes)."""
    if len(boxes) == 0:
        return boxes
    xywh = np.stack([boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1)
    keep = np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), boxes[:, 4].tolist(), 0.0, iou_threshold), int).reshape(-1)
    keep = keep[np.argsort(-boxes[keep, 4])]
    return boxes[keep]


class YuNetDetector:
    """YuNet-n: input (B, 3, H, W) BGR 0-255, H and W padded to multiples of 32; outputs per stride 8/16/32
    cls, obj, bbox, kps over the grid (../shared/detectors/README.md)."""

    name = "yunet"
    native_face_px = 32.0
    max_face_px = 256.0
    STRIDES = (8, 16, 32)

    # Low on purpose: re-checks of known tracks accept weak detections; new faces need
    # TrackerOptions.min_detector_score (tracker.tracking).
    def __init__(self, path: str | Path = YUNET_PATH, score_threshold: float = 0.3, nms_iou: float = 0.3,
                 threads: int = 0):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.outputs = [f"{kind}_{s}" for s in self.STRIDES for kind in ("cls", "obj", "bbox", "kps")]
        self.score_threshold, self.nms_iou = score_threshold, nms_iou

    def detect_raw(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """-> per image (n, 15): YuNet's own box x0, y0, x1, y1, score, 5 keypoints (x, y), after NMS."""
        h, w = images[0].shape[:2]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
        batch = np.zeros((len(images), 3, ph, pw), np.float32)
        for i, image in enumerate(images):
            batch[i, :, :h, :w] = image.transpose(2, 0, 1)
        out = dict(zip(self.outputs, self.session.run(self.outputs, {"input": batch})))
        decoded = [self._decode(out, s, ph, pw) for s in self.STRIDES]
        rows = np.concatenate(decoded, 1)                              # (B, N, 15)
        return [nms(r[r[:, 4] >= self.score_threshold], self.nms_iou) for r in rows]

    def _decode(self, out: dict, stride: int, h: int, w: int) -> np.ndarray:
        cols = w // stride
        n = (h // stride) * cols
        gy, gx = np.divmod(np.arange(n), cols)
        anchor = np.stack([gx, gy], 1).astype(np.float32) * stride       # (N, 2)
        score = out[f"cls_{stride}"][..., 0] * out[f"obj_{stride}"][..., 0]
        bbox, kps = out[f"bbox_{stride}"], out[f"kps_{stride}"]
        centre = bbox[..., :2] * stride + anchor
        size = np.exp(bbox[..., 2:]) * stride
        points = kps.reshape(*kps.shape[:2], 5, 2) * stride + anchor[:, None, :]
        return np.concatenate([centre - size / 2, centre + size / 2, score[..., None],
                               points.reshape(*kps.shape[:2], 10)], -1).astype(np.float32)

    def detect(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return [to_landmark_box(r[:, :5], YUNET_TO_LANDMARK_DX, YUNET_TO_LANDMARK_DY, YUNET_TO_LANDMARK_SIDE)
                for r in self.detect_raw(images)]


class HaarDetector:
    """OpenCV's frontal Haar cascade (ships inside the opencv-python 4.x wheel). Its window is 24 px, so a face
    of native_face_px covers ~27 px of Haar box. It has no calibrated score: `min_neighbors` is its threshold,
    and every box it returns scores 1."""

    name = "haar"
    native_face_px = 24.0
    max_face_px = 256.0

    def __init__(self, min_neighbors: int = 2, scale_factor: float = 1.05):
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"cannot load the Haar cascade at {path} (opencv-python 4.x is required)")
        self.min_neighbors, self.scale_factor = min_neighbors, scale_factor
        # One cascade object is not safe to run from two threads at once (the scan runs ahead on a worker while
        # re-checks run on the caller's thread; concurrent detectMultiScale calls fail OpenCV's assertions).
        self._lock = threading.Lock()

    def detect(self, images: list[np.ndarray]) -> list[np.ndarray]:
        with self._lock:
            return self._detect(images)

    def _detect(self, images: list[np.ndarray]) -> list[np.ndarray]:
        result = []
        for image in images:
            gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            found = self.cascade.detectMultiScale(
                gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(24, 24),
                maxSize=(int(self.max_face_px / HAAR_TO_LANDMARK_SIDE),) * 2)
            found = np.asarray(found, np.float32).reshape(-1, 4)
            boxes = np.concatenate([found[:, :2], found[:, :2] + found[:, 2:], np.ones((len(found), 1), np.float32)], 1)
            result.append(to_landmark_box(boxes, HAAR_TO_LANDMARK_DX, HAAR_TO_LANDMARK_DY, HAAR_TO_LANDMARK_SIDE))
        return result


def to_landmark_box(boxes: np.ndarray, dx: float, dy: float, side: float) -> np.ndarray:
    """Detector boxes (n, 5) -> landmark-convention squares: centre moved by (dx, dy) box widths, side x side."""
    w = boxes[:, 2] - boxes[:, 0]
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 + dx * w
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 + dy * w
    half = side * w / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half, boxes[:, 4]], 1).astype(np.float32)


DETECTORS = {"yunet": YuNetDetector, "haar": HaarDetector}


def load_detector(name: str = "yunet", threads: int = 0) -> Detector:
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
    return YuNetDetector(threads=threads) if name == "yunet" else HaarDetector()
