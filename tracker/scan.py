"""Where and at what scale the detector looks: a scan plan of tiles, spread over frames, and re-checks of tracks.

A wide frame is never upscaled whole. The plan has levels: the first scales the frame so that a face of
`min_face` px reaches the detector's reliable size (`Detector.native_face_px`), each next one halves the scale,
until the whole frame fits one tile. Each level is cut into tiles of `tile` detector px that overlap by
`overlap_faces` times the largest face the level is responsible for (twice its smallest; the next level takes
the larger ones), so a face cut by one tile's border lies whole in its neighbour; detections of overlapping
tiles and levels are merged by NMS in source pixels.

`Scanner.step` runs the plan in turn, a share of its pixels per frame, so every part of the frame is searched
once per `period` frames at a cost that follows the frame's size; `Scanner.full` runs all of it (first
frame, after a shot change). `Scanner.around` re-checks tracks: one fixed-size crop around each, batched in one
detector call.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sht_model import geometry

from .detector import Detector, nms

MERGE_IOU = 0.3
RECHECK_SIZE = 128          # detector px of a re-check crop
RECHECK_CONTEXT = 2.5       # the crop's side in face-box sides: room for the face to have moved


@dataclass(frozen=True)
class ScanJob:
    scale: float                          # detector px per source px
    region: tuple[int, int, int, int]     # x0, y0, x1, y1 in source px

    @property
    def pixels(self) -> int:
        x0, y0, x1, y1 = self.region
        return int(round((x1 - x0) * self.scale)) * int(round((y1 - y0) * self.scale))


def plan_scan(width: int, height: int, min_face: float, detector: Detector, tile: int = 640,
              overlap_faces: float = 1.5) -> list[ScanJob]:
    """Jobs covering a width x height frame for faces of min_face px and up, finest level first.

    Per level, the fewest tiles of at most `tile` detector px a side that cover the frame with neighbours
    overlapping by `overlap_faces` x the level's largest face, spaced evenly. 1.5 faces is enough for a face cut
    by one border to lie whole, clear of the 10% border margin (Scanner._cut_by_border), in the neighbour;
    every px of overlap is scanned twice, so more costs time (3 faces made the finest 1080p level 2x its
    area)."""
    jobs: list[ScanJob] = []
    scale = detector.native_face_px / min_face
    while True:
        overlap = overlap_faces * 2 * detector.native_face_px / scale     # source px
        xs, w = _spans(width, tile / scale, overlap)
        ys, h = _spans(height, tile / scale, overlap)
        for y in ys:
            for x in xs:
                jobs.append(ScanJob(scale, (int(x), int(y), int(min(x + w, width)), int(min(y + h, height)))))
        if width * scale <= tile and height * scale <= tile:
            return jobs
        scale /= 2


def _spans(length: int, most: float, overlap: float) -> tuple[list[float], float]:
    """-> starts and span length: the fewest spans of at most `most` covering `length`, neighbours sharing
    `overlap` (at most half a span)."""
    if length <= most:
        return [0.0], float(length)
    overlap = min(overlap, most / 2)
    n = int(np.ceil((length - overlap) / (most - overlap)))
    span = float(np.ceil((length + (n - 1) * overlap) / n))
    return list(np.linspace(0, length - span, n).round()), span


class Scanner:
    def __init__(self, detector: Detector, min_face: float, period: int = 25, tile: int = 640):
        self.detector, self.min_face, self.period, self.tile = detector, float(min_face), period, tile
        self._plan: list[ScanJob] = []
        self._size: tuple[int, int] | None = None
        self._next = 0
        self._credit = 0.0

    def plan(self, width: int, height: int) -> list[ScanJob]:
        if self._size != (width, height):
            self._plan = plan_scan(width, height, self.min_face, self.detector, self.tile)
            self._size, self._next, self._credit = (width, height), 0, 0.0
        return self._plan

    def full(self, image: np.ndarray) -> np.ndarray:
        """Every job of the plan -> (n, 5) merged boxes in source px (landmark-box convention, score)."""
        plan = self.plan(image.shape[1], image.shape[0])
        self._next, self._credit = 0, 0.0
        return self._run(image, plan)

    def step(self, image: np.ndarray) -> np.ndarray:
        """This frame's share of the plan (jobs in turn, len(plan) pixels / period per frame)."""
        plan = self.plan(image.shape[1], image.shape[0])
        self._credit += sum(j.pixels for j in plan) / self.period
        jobs = []
        while self._credit > 0 and len(jobs) < len(plan):
            job = plan[self._next]
            jobs.append(job)
            self._credit -= job.pixels
            self._next = (self._next + 1) % len(plan)
        return self._run(image, jobs)

    def _run(self, image: np.ndarray, jobs: list[ScanJob]) -> np.ndarray:
        found = []
        for job in jobs:
            x0, y0, x1, y1 = job.region
            patch = image[y0:y1, x0:x1]
            size = (max(int(round((x1 - x0) * job.scale)), 1), max(int(round((y1 - y0) * job.scale)), 1))
            patch = cv2.resize(patch, size, interpolation=cv2.INTER_LINEAR if job.scale > 1 else cv2.INTER_AREA)
            boxes = self.detector.detect([patch])[0]
            boxes[:, :4] = boxes[:, :4] / job.scale + np.array([x0, y0, x0, y0], np.float32)
            found.append(boxes[~self._cut_by_border(boxes, job.region, image.shape)])
        boxes = np.concatenate(found) if found else np.zeros((0, 5), np.float32)
        return nms(boxes[(boxes[:, 2] - boxes[:, 0]) >= 0.5 * self.min_face], MERGE_IOU)

    @staticmethod
    def _cut_by_border(boxes: np.ndarray, region, shape) -> np.ndarray:
        """Boxes reaching an inner tile border (within 10% of their side): a face cut there lies whole in the
        neighbouring tile, and the part of it seen here gives a shifted, smaller box."""
        x0, y0, x1, y1 = region
        pad = 0.1 * (boxes[:, 2] - boxes[:, 0])
        cut = np.zeros(len(boxes), bool)
        if x0 > 0:
            cut |= boxes[:, 0] - pad <= x0
        if y0 > 0:
            cut |= boxes[:, 1] - pad <= y0
        if x1 < shape[1]:
            cut |= boxes[:, 2] + pad >= x1
        if y1 < shape[0]:
            cut |= boxes[:, 3] + pad >= y1
        return cut

    def around(self, image: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
        """Re-check: per face box (n, 4) the detector's boxes (m, 5) in a crop around it, in source px."""
        if len(boxes) == 0:
            return []
        crops, inverse = [], []
        for box in boxes:
            m = geometry.crop_matrix(box[:4], RECHECK_SIZE, scale=RECHECK_CONTEXT)
            crops.append(geometry.warp(image, m, RECHECK_SIZE, cv2.INTER_LINEAR))
            inverse.append(geometry.invert(m))
        result = []
        for found, inv in zip(self.detector.detect(crops), inverse):
            corners = geometry.apply(inv, found[:, :4].reshape(-1, 2).astype(np.float64)).reshape(-1, 4)
            result.append(np.concatenate([corners, found[:, 4:5]], 1).astype(np.float32))
        return result
