"""DHLN: Dual Hallucination and Landmark Network (SHT paper, Sec. 3.1, Fig. 2).

Two streams run side by side, stack by stack:
- landmark stream Q: a stacked hourglass (Newell et al.), one set of heatmaps per stack for deep supervision;
- hallucination stream P: per stack a super-resolution module of `sr_blocks` SRBlocks.
After each stack FUBlock1 (Eq. 1) gates Q with P and FUBlock2 (Eq. 2) feeds Q' back into P.
An upsampling tail turns the last P into the hallucinated face (plus the bicubic input, so the
stream only learns the missing detail).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .blocks import Bottleneck, FUBlock1, FUBlock2, Hourglass, SRBlock
from .config import DHLNConfig, get_config


@dataclass
class DHLNOutput:
    heatmaps: list[torch.Tensor]   # num_stacks x (B, L, feature_size, feature_size); last is the prediction
    face: torch.Tensor             # (B, 3, face_size, face_size), normalised like the input


class DHLNStack(nn.Module):
    def __init__(self, cfg: DHLNConfig, last: bool):
        super().__init__()
        ch, sr = cfg.channels, cfg.sr_channels
        self.hourglass = Hourglass(cfg.hourglass_depth, ch, cfg.blocks_per_level)
        self.features = nn.Sequential(Bottleneck(ch, ch), nn.Conv2d(ch, ch, 1), nn.BatchNorm2d(ch), nn.ReLU(True))
        self.sr_module = nn.Sequential(*[SRBlock(sr) for _ in range(cfg.sr_blocks)])
        self.fuse_q = FUBlock1(sr, ch)
        self.fuse_p = FUBlock2(sr, ch)
        self.head = nn.Conv2d(ch, cfg.num_landmarks, 1)
        # Newell's re-injection of features and heatmaps into the next stack's input.
        self.remap_features = None if last else nn.Conv2d(ch, ch, 1)
        self.remap_heatmaps = None if last else nn.Conv2d(cfg.num_landmarks, ch, 1)

    def forward(self, q_in: torch.Tensor, p_in: torch.Tensor):
        q = self.features(self.hourglass(q_in))
        p = self.sr_module(p_in)
        q_fused = self.fuse_q(q, p)               # Eq. 1
        heatmaps = self.head(q_fused)
        p_out = self.fuse_p(p, q_fused)           # Eq. 2
        if self.remap_features is None:
            return q_fused, p_out, heatmaps
        q_out = q_in + self.remap_features(q_fused) + self.remap_heatmaps(heatmaps)
        return q_out, p_out, heatmaps


class DHLN(nn.Module):
    def __init__(self, cfg: DHLNConfig):
        super().__init__()
        self.cfg = cfg
        stride = cfg.input_size // cfg.feature_size
        ch, sr = cfg.channels, cfg.sr_channels
        stem_ch = max(ch // 4, 8)
        # Landmark stem: full resolution conv, then (optionally) strided down to feature_size.
        self.stem_q = nn.Sequential(
            nn.Conv2d(3, stem_ch, 3, stride=stride, padding=1), nn.BatchNorm2d(stem_ch), nn.ReLU(True),
            Bottleneck(stem_ch, ch // 2), Bottleneck(ch // 2, ch),
        )
        self.stem_p = nn.Conv2d(3, sr, 3, stride=stride, padding=1)
        self.stacks = nn.ModuleList([DHLNStack(cfg, last=i == cfg.num_stacks - 1) for i in range(cfg.num_stacks)])
        # Upsampling tail: x2 pixel-shuffle steps from feature_size to face_size.
        steps, side = [], cfg.feature_size
        while side < cfg.face_size:
            steps += [nn.Conv2d(sr, sr * 4, 3, padding=1), nn.PixelShuffle(2), nn.ReLU(True)]
            side *= 2
        self.tail = nn.Sequential(nn.Conv2d(sr, sr, 3, padding=1), *steps, nn.Conv2d(sr, 3, 3, padding=1))

    def forward_features(self, x: torch.Tensor):
        q, p = self.stem_q(x), self.stem_p(x)
        heatmaps = []
        for stack in self.stacks:
            q, p, h = stack(q, p)
            heatmaps.append(h)
        return p, heatmaps

    def forward_face(self, p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(x, size=(self.cfg.face_size,) * 2, mode="bicubic", align_corners=False)
        return base + self.tail(p)

    def forward(self, x: torch.Tensor) -> DHLNOutput:
        """x: (B, 3, input_size, input_size), normalised with cfg.mean / cfg.std."""
        p, heatmaps = self.forward_features(x)
        return DHLNOutput(heatmaps=heatmaps, face=self.forward_face(p, x))


class DHLNInference(nn.Module):
    """Export wrapper: plain tensors out, the last stack's heatmaps and (with_face) the hallucinated face.

    Without the face the exported graph drops the upsampling tail and the last FUBlock2 (nothing else reads
    them): the tracker only needs heatmaps unless --save-faces asks for faces, and runtimes execute every
    node of a graph whatever outputs are fetched (ONNX Runtime: 13% of the cpu-rt forward pass, benchmarks.model_latency).
    """

    def __init__(self, model: DHLN, with_face: bool = True):
        super().__init__()
        self.model, self.with_face = model, with_face

    def forward(self, x: torch.Tensor):
        p, heatmaps = self.model.forward_features(x)
        if not self.with_face:
            return heatmaps[-1]
        return heatmaps[-1], self.model.forward_face(p, x)


def build_model(name: str = "cpu-rt", **overrides) -> DHLN:
    return DHLN(get_config(name, **overrides))


def count_parameters(model: nn.Module) -> int:
    """All trainable parameters (weights and biases, BN affine; BN running stats excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: DHLN, batch: int = 1) -> int:
    """FLOPs of one forward pass (multiply-add = 2 FLOPs), counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(batch, 3, model.cfg.input_size, model.cfg.input_size)
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was_training)
    return counter.get_total_flops()
