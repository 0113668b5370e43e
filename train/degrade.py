"""Training inputs: a face crop degraded to a small face width, as a surveillance camera would see it.

Two protocols (`--degrade`):
- `mixed` (the default; the product's): HR crop (the hallucination target) -> downscale so the face is
  `face_width` px wide (area or bicubic, log-uniform in 12-64 px), optional blur, noise and JPEG -> bicubic back
  up to the model's input size;
- `sht-m` (the paper's SHT-M protocol): the HR crop bicubically downscaled to the input size and nothing else
  (256 -> 64 px crops: a 4x smaller face, no blur, noise or JPEG).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


PROTOCOLS = ("mixed", "sht-m")


@dataclass(frozen=True)
class DegradeConfig:
    protocol: str = "mixed"
    min_face_width: float = 12.0
    max_face_width: float = 64.0
    blur_prob: float = 0.3
    noise_prob: float = 0.3
    jpeg_prob: float = 0.3

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown degradation protocol {self.protocol!r}; choose from {', '.join(PROTOCOLS)}")
        if not 0 < self.min_face_width <= self.max_face_width:
            raise ValueError(f"face widths must satisfy 0 < min <= max, not {self.min_face_width} / {self.max_face_width}")
        for name in ("blur_prob", "noise_prob", "jpeg_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], not {getattr(self, name)}")


def degrade(hr: np.ndarray, face_width_hr: float, target_width: float, out_size: int,
            rng: np.random.Generator, cfg: DegradeConfig = DegradeConfig()) -> np.ndarray:
    """hr: (S, S, 3) uint8 crop whose face is `face_width_hr` px wide -> (out_size, out_size, 3) uint8
    input in which the face carries only `target_width` px of real detail. Under `sht-m` the target width is
    ignored: the crop is resized bicubically to out_size, nothing more."""
    if cfg.protocol == "sht-m":
        return cv2.resize(hr, (out_size, out_size), interpolation=cv2.INTER_CUBIC)
    small_side = int(round(hr.shape[0] * target_width / max(face_width_hr, 1.0)))
    if small_side >= out_size:
        return cv2.resize(hr, (out_size, out_size), interpolation=cv2.INTER_AREA)
    small_side = max(small_side, 4)
    img = hr
    if rng.random() < cfg.blur_prob:
        sigma = rng.uniform(0.3, 1.2) * hr.shape[0] / small_side
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    interp = cv2.INTER_AREA if rng.random() < 0.5 else cv2.INTER_CUBIC
    small = cv2.resize(img, (small_side, small_side), interpolation=interp)
    if rng.random() < cfg.noise_prob:
        noise = rng.normal(0, rng.uniform(1, 8), small.shape)
        small = np.clip(small.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < cfg.jpeg_prob:
        ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 90))])
        if ok:
            small = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return cv2.resize(small, (out_size, out_size), interpolation=cv2.INTER_CUBIC)


def sample_face_width(rng: np.random.Generator, cfg: DegradeConfig = DegradeConfig()) -> float:
    """Log-uniform in [min, max]: small faces are the product's point, so they get their share."""
    return float(np.exp(rng.uniform(np.log(cfg.min_face_width), np.log(cfg.max_face_width))))
