"""Heatmap encoding (landmarks -> Gaussian targets) and sub-pixel decoding, shared by training and inference.

Coordinates follow OpenCV's convention: pixel i has its centre at i. A point u in input pixels sits at
(u + 0.5) * s - 0.5 in heatmap pixels, s = heatmap_size / input_size.

Decoding is argmax plus a second-order Taylor step on the log-heatmap (DARK, Zhang et al. CVPR 2020),
which is exact for a Gaussian peak; where the local Hessian is not negative definite it falls back to the
classic quarter-pixel shift towards the higher neighbour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:   # torch only for encoding (training); decoding is numpy, for the torch-free tracker
    import torch

_OFFSETS = np.array([-1, 0, 1])


def to_heatmap_coords(xy: np.ndarray | torch.Tensor, input_size: int, heatmap_size: int):
    s = heatmap_size / input_size
    return (xy + 0.5) * s - 0.5


def from_heatmap_coords(xy: np.ndarray | torch.Tensor, input_size: int, heatmap_size: int):
    s = heatmap_size / input_size
    return (xy + 0.5) / s - 0.5


def encode(xy: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """Gaussian heatmaps, peak 1. xy: (..., L, 2) in heatmap pixels -> (..., L, size, size).

    Points outside the map give (near-)empty maps, as they should: the target says "not here".
    """
    import torch

    grid = torch.arange(size, dtype=xy.dtype, device=xy.device)
    dx = grid - xy[..., 0:1]                       # (..., L, W)
    dy = grid - xy[..., 1:2]                       # (..., L, H)
    gx = torch.exp(-(dx ** 2) / (2 * sigma ** 2))
    gy = torch.exp(-(dy ** 2) / (2 * sigma ** 2))
    return gy.unsqueeze(-1) * gx.unsqueeze(-2)


def decode(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, L, H, W) -> xy (N, L, 2) in heatmap pixels, confidence (N, L) = peak value clipped to [0, 1]."""
    hm = np.asarray(heatmaps, dtype=np.float32)
    n, l, h, w = hm.shape
    flat = hm.reshape(n * l, h * w)
    idx = flat.argmax(-1)
    rows = np.arange(n * l)
    peak = flat[rows, idx]
    py, px = np.divmod(idx, w)
    # Neighbourhood, clamped so border peaks still index valid pixels.
    cx = np.clip(px, 1, w - 2)
    cy = np.clip(py, 1, h - 2)
    # One gather of each 3x3 neighbourhood (k[:, 1+dy, 1+dx]) instead of one per tap.
    taps = (cy[:, None, None] + _OFFSETS[None, :, None]) * w + (cx[:, None, None] + _OFFSETS[None, None, :])
    k = flat[rows[:, None, None], taps]
    lg = np.log(np.maximum(k, 1e-10))
    gx = 0.5 * (lg[:, 1, 2] - lg[:, 1, 0])
    gy = 0.5 * (lg[:, 2, 1] - lg[:, 0, 1])
    hxx = lg[:, 1, 2] - 2 * lg[:, 1, 1] + lg[:, 1, 0]
    hyy = lg[:, 2, 1] - 2 * lg[:, 1, 1] + lg[:, 0, 1]
    hxy = 0.25 * (lg[:, 2, 2] - lg[:, 2, 0] - lg[:, 0, 2] + lg[:, 0, 0])
    det = hxx * hyy - hxy ** 2
    ok = (det > 1e-6) & (hxx < 0) & (cx == px) & (cy == py)
    safe = np.where(ok, det, 1.0)
    ox = np.clip(-(hyy * gx - hxy * gy) / safe, -1, 1)
    oy = np.clip(-(hxx * gy - hxy * gx) / safe, -1, 1)
    # Fallback: quarter-pixel shift towards the higher neighbour (border peaks read their own pixel outside).
    right = flat[rows, py * w + np.minimum(px + 1, w - 1)]
    left = flat[rows, py * w + np.maximum(px - 1, 0)]
    down = flat[rows, np.minimum(py + 1, h - 1) * w + px]
    up = flat[rows, np.maximum(py - 1, 0) * w + px]
    ox = np.where(ok, ox, 0.25 * np.sign(right - left))
    oy = np.where(ok, oy, 0.25 * np.sign(down - up))
    xy = np.stack([px + ox, py + oy], axis=-1).astype(np.float32).reshape(n, l, 2)
    return xy, np.clip(peak, 0.0, 1.0).astype(np.float32).reshape(n, l)
