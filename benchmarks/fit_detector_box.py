"""Fit a detector's box -> landmark-box mapping (tracker/detector.py): python -m benchmarks.fit_detector_box [yunet|haar]

Training-split 300W faces (the held-out ones are not used) are scaled so the 68-point landmark box is 40 px
wide and centred on a 128x128 canvas of replicated edges; the detector runs on it, and the median offset of
the landmark-box centre and the median landmark-box side are printed in units of the detector box's width.
"""
from __future__ import annotations

import sys

import cv2
import numpy as np

from sht_model.geometry import landmark_box
from tracker.detector import HaarDetector, YuNetDetector
from train.data import split_records
from train.readers import read_300w

FACE_PX, CANVAS = 40.0, 128


def raw_boxes(detector, image: np.ndarray) -> np.ndarray:
    if isinstance(detector, YuNetDetector):
        return detector.detect_raw([image])[0][:, :5]
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    found = detector.cascade.detectMultiScale(gray, 1.05, 2, minSize=(24, 24))
    return np.array([[x, y, x + w, y + h, 1] for x, y, w, h in found], np.float32).reshape(-1, 5)


def main(argv: list[str]) -> int:
    name = argv[0] if argv else "yunet"
    detector = YuNetDetector(score_threshold=0.3) if name == "yunet" else HaarDetector()
    train, _ = split_records(read_300w("../shared/data/300w_train"))
    rows = []
    for record in train[::3]:
        image = cv2.imread(str(record.image))
        box = landmark_box(record.landmarks)
        k = FACE_PX / (box[2] - box[0])
        centre = (box[:2] + box[2:]) / 2
        m = np.array([[k, 0, CANVAS / 2 - k * centre[0]], [0, k, CANVAS / 2 - k * centre[1]]])
        canvas = cv2.warpAffine(image, m, (CANVAS, CANVAS), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        found = raw_boxes(detector, canvas)
        if not len(found):
            continue
        d = found[np.argmin(np.linalg.norm((found[:, :2] + found[:, 2:4]) / 2 - CANVAS / 2, axis=1))]
        w = d[2] - d[0]
        dc = np.array([CANVAS / 2, CANVAS / 2]) - (d[:2] + d[2:4]) / 2
        if np.linalg.norm(dc) > 0.3 * FACE_PX:
            continue
        rows.append([dc[0] / w, dc[1] / w, FACE_PX / w])
    rows = np.array(rows)
    print(f"{name}: matched {len(rows)} of {len(train[::3])} training-split faces")
    print("median dx, dy, side (x detector box width):", np.round(np.median(rows, 0), 3),
          "spread (IQR/2):", np.round((np.percentile(rows, 75, 0) - np.percentile(rows, 25, 0)) / 2, 3))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
