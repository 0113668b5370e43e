"""Training samples and pairs.

A sample is one face: an augmented high-resolution crop (hallucination target), its degraded low-resolution
input, the landmarks in input pixels and their Gaussian heatmaps. A pair is two samples of one face:
two random rotations (+-30 deg) / scales (0.8-1.2) of one image (SHT Sec. 4.1), or two frames of one clip.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from sht_model import geometry
from sht_model.config import DHLNConfig
from sht_model.heatmap import encode, to_heatmap_coords

from .degrade import DegradeConfig, composite, degrade, occlude, sample_face_width
from .readers import LandmarkRecord

HR_SIZE = 256

# iBUG-68 left/right mirror permutation.
FLIP_68 = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65], dtype=np.int64)


def is_validation(record_key: str, fraction: float = 0.1) -> bool:
    """Deterministic hold-out by a hash of the face's name: the same faces stay out on every machine."""
    return (zlib.crc32(record_key.encode()) % 1000) < fraction * 1000


def split_records(records: list[LandmarkRecord], fraction: float = 0.1):
    def key(r):
        return f"{r.image.parent.name}/{r.image.stem}"
    train = [r for r in records if not is_validation(key(r), fraction)]
    val = [r for r in records if is_validation(key(r), fraction)]
    return train, val


@dataclass(frozen=True)
class Augment:
    max_angle: float = 30.0
    scale_range: tuple[float, float] = (0.8, 1.2)
    shift: float = 0.05          # box-centre jitter, fraction of the face box (detector/tracker error)
    box_scale_jitter: float = 0.07
    flip: bool = True


NO_AUGMENT = Augment(max_angle=0.0, scale_range=(1.0, 1.0), shift=0.0, box_scale_jitter=0.0, flip=False)


def to_tensor(rgb_u8: np.ndarray, cfg: DHLNConfig) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(rgb_u8)).permute(2, 0, 1).float() / 255.0
    mean = torch.tensor(cfg.mean).view(3, 1, 1)
    std = torch.tensor(cfg.std).view(3, 1, 1)
    return (x - mean) / std


def make_sample(image: np.ndarray, xy: np.ndarray, cfg: DHLNConfig, rng: np.random.Generator,
                aug: Augment = Augment(), face_width: float | None = None,
                degrade_cfg: DegradeConfig = DegradeConfig(), flip: bool | None = None,
                donor: np.ndarray | None = None) -> dict:
    """One labelled sample. image: RGB uint8 (H, W, 3); xy: (68, 2) 0-based pixels of `image`; donor: an HR crop
    of another picture, for occluder patches and composited backgrounds (DegradeConfig.occlude_prob,
    composite_prob).

    Unlabelled faces (a detector box, no points) go through `make_sample_from_box`."""
    box = geometry.landmark_box(xy)
    return make_sample_from_box(image, box, cfg, rng, aug, face_width, degrade_cfg, flip, xy, donor)


def make_sample_from_box(image, box, cfg, rng, aug=Augment(), face_width=None, degrade_cfg=DegradeConfig(),
                         flip=None, xy=None, donor=None) -> dict:
    side = box[2] - box[0]
    centre = (box[:2] + box[2:]) / 2 + rng.normal(0, aug.shift * side, 2) if aug.shift else (box[:2] + box[2:]) / 2
    side = side * float(np.exp(rng.normal(0, aug.box_scale_jitter))) if aug.box_scale_jitter else side
    jittered = np.concatenate([centre - side / 2, centre + side / 2])
    angle = rng.uniform(-aug.max_angle, aug.max_angle) if aug.max_angle else 0.0
    scale = rng.uniform(*aug.scale_range)
    matrix = geometry.crop_matrix(jittered, HR_SIZE, angle, geometry.CROP_SCALE / scale)
    hr = geometry.warp(image, matrix, HR_SIZE, cv2.INTER_LINEAR)
    pts = geometry.apply(matrix, xy) if xy is not None else None
    # Occluders and backgrounds change pixels only, before the flip and the degradation (the camera sees them).
    # (No draw at probability 0: the random stream of runs without them stays as it was.)
    if pts is not None and donor is not None and degrade_cfg.composite_prob and rng.random() < degrade_cfg.composite_prob:
        hr = composite(hr, pts, donor, rng)
    if degrade_cfg.occlude_prob and rng.random() < degrade_cfg.occlude_prob:
        corners = pts if pts is not None else geometry.apply(matrix, jittered.reshape(2, 2))
        face_box = np.concatenate([corners.min(0), corners.max(0)])
        hr = occlude(hr, face_box, rng, donor)
    if flip is None:
        flip = aug.flip and rng.random() < 0.5
    if flip:
        hr = hr[:, ::-1].copy()
        if pts is not None:
            pts = pts[FLIP_68].copy()
            pts[:, 0] = HR_SIZE - 1 - pts[:, 0]
    # Face width in HR pixels: landmark extent if known, else the box side.
    width_hr = float(np.ptp(pts[:, 0])) if pts is not None else side * HR_SIZE / (side * geometry.CROP_SCALE / scale)
    target_width = face_width if face_width is not None else sample_face_width(rng, degrade_cfg)
    if degrade_cfg.protocol == "sht-m":       # the face is as wide as the bicubic 256 -> input resize leaves it
        target_width = width_hr * cfg.input_size / HR_SIZE
    lr = degrade(hr, width_hr, target_width, cfg.input_size, rng, degrade_cfg)
    face = cv2.resize(hr, (cfg.face_size, cfg.face_size), interpolation=cv2.INTER_AREA)
    sample = {"input": to_tensor(lr, cfg), "face": to_tensor(face, cfg),
              "face_width": torch.tensor(target_width, dtype=torch.float32)}
    if pts is not None:
        pts_in = (pts + 0.5) * (cfg.input_size / HR_SIZE) - 0.5
        pts_hm = to_heatmap_coords(torch.from_numpy(pts_in.astype(np.float32)), cfg.input_size, cfg.feature_size)
        sample["landmarks"] = torch.from_numpy(pts_in.astype(np.float32))
        sample["heatmaps"] = encode(pts_hm, cfg.feature_size, cfg.heatmap_sigma)
    return sample


