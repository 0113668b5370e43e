"""Heatmap encoding (landmarks -> Gaussian targets) and sub-pixel decoding, shared by training and inference.

Coordinates follow OpenCV's convention: pixel i has its centre at i. A point u in input pixels sits at
(u + 0.5) * s - 0.5 in heatmap pixels, s = heatmap_size / input_size.

Decoding is argmax plus a second-order Taylor step on the log-heatmap (DARK, Zhang et al. CVPR 2020),
which is exact for a Gaussian peak; where the local Hessian is not negative definite it falls back to the
classic quarter-pixel shift towards the higher neighbour. DARK's distribution modulation (smoothing the
predicted map with the training targets' Gaussian before the Taylor step, so that a ragged predicted peak
looks like the Gaussian the step assumes) is computed only where the step reads it: the 3x3 taps around the
argmax, from a (3 + 2r)^2 patch, instead of blurring the whole map. A Gaussian blurred by a Gaussian is a
Gaussian with the same centre, so modulation keeps the step exact on ideal peaks.
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=8)
def _blur_band(sigma: float) -> np.ndarray:
    """(3, 3 + 2r): row i is the normalised Gaussian kernel (radius r = ceil(3 sigma)) centred on tap i of a
    (3 + 2r)-wide patch. Built once per sigma: decode runs every frame with the model's one sigma."""
    r = max(1, int(np.ceil(3 * sigma)))
    kernel = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    band = np.zeros((3, 3 + 2 * r), np.float32)
    for i in range(3):
        band[i, i:i + 2 * r + 1] = kernel
    band.flags.writeable = False
    return band


def _taps(values: np.ndarray, start: np.ndarray, cy: np.ndarray, cx: np.ndarray, h: int, w: int,
          sigma: float) -> np.ndarray:
    """The 3x3 neighbourhoods around (cy, cx), k[:, 1 + dy, 1 + dx], of maps that begin at `start` in
    `values` (all maps, flattened), after a Gaussian blur of sigma (edges replicated; 0 = none): (M, 3, 3).
    One np.take of linear indices: several times faster here than fancy indexing with (row, pixel) pairs."""
    if sigma <= 0:
        return np.take(values, start[:, None, None] + (cy[:, None, None] + _OFFSETS[:, None]) * w
                       + cx[:, None, None] + _OFFSETS)
    band = _blur_band(sigma)
    r = (band.shape[1] - 3) // 2
    offsets = np.arange(-1 - r, 2 + r)
    ys = np.clip(cy[:, None] + offsets, 0, h - 1)
    xs = np.clip(cx[:, None] + offsets, 0, w - 1)
    patch = np.take(values, start[:, None, None] + ys[:, :, None] * w + xs[:, None, :])
    return band @ patch @ band.T


def decode(heatmaps: np.ndarray, modulation_sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(N, L, H, W) -> xy (N, L, 2) in heatmap pixels, confidence (N, L) = peak value clipped to [0, 1].

    modulation_sigma: the Gaussian that smooths each peak before the Taylor step, in heatmap pixels: the
    model's training sigma (`cfg.heatmap_sigma`), or 0 for none. Confidence is the raw peak either way.
    """
    hm = np.ascontiguousarray(heatmaps, dtype=np.float32)
    n, l, h, w = hm.shape
    values = hm.reshape(-1)
    idx = hm.reshape(n * l, h * w).argmax(-1)
    start = np.arange(n * l) * (h * w)
    peak = np.take(values, start + idx)
    py, px = np.divmod(idx, w)
    # Neighbourhood, clamped so border peaks still index valid pixels.
    cx = np.clip(px, 1, w - 2)
    cy = np.clip(py, 1, h - 2)
    lg = np.log(np.maximum(_taps(values, start, cy, cx, h, w, modulation_sigma), 1e-10))
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
    right = np.take(values, start + py * w + np.minimum(px + 1, w - 1))
    left = np.take(values, start + py * w + np.maximum(px - 1, 0))
    down = np.take(values, start + np.minimum(py + 1, h - 1) * w + px)
    up = np.take(values, start + np.maximum(py - 1, 0) * w + px)
    ox = np.where(ok, ox, 0.25 * np.sign(right - left))
    oy = np.where(ok, oy, 0.25 * np.sign(down - up))
    xy = np.stack([px + ox, py + oy], axis=-1).astype(np.float32).reshape(n, l, 2)
    return xy, np.clip(peak, 0.0, 1.0).astype(np.float32).reshape(n, l)
