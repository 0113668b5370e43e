"""Losses of DHLN (Eq. 3-4), FPTN and SHT (Eq. 9-10).

Normalisation (chosen so that gamma and lambda weigh the terms as the paper's equations read): every norm
is taken literally, over all elements of one sample, and the batch is averaged. ||H - H^||^2 is the squared
error summed over all 68 maps and their pixels (averaged over the stacks: deep supervision), ||I - I^||_1 the
absolute error summed over the face's 3 x S x S values, Eq. 3 the same over the gradient-magnitude maps.
Mixing sums and means (v0.1 summed heatmap pixels but averaged image pixels) left the 0.01-weighted image
terms ~10^3 weaker than the equations say; `gradient_shares` measures what each term contributes.

- heatmap L2 over every stack; pixel L1 and gradient loss (Eq. 3) on the hallucinated face.
- GAN: least-squares GAN (LSGAN, Mao et al. 2017): stabler than BCE on small batches.
- perceptual: L1 between VGG-19 conv1_2 features. torchvision is not usable beside our CPU torch build,
  so the two layers are defined here and loaded from a torchvision VGG-19 state dict (`--vgg19-weights`).
"""

from __future__ import annotations

import dataclasses
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

    @classmethod
    def parse(cls, text: str) -> "LossWeights":
        """'pixel=1,gradient=0.1' -> the paper's weights with those replaced ('' -> the paper's)."""
        names = [f.name for f in dataclasses.fields(cls)]
        changed = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, _, value = item.partition("=")
            if name.strip() not in names:
                raise ValueError(f"loss weight {name.strip()!r} is not one of {names}")
            try:
                changed[name.strip()] = float(value)
            except ValueError:
                raise ValueError(f"loss weight {item!r} is not NAME=NUMBER") from None
        return cls(**changed)


def per_sample_sum(x: torch.Tensor) -> torch.Tensor:
    """(B, ...) -> (B,): a norm's sum over one sample's elements."""
    return x.flatten(1).sum(1)


def heatmap_loss(predicted: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """(B,) squared L2 over all maps and pixels of a sample, averaged over the stacks."""
    return torch.stack([per_sample_sum((p - target) ** 2) for p in predicted]).mean(0)


def pixel_loss(face: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) L1 over a sample's face values."""
    return per_sample_sum((face - target).abs())


def gradient_magnitude(img: torch.Tensor) -> torch.Tensor:
    """Per-channel gradient magnitude with central differences (replicate padding)."""
    padded = F.pad(img, (1, 1, 1, 1), mode="replicate")
    gx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2
    gy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) / 2
    return torch.sqrt(gx ** 2 + gy ** 2 + 1e-6)


def gradient_loss(face: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 3: || |grad(I_hat)| - |grad(I)| ||_1, (B,)."""
    return per_sample_sum((gradient_magnitude(face) - gradient_magnitude(target)).abs())


def dhln_terms(heatmaps, face, target_heatmaps, target_face, w: LossWeights,
               labelled: torch.Tensor | float = 1.0) -> dict[str, torch.Tensor]:
    """Eq. 4's weighted terms, batch-averaged; `labelled` (B,) or scalar is gamma1 per sample (0 or 1, Eq. 10)."""
    gamma1 = torch.as_tensor(labelled, dtype=face.dtype, device=face.device) * w.heatmap
    return {"heatmap": (gamma1 * heatmap_loss(heatmaps, target_heatmaps)).mean(),
            "pixel": w.pixel * pixel_loss(face, target_face).mean(),
            "gradient": w.gradient * gradient_loss(face, target_face).mean()}


def dhln_loss(heatmaps, face, target_heatmaps, target_face, w: LossWeights, labelled: torch.Tensor | float = 1.0):
    """Eq. 4 for one batch -> (loss, its weighted terms detached for logging)."""
    terms = dhln_terms(heatmaps, face, target_heatmaps, target_face, w, labelled)
    return sum(terms.values()), {k: v.detach() for k, v in terms.items()}


def gradient_shares(params: list[torch.Tensor], terms: dict[str, torch.Tensor]) -> dict[str, float]:
    """Share of the gradient norm into `params` that each (weighted) loss term gives: norm_i / sum of norms.

    One extra backward pass per term, so the loops call it at logging steps only."""
    norms = {}
    for name, term in terms.items():
        if not term.requires_grad:
            norms[name] = 0.0
            continue
        grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
        norms[name] = float(torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None)))
    total = sum(norms.values()) or 1.0
    return {name: n / total for name, n in norms.items()}


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


@torch.no_grad()
def distillation_targets(teacher: nn.Module, inputs: torch.Tensor, student_cfg) -> torch.Tensor:
    """The teacher's landmarks on the student's inputs, as Gaussian heatmaps at the student's size (B, L, h, h).
    The teacher sees each input bicubically resized to its own input size (no detail added or lost: the student's
    input is the face at its degraded resolution); its heatmaps are decoded with the shared decoder and encoded
    again at the student's resolution and sigma, so a 16x16 student learns from a 32x32 teacher's peaks."""
    from sht_model.heatmap import decode, encode, from_heatmap_coords, to_heatmap_coords

    t = teacher.cfg
    resized = F.interpolate(inputs, size=(t.input_size, t.input_size), mode="bicubic", align_corners=False)
    xy, _ = decode(teacher(resized).heatmaps[-1].float().cpu().numpy(), t.heatmap_sigma)
    xy_in = from_heatmap_coords(xy, t.input_size, t.feature_size) * (student_cfg.input_size / t.input_size)
    xy_in = xy_in + 0.5 * (student_cfg.input_size / t.input_size) - 0.5   # pixel centres of the other size
    points = torch.from_numpy(to_heatmap_coords(xy_in, student_cfg.input_size, student_cfg.feature_size).astype("float32"))
    return encode(points, student_cfg.feature_size, student_cfg.heatmap_sigma).to(inputs.device)
