"""Unlabelled video frame pairs for the SHT stage (Sec. 4.1: two frames j, k of one clip).

Each clip is decoded once (every `stride`-th frame); the face is found with the tracker's detector on
the full-resolution frame and each frame's square crop is kept at HR_SIZE in memory. A pair is two different
kept frames of one clip drawn from anywhere in it ("two frames randomly", Sec. 4.1), both degraded to the same
face width. Without labels the heatmap
term is dropped for these pairs (gamma1 = 0, Eq. 10); with teacher labels (`--video-labels`) they count as
labelled pairs (gamma1 = 1), like 300VW's.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from sht_model.config import DHLNConfig

from .data import HR_SIZE, Augment, make_sample, make_sample_from_box
from .degrade import DegradeConfig, sample_face_width
from .readers import list_videos

log = logging.getLogger("shtrack.train")

# Clips of ../shared/data/videos held out from every training stage (validation of the tracker and
# of the model card's clip numbers).
HELD_OUT_CLIPS = ("driving_d0", "driving_d13", "source_s13", "tpsmm_driving")


def decode_faces(video: Path, stride: int = 3, max_frames: int = 400, labels: Path | None = None):
    """[(HR crop RGB uint8, face box in crop pixels, landmarks in crop pixels or None)].

    With teacher labels (`labels/<clip>/annot/NNNNNN.pts`, from `python -m train.label`) the crop follows
    the labelled landmarks and only labelled frames are kept; otherwise the detector finds the face.
    """
    import cv2

    from sht_model import geometry
    from tracker.detector import YuNetDetector
    from tracker.scan import Scanner
    from tracker.sources import open_source

    from .readers import read_300vw_clip

    annotated = read_300vw_clip(labels / video.stem / "annot") if labels is not None else None
    scanner = Scanner(YuNetDetector(), min_face=60)
    out = []
    with open_source(str(video)) as source:    # the tracker's reader: rotation and damaged packets handled
        for frame in source:
            if (frame.index - 1) % stride:
                continue
            xy = None
            if annotated is not None:
                xy = annotated.get(frame.index)
                if xy is None:
                    continue
                box = geometry.landmark_box(xy)
            bgr = frame.image
            if xy is None:
                boxes = scanner.full(bgr)
                boxes = boxes[boxes[:, 4] >= 0.6]
                if not len(boxes):
                    continue
                box = boxes[np.argmax(boxes[:, 2] - boxes[:, 0]), :4]     # the largest face
            # Keep a generous HR crop (2x the crop the model sees) so augmentation has room.
            m = geometry.crop_matrix(box, HR_SIZE, scale=geometry.CROP_SCALE * 2)
            crop = cv2.cvtColor(geometry.warp(bgr, m, HR_SIZE, cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
            c, half = (HR_SIZE - 1) / 2, HR_SIZE / (geometry.CROP_SCALE * 2) / 2
            crop_box = np.array([c - half, c - half, c + half, c + half], np.float32)
            out.append((crop, crop_box, None if xy is None else geometry.apply(m, xy).astype(np.float32)))
            if len(out) >= max_frames:
                break
    return out


class VideoPairs(Dataset):
    def __init__(self, root: str | Path, cfg: DHLNConfig, seed: int = 0, stride: int = 3,
                 exclude: tuple[str, ...] = HELD_OUT_CLIPS, aug: Augment = Augment(max_angle=10.0),
                 degrade_cfg: DegradeConfig = DegradeConfig(), labels: str | Path | None = None,
                 clips: list | None = None, drop_labels: bool = False):
        """`clips` reuses another VideoPairs' decoded frames; `drop_labels` treats them as unlabelled."""
        self.cfg, self.seed, self.aug, self.degrade_cfg = cfg, seed, aug, degrade_cfg
        self.epoch = 0
        self.drop_labels = drop_labels
        self.clips = clips if clips is not None else []
        for video in [] if clips is not None else list_videos(root):
            if video.stem in exclude:
                continue
            faces = decode_faces(video, stride, labels=Path(labels) if labels else None)
            if len(faces) >= 2:
                self.clips.append(faces)
        self.index = [(c, j) for c, faces in enumerate(self.clips) for j in range(len(faces))]
        if not self.index:
            raise ValueError(f"{root}: no clip with a detectable face in two frames")
        log.info("video pairs: %d clips, %d frames", len(self.clips), len(self.index))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, i, 7])
        clip, j = self.index[i]
        faces = self.clips[clip]
        k = int(rng.integers(len(faces) - 1))
        k += k >= j                         # any other kept frame of the clip, never frame j itself
        width = sample_face_width(rng, self.degrade_cfg)
        flip = self.aug.flip and rng.random() < 0.5
        (img_a, box_a, xy_a), (img_b, box_b, xy_b) = faces[j], faces[k]
        if self.drop_labels:
            # Keep the landmark-centred crop box, forget the points: an unlabelled pair (gamma1 = 0).
            from sht_model import geometry

            box_a = geometry.landmark_box(xy_a) if xy_a is not None else box_a
            box_b = geometry.landmark_box(xy_b) if xy_b is not None else box_b
            xy_a = xy_b = None
        labelled = xy_a is not None and xy_b is not None
        a = self._sample(img_a, box_a, xy_a, rng, width, flip)
        b = self._sample(img_b, box_b, xy_b, rng, width, flip)
        return {"a": a, "b": b, "labelled": torch.tensor(1.0 if labelled else 0.0)}

    def _sample(self, image, box, xy, rng, width, flip) -> dict:
        if xy is not None:
            return make_sample(image, xy, self.cfg, rng, self.aug, width, self.degrade_cfg, flip)
        s = make_sample_from_box(image, box, self.cfg, rng, self.aug, width, self.degrade_cfg, flip)
        # No labels: zero heatmaps keep the batch collatable; gamma1 = 0 removes them from the loss.
        s["heatmaps"] = torch.zeros(self.cfg.num_landmarks, self.cfg.feature_size, self.cfg.feature_size)
        s["landmarks"] = torch.full((self.cfg.num_landmarks, 2), float("nan"))
        return s
