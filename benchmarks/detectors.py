"""YuNet variants for the detect stage, on small faces: python -m benchmarks.detectors [--scales 2.0 2.25]

The YuNet files in ../shared/detectors (yunet_n: the bundled one; yunet_s: smaller) on held-out 300W faces
shrunk so the 68-point landmark box is W px wide, centred in a 640x480 frame of replicated edges, then scaled
back up by the scan's factor (tracker.scan: 2x for 16-px faces) as the tracker would see them. A face is found
when a box centre lies within one inter-ocular distance of the face's centre (any score >= 0.3, the re-check
threshold, and >= 0.5). Also: false detections on the face-free test photos at 2x, and ms per 640-px tile on one
thread (best of three p50s). Writes benchmarks/results/detectors.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from sht_model.geometry import landmark_box
from tracker.detector import YuNetDetector
from train.data import split_records
from train.readers import read_300w

from .common import console, save, table, time_call
from .crowd import TEST_BACKGROUNDS, _backgrounds

DETECTORS = Path("../shared/detectors")
WIDTHS = (14, 16, 20, 24)
FRAME = (640, 480)


def recall(detector: YuNetDetector, records, width: float, scale: float) -> tuple[float, float]:
    """-> share of faces found with score >= 0.3 and >= 0.5."""
    w, h = FRAME
    best = []
    for record in records:
        image = cv2.imread(str(record.image))
        box = landmark_box(record.landmarks)
        k = width * scale / (box[2] - box[0])
        centre = (box[:2] + box[2:]) / 2
        m = np.array([[k, 0, w / 2 - k * centre[0]], [0, k, h / 2 - k * centre[1]]])
        frame = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        # The face at its source size, then upscaled as the scan does (the detail lost is lost).
        small = cv2.resize(frame, (round(w / scale), round(h / scale)), interpolation=cv2.INTER_AREA)
        frame = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        found = detector.detect([frame])[0]
        eyes = np.linalg.norm(record.landmarks[36:42].mean(0) - record.landmarks[42:48].mean(0)) * k
        near = np.linalg.norm((found[:, :2] + found[:, 2:4]) / 2 - [w / 2, h / 2], axis=1) < eyes
        best.append(found[near, 4].max() if near.any() else 0.0)
    best = np.asarray(best)
    return float((best >= 0.3).mean()), float((best >= 0.5).mean())


def false_detections(detector: YuNetDetector) -> dict[str, int]:
    """Boxes on the face-free test photos (1280x720, upscaled 2x, in 640-px tiles) by score threshold."""
    counts = {"0.3": 0, "0.5": 0, "0.7": 0}
    for photo in _backgrounds(TEST_BACKGROUNDS):
        frame = cv2.resize(cv2.resize(photo, (1280, 720)), (2560, 1440))
        for y in range(0, 1440, 640):
            for x in range(0, 2560, 640):
                scores = detector.detect([np.ascontiguousarray(frame[y:y + 640, x:x + 640])])[0][:, 4]
                for t in counts:
                    counts[t] += int((scores >= float(t)).sum())
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.detectors", description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["yunet_n_dynamic", "yunet_s_dynamic"])
    p.add_argument("--scales", nargs="+", type=float, default=[2.0])
    args = p.parse_args(argv)
    _, held_out = split_records(read_300w("../shared/data/300w_train"))
    tile = np.random.default_rng(0).integers(0, 256, (640, 640, 3), np.uint8)
    results, rows = {}, []
    for name in args.models:
        detector = YuNetDetector(DETECTORS / f"{name}.onnx", score_threshold=0.3, threads=1)
        # Best of three p50s: this VM's speed drifts.
        ms = min(float(np.median(time_call(lambda: detector.detect([tile]), 3, 20))) for _ in range(3))
        entry = {"ms_per_640_tile": ms,
                 "false_on_face_free_photos": false_detections(detector), "recall": {}}
        for scale in args.scales:
            entry["recall"][str(scale)] = {str(w): recall(detector, held_out, w, scale) for w in WIDTHS}
            rows.append([name, f"{scale:g}x", *(f"{a:.3f} / {b:.3f}" for a, b in entry["recall"][str(scale)].values()),
                         " / ".join(str(v) for v in entry["false_on_face_free_photos"].values()),
                         f"{entry['ms_per_640_tile']:.1f}"])
        results[name] = entry
    console.print(table(f"held-out 300W faces ({len(held_out)}), found at score >= 0.3 / >= 0.5",
                        ["detector", "scale", *(f"{w} px" for w in WIDTHS), "false (0.3/0.5/0.7)", "ms / tile"], rows))
    save("detectors", {"faces": len(held_out), "widths": list(WIDTHS), "detectors": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
