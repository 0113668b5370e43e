"""Training inputs: a face crop degraded to a small face width, as a surveillance camera would see it.

HR crop (the hallucination target) -> downscale so the face is `face_width` px wide (area or bicubic),
optional blur, noise and JPEG -> bicubic back up to the model's input size (the paper's LR protocol:
16x16 faces bicubically resized to 64x64, widened here to 12-64 px).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class DegradeConfig:
    min_face_width: float = 12.0
    max_face_width: float = 64.0
    blur_prob: float = 0.3
    noise_prob: float = 0.3
    jpeg_prob: float = 0.3


def degrade(hr: np.ndarray, face_width_hr: float, target_width: float, out_size: int,
            rng: np.random.Generator, cfg: DegradeConfig = DegradeConfig()) -> np.ndarray:
    """hr: (S, S, 3) uint8 crop whose face is `face_width_hr` px wide -> (out_size, out_size, 3) uint8
    input in which the face carries only `target_width` px of real detail."""
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
