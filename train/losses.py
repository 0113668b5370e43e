"""Losses of DHLN (Eq. 3-4), FPTN and SHT (Eq. 9-10).

- heatmap L2: squared error summed over each map's pixels, averaged over maps, batch and stacks
  (deep supervision of every stack). Summing over pixels keeps it O(1), so the paper's 0.01 weights
  leave the hallucination terms as the small regularisers they are meant to be.
- pixel L1 and gradient loss (Eq. 3: L1 between gradient-magnitude maps) on the hallucinated face.
- GAN: least-squares GAN (LSGAN, Mao et al. 2017): stabler than BCE on small batches.
- perceptual: L1 between VGG-19 conv1_2 features. torchvision is not usable beside our CPU torch build,
  so the two layers are defined here and loaded from a torchvision VGG-19 state dict (`--vgg19-weights`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class LossWeights:
    heatmap: float = 1.0        # gamma1 (0 for unlabelled pairs, Eq. 10)
    pixel: float = 0.01         # gamma2
    gradient: float = 0.01      # gamma3
    gan: float = 0.05           # lambda1 (FPTN)
    transfer_l1: float = 0.01   # lambda2
    perceptual: float = 0.01    # lambda3


def heatmap_loss(predicted: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    per_stack = [((p - target) ** 2).sum(dim=(-2, -1)).mean() for p in predicted]
    return torch.stack(per_stack).mean()


def pixel_loss(face: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(face, target)


def gradient_magnitude(img: torch.Tensor) -> torch.Tensor:
    """Per-channel gradient magnitude with central differences (replicate padding)."""
    padded = F.pad(img, (1, 1, 1, 1), mode="replicate")
    gx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2
    gy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) / 2
    return torch.sqrt(gx ** 2 + gy ** 2 + 1e-6)


def gradient_loss(face: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 3: || |grad(I_hat)| - |grad(I)| ||_1."""
    return F.l1_loss(gradient_magnitude(face), gradient_magnitude(target))


def dhln_loss(heatmaps, face, target_heatmaps, target_face, w: LossWeights, labelled: torch.Tensor | float = 1.0):
    """Eq. 4 for one batch; `labelled` (B,) or scalar masks the heatmap term (gamma1 in {0, 1})."""
    if isinstance(labelled, torch.Tensor) and labelled.dim():
        keep = labelled > 0
        hm = heatmap_loss([h[keep] for h in heatmaps], target_heatmaps[keep]) if keep.any() else face.new_zeros(())
    else:
        hm = heatmap_loss(heatmaps, target_heatmaps) if labelled else face.new_zeros(())
    pix, grad = pixel_loss(face, target_face), gradient_loss(face, target_face)
    total = w.heatmap * hm + w.pixel * pix + w.gradient * grad
    return total, {"heatmap": hm.detach(), "pixel": pix.detach(), "gradient": grad.detach()}


def lsgan(logits: torch.Tensor, real: bool) -> torch.Tensor:
    return ((logits - (1.0 if real else 0.0)) ** 2).mean()


class VGG19Conv12(nn.Module):
    """VGG-19 up to relu(conv1_2), frozen. Expects faces normalised to [-1, 1]."""

    def __init__(self, weights: str | Path):
        super().__init__()
        self.conv1_1 = nn.Conv2d(3, 64, 3, padding=1)
        self.conv1_2 = nn.Conv2d(64, 64, 3, padding=1)
        state = torch.load(weights, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
        self.conv1_1.load_state_dict({"weight": state["features.0.weight"], "bias": state["features.0.bias"]})
        self.conv1_2.load_state_dict({"weight": state["features.2.weight"], "bias": state["features.2.bias"]})
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x + 1) / 2 - self.mean) / self.std
        return F.relu(self.conv1_2(F.relu(self.conv1_1(x))))


def perceptual_loss(vgg: VGG19Conv12 | None, face: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if vgg is None:
        return face.new_zeros(())
    return F.l1_loss(vgg(face), vgg(target))
