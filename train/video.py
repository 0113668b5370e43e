"""Unlabelled pairs for the SHT stage: video pairs (SHT-v, Sec. 4.1: two frames j, k of one clip) and image
pairs (SHT-i: two random rotations/scales of one unlabelled face, from photos or single video frames).

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
from .readers import IMAGE_EXTS, list_videos

log = logging.getLogger("shtrack.train")

# Clips of ../shared/data/videos held out from every training stage (validation of the tracker and
# of the model card's clip numbers).
HELD_OUT_CLIPS = ("driving_d0", "driving_d13", "source_s13", "tpsmm_driving")


def _face_crop(bgr: np.ndarray, box: np.ndarray, xy: np.ndarray | None = None):
    """-> (HR crop RGB uint8, face box in crop px, landmarks in crop px or None): a generous crop (2x the one the
    model sees) so augmentation has room."""
    import cv2

    from sht_model import geometry

    m = geometry.crop_matrix(box, HR_SIZE, scale=geometry.CROP_SCALE * 2)
    crop = cv2.cvtColor(geometry.warp(bgr, m, HR_SIZE, cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    c, half = (HR_SIZE - 1) / 2, HR_SIZE / (geometry.CROP_SCALE * 2) / 2
    crop_box = np.array([c - half, c - half, c + half, c + half], np.float32)
    return crop, crop_box, None if xy is None else geometry.apply(m, xy).astype(np.float32)


def _largest_face(scanner, bgr: np.ndarray) -> np.ndarray | None:
    boxes = scanner.full(bgr)
    boxes = boxes[boxes[:, 4] >= 0.6]
    return boxes[np.argmax(boxes[:, 2] - boxes[:, 0]), :4] if len(boxes) else None


def decode_photos(folder: str | Path, exclude: tuple[str, ...] = HELD_OUT_CLIPS):
    """[(HR crop, face box, None)] of the largest face in each photo of `folder` (several folders: comma-separated;
    photos named after a held-out clip are left out: they may show its person)."""
    import cv2

    from tracker.detector import YuNetDetector
    from tracker.scan import Scanner

    from .readers import DatasetError

    folders = [Path(f) for f in str(folder).split(",") if f]
    for f in folders:
        if not f.is_dir():
            raise DatasetError(f"{f}: not a directory")
    # 32 px: CelebA's aligned faces are ~55 px wide.
    scanner = Scanner(YuNetDetector(), min_face=32)
    out = []
    for path in sorted(p for f in folders for p in f.iterdir()):
        if path.suffix.lower() not in IMAGE_EXTS or path.stem in exclude:
            continue
        bgr = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            log.warning("%s: cannot decode, skipped", path)
            continue
        box = _largest_face(scanner, bgr)
        if box is None:
            log.warning("%s: no face found, skipped", path)
            continue
        out.append(_face_crop(bgr, box))
    return out


def decode_faces(video: Path, stride: int = 3, max_frames: int = 400, labels: Path | None = None):
    """[(HR crop RGB uint8, face box in crop pixels, landmarks in crop pixels or None)].

    With teacher labels (`labels/<clip>/annot/NNNNNN.pts`, from `python -m train.label`) the crop follows
    the labelled landmarks and only labelled frames are kept; otherwise the detector finds the face.
    """
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
            if xy is None:
                box = _largest_face(scanner, frame.image)
                if box is None:
                    continue
            out.append(_face_crop(frame.image, box, xy))
            if len(out) >= max_frames:
                break
    return out


class VideoPairs(Dataset):
    kind = "video pairs"

    def __init__(self, root: str | Path, cfg: DHLNConfig, seed: int = 0, stride: int = 3,
                 exclude: tuple[str, ...] = HELD_OUT_CLIPS, aug: Augment = Augment(max_angle=10.0),
                 degrade_cfg: DegradeConfig = DegradeConfig(), labels: str | Path | None = None,
                 clips: list | None = None, drop_labels: bool = False):
        """`clips` reuses another VideoPairs' decoded frames; `drop_labels` treats them as unlabelled."""
        self.cfg, self.seed, self.aug, self.degrade_cfg = cfg, seed, aug, degrade_cfg
        self.epoch = 0
        self.drop_labels = drop_labels
        self.clips = clips if clips is not None else []
        videos = [] if clips is not None else [v for r in str(root).split(",") if r for v in list_videos(r)]
        for video in videos:
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
        return _unlabelled(make_sample_from_box(image, box, self.cfg, rng, self.aug, width, self.degrade_cfg, flip),
                           self.cfg)


class ImagePairs(Dataset):
    """SHT-i: two random rotations (+-aug.max_angle) and scales of one unlabelled face (a photo or a single video
    frame), degraded to the same width; no labels, so the heatmap term is dropped (gamma1 = 0, Eq. 10)."""
    kind = "image pairs"

    def __init__(self, faces: list, cfg: DHLNConfig, seed: int = 0, aug: Augment = Augment(),
                 degrade_cfg: DegradeConfig = DegradeConfig()):
        if not faces:
            from .readers import DatasetError

            raise DatasetError("image pairs: no face found in --images or the --videos clips")
        self.faces, self.cfg, self.seed, self.aug, self.degrade_cfg = faces, cfg, seed, aug, degrade_cfg
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, i, 11])
        image, box, _ = self.faces[i]
        width = sample_face_width(rng, self.degrade_cfg)
        flip = self.aug.flip and rng.random() < 0.5
        a, b = (_unlabelled(make_sample_from_box(image, box, self.cfg, rng, self.aug, width, self.degrade_cfg, flip),
                            self.cfg) for _ in range(2))
        return {"a": a, "b": b, "labelled": torch.tensor(0.0)}


def _unlabelled(sample: dict, cfg: DHLNConfig) -> dict:
    # No labels: zero heatmaps keep the batch collatable; gamma1 = 0 removes them from the loss.
    sample["heatmaps"] = torch.zeros(cfg.num_landmarks, cfg.feature_size, cfg.feature_size)
    sample["landmarks"] = torch.full((cfg.num_landmarks, 2), float("nan"))
    return sample
