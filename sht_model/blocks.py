"""Building blocks of DHLN (SHT paper, Sec. 3.1).

- Bottleneck: the residual module of stacked hourglass networks (Newell et al. 2016).
- Hourglass: recursive encoder-decoder with skip branches at every scale.
- SRBlock: EDSR-style residual block (conv-ReLU-conv + identity) of the face-hallucination stream.
- FUBlock1 (Eq. 1): Q' = Q + Q * sigmoid(ResBlock(P)): the pose features P (hourglass output) gate the
  super-resolution features Q.
- FUBlock2 (Eq. 2): P' = P + conv(concat(P, Q')): the pose features take in the pose-attentional SR features;
  heatmaps come from P'.
Both blocks are written over (updated stream, other stream) widths so that `DHLNConfig.fusion="v0.1"` can
rebuild the v0.1 files (bundled up to commit 84e080a), whose fusion ran the other way round (SR gating pose;
see dhln.py).
"""

from __future__ import annotations

import torch
from torch import nn


class Bottleneck(nn.Module):
    """Residual bottleneck (1x1 -> 3x3 -> 1x1, half width inside) with a (projected) identity.

    Post-activation (conv-BN-ReLU) rather than Newell's pre-activation: inference runtimes fold BN into
    the preceding conv, which roughly halves CPU latency of the small presets.
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        mid = max(out_ch // 2, 1)
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch),
        )
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.skip(x) + self.body(x))


def _residuals(ch: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[Bottleneck(ch, ch) for _ in range(n)])


class Hourglass(nn.Module):
    """Depth-`depth` hourglass: each level halves the resolution (max-pool) and adds back a skip branch.

    `blocks_per_level` residuals sit on the down, inner and up paths; the full-resolution skip branch
    keeps one (it only carries detail forward).
    """

    def __init__(self, depth: int, ch: int, blocks_per_level: int = 1):
        super().__init__()
        self.skip = _residuals(ch, 1)
        self.down = _residuals(ch, blocks_per_level)
        self.inner = Hourglass(depth - 1, ch, blocks_per_level) if depth > 1 else _residuals(ch, blocks_per_level)
        self.up = _residuals(ch, blocks_per_level)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.up(self.inner(self.down(nn.functional.max_pool2d(x, 2))))
        return self.skip(x) + nn.functional.interpolate(low, scale_factor=2.0, mode="nearest")


class SRBlock(nn.Module):
    """Residual block without batch norm (EDSR): BN shifts colour statistics, which hurts super-resolution."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class FUBlock1(nn.Module):
    """Eq. 1: Q' = Q + Q * sigmoid(RB(P)), with RB a residual block mapping P (`gate_ch`) to Q's width
    (`gated_ch`). With a zero RB output the gate is 0.5 everywhere, so Q' = 1.5 Q."""

    def __init__(self, gate_ch: int, gated_ch: int):
        super().__init__()
        self.res = Bottleneck(gate_ch, gated_ch)

    def forward(self, gated: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        return gated + gated * torch.sigmoid(self.res(gate))


class FUBlock2(nn.Module):
    """Eq. 2: P' = P + conv(concat(P, Q')): P (`ch`) takes in Q' (`other_ch`) through one conv."""

    def __init__(self, ch: int, other_ch: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(ch + other_ch, ch, kernel, padding=kernel // 2)

    def forward(self, p: torch.Tensor, q_fused: torch.Tensor) -> torch.Tensor:
        return p + self.conv(torch.cat([p, q_fused], dim=1))
