"""DHLN: Dual Hallucination and Landmark Network (SHT paper, Sec. 3.1, Fig. 2).

Two streams run side by side, stack by stack, named with the paper's letters:
- pose stream P: a stacked hourglass (Newell et al.); P_t, the output of stack t, is the pose representation
  (`channels` wide at `feature_size`), and every stack predicts heatmaps (deep supervision);
- super-resolution stream Q: per stack a module of `sr_blocks` SRBlocks (`sr_channels` wide); Q_t its output.
After each stack FUBlock1 (Eq. 1) lets the pose gate the SR features, Q'_t = Q_t + Q_t * sigmoid(RB(P_t)), and
FUBlock2 (Eq. 2) feeds them back into the pose, P'_t = P_t + conv(P_t || Q'_t); the heatmaps come from P'_t.
An upsampling tail turns the last Q' into the hallucinated face (plus the bicubic input, so the stream only
learns the missing detail).

`fusion="v0.1"` rebuilds the weights bundled with shtrack 0.1 (their config JSON has no `fusion` key), in
which the fusion ran the other way round: the SR features gated the hourglass features and FUBlock2 updated
the SR stream. It exists only to load those files (train/make_default_weights.sh has replaced them).
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
        self.paper_fusion = cfg.fusion == "paper"
        self.hourglass = Hourglass(cfg.hourglass_depth, ch, cfg.blocks_per_level)
        self.features = nn.Sequential(Bottleneck(ch, ch), nn.Conv2d(ch, ch, 1), nn.BatchNorm2d(ch), nn.ReLU(True))
        self.sr_module = nn.Sequential(*[SRBlock(sr) for _ in range(cfg.sr_blocks)])
        if self.paper_fusion:
            self.fuse_q = FUBlock1(gate_ch=ch, gated_ch=sr)                      # Eq. 1: P gates Q
            self.fuse_p = FUBlock2(ch, other_ch=sr, kernel=cfg.fusion_kernel)    # Eq. 2: P takes in Q'
        else:   # v0.1: Q gated P, and FUBlock2 updated Q
            self.fuse_q = FUBlock1(gate_ch=sr, gated_ch=ch)
            self.fuse_p = FUBlock2(sr, other_ch=ch, kernel=cfg.fusion_kernel)
        self.head = nn.Conv2d(ch, cfg.num_landmarks, 1)
        # Newell's re-injection of features and heatmaps into the next stack's input.
        self.remap_features = None if last else nn.Conv2d(ch, ch, 1)
        self.remap_heatmaps = None if last else nn.Conv2d(cfg.num_landmarks, ch, 1)

    def forward(self, pose_in: torch.Tensor, sr_in: torch.Tensor):
        """(stack input of the pose stream, of the SR stream) -> (next pose input, Q'_t, heatmaps)."""
        p = self.features(self.hourglass(pose_in))        # P_t
        q = self.sr_module(sr_in)                          # Q_t
        if self.paper_fusion:
            q_fused = self.fuse_q(q, p)                    # Eq. 1: Q'_t
            p_fused = self.fuse_p(p, q_fused)              # Eq. 2: P'_t
        else:
            p_fused = self.fuse_q(p, q)
            q_fused = self.fuse_p(q, p_fused)
        heatmaps = self.head(p_fused)
        if self.remap_features is None:
            return p_fused, q_fused, heatmaps
        p_next = pose_in + self.remap_features(p_fused) + self.remap_heatmaps(heatmaps)
        return p_next, q_fused, heatmaps


class DHLN(nn.Module):
    def __init__(self, cfg: DHLNConfig):
        super().__init__()
        self.cfg = cfg
        stride = cfg.input_size // cfg.feature_size
        ch, sr = cfg.channels, cfg.sr_channels
        stem_ch = max(ch // 4, 8)
        # Pose stem: full resolution conv, then (optionally) strided down to feature_size. (The attribute
        # names stem_q / stem_p predate the paper's letters; they stay so that v0.1 files load.)
        self.stem_q = nn.Sequential(
            nn.Conv2d(3, stem_ch, 3, stride=stride, padding=1), nn.BatchNorm2d(stem_ch), nn.ReLU(True),
            Bottleneck(stem_ch, ch // 2), Bottleneck(ch // 2, ch),
        )
        self.stem_p = nn.Conv2d(3, sr, 3, stride=stride, padding=1)
        self.stacks = nn.ModuleList([DHLNStack(cfg, last=i == cfg.num_stacks - 1) for i in range(cfg.num_stacks)])
        # Upsampling tail of the SR stream: x2 pixel-shuffle steps from feature_size to face_size. Leaky: with
        # ReLU the tail of every cpu-rt trained so far died early in training (all its units negative, so no
        # gradient ever came back) and the face was the bicubic input plus a constant (MODEL_CARD.md).
        steps, side = [], cfg.feature_size
        act = (lambda: nn.LeakyReLU(0.2, True)) if cfg.tail_activation == "leaky_relu" else (lambda: nn.ReLU(True))
        while side < cfg.face_size:
            steps += [nn.Conv2d(sr, sr * 4, 3, padding=1), nn.PixelShuffle(2), act()]
            side *= 2
        self.tail = nn.Sequential(nn.Conv2d(sr, sr, 3, padding=1), *steps, nn.Conv2d(sr, 3, 3, padding=1))

    def forward_features(self, x: torch.Tensor):
        """-> (the last stack's SR features Q', every stack's heatmaps)."""
        pose, sr = self.stem_q(x), self.stem_p(x)
        heatmaps = []
        for stack in self.stacks:
            pose, sr, h = stack(pose, sr)
            heatmaps.append(h)
        return sr, heatmaps

    def forward_face(self, sr: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(x, size=(self.cfg.face_size,) * 2, mode="bicubic", align_corners=False)
        return base + self.tail(sr)

    def forward(self, x: torch.Tensor) -> DHLNOutput:
        """x: (B, 3, input_size, input_size), normalised with cfg.mean / cfg.std."""
        p, heatmaps = self.forward_features(x)
        return DHLNOutput(heatmaps=heatmaps, face=self.forward_face(p, x))


class DHLNInference(nn.Module):
    """Export wrapper: plain tensors out, the last stack's heatmaps and (with_face) the hallucinated face.

    Without the face the exported graph drops the upsampling tail (and, for v0.1 files, the last FUBlock2):
    nothing else reads them, the tracker only needs heatmaps unless --save-faces asks for faces, and runtimes
    execute every node of a graph whatever outputs are fetched.
    """

    def __init__(self, model: DHLN, with_face: bool = True):
        super().__init__()
        self.model, self.with_face = model, with_face

    def forward(self, x: torch.Tensor):
        sr, heatmaps = self.model.forward_features(x)
        if not self.with_face:
            return heatmaps[-1]
        return heatmaps[-1], self.model.forward_face(sr, x)


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