def load_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: cannot decode image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def calibration_inputs(records: list[LandmarkRecord], cfg: DHLNConfig, count: int = 200, seed: int = 5):
    """`count` single-face input batches (1, 3, S, S) for int8 calibration: training-style samples (augmented,
    degraded to 12-64 px faces) of `records`, which should be the training split."""
    ds = LabelledFaces(records, cfg, Augment(), seed=seed)
    for i in np.random.default_rng(seed).permutation(len(ds))[:count]:
        yield ds[int(i)]["input"][None].numpy()


class LabelledFaces(Dataset):
    """Labelled faces (300W-style records), one augmented degraded sample per item; images cached in memory."""

    def __init__(self, records: list[LandmarkRecord], cfg: DHLNConfig, aug: Augment = Augment(),
                 degrade_cfg: DegradeConfig = DegradeConfig(), seed: int = 0, face_width: float | None = None):
        self.records, self.cfg, self.aug, self.degrade_cfg = records, cfg, aug, degrade_cfg
        self.seed, self.face_width, self.epoch = seed, face_width, 0
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.records)

    def image(self, i: int) -> np.ndarray:
        if i not in self._cache:
            self._cache[i] = load_rgb(self.records[i].image)
        return self._cache[i]

    def rng(self, i: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, i])

    def donor(self, i: int, rng: np.random.Generator) -> np.ndarray | None:
        """An HR_SIZE crop of another face's picture (a random square of it), when occluders or backgrounds are on."""
        if len(self) < 2 or not (self.degrade_cfg.occlude_prob or self.degrade_cfg.composite_prob):
            return None
        j = int(rng.integers(len(self) - 1))
        image = self.image(j + (j >= i))
        h, w = image.shape[:2]
        side = int(rng.uniform(0.3, 1.0) * min(h, w))
        y, x = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
        return cv2.resize(image[y:y + side, x:x + side], (HR_SIZE, HR_SIZE), interpolation=cv2.INTER_AREA)

    def __getitem__(self, i: int) -> dict:
        rng = self.rng(i)
        return make_sample(self.image(i), self.records[i].landmarks, self.cfg, rng, self.aug, self.face_width,
                           self.degrade_cfg, donor=self.donor(i, rng))


class LabelledPairs(LabelledFaces):
    """Two random rotations/scales of one labelled face, degraded to the same face width (Sec. 4.1)."""

    def __getitem__(self, i: int) -> dict:
        rng = self.rng(i)
        width = self.face_width or sample_face_width(rng, self.degrade_cfg)
        flip = self.aug.flip and rng.random() < 0.5
        a = make_sample(self.image(i), self.records[i].landmarks, self.cfg, rng, self.aug, width, self.degrade_cfg, flip,
                        self.donor(i, rng))
        b = make_sample(self.image(i), self.records[i].landmarks, self.cfg, rng, self.aug, width, self.degrade_cfg, flip,
                        self.donor(i, rng))
        return {"a": a, "b": b, "labelled": torch.tensor(1.0)}
