"""FPTN: Face Pose Transfer Network (SHT paper, Sec. 3.2), used in training only.

The generator is a stack of PATBs (pose-attentional transfer blocks, Zhu et al. CVPR 2019): an image
pathway carrying the appearance of the condition face and a pose pathway carrying (condition heatmaps,
target heatmaps); each block turns the pose code into an attention mask in (0, 1) that gates the update
of the image code, so appearance is moved where the target pose asks for it.

Two PatchGAN discriminators judge the result:
- D_A (appearance) on (condition face || face): does the face look like the same person?
- D_S (shape) on (target heatmaps || face): does the face have the target pose?
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class FPTNConfig:
    face_size: int = 128
    num_landmarks: int = 68
    channels: int = 64        # width of the image/pose codes (at face_size / 4)
    num_blocks: int = 6       # PATBs
    disc_channels: int = 64


def _conv_norm_relu(in_ch: int, out_ch: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, k, stride, k // 2, bias=False),
                         nn.InstanceNorm2d(out_ch, affine=True), nn.ReLU(True))


class PATB(nn.Module):
    """Pose-attentional transfer block: img' = img + conv(img) * sigmoid(conv(pose)); pose' updated from both."""

    def __init__(self, ch: int):
        super().__init__()
        self.pose_path = nn.Sequential(_conv_norm_relu(ch, ch), nn.Conv2d(ch, ch, 3, padding=1),
                                       nn.InstanceNorm2d(ch, affine=True))
        self.image_path = nn.Sequential(_conv_norm_relu(ch, ch), nn.Conv2d(ch, ch, 3, padding=1),
                                        nn.InstanceNorm2d(ch, affine=True))
        self.pose_update = nn.Conv2d(2 * ch, ch, 1)

    def forward(self, image: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pose_code = self.pose_path(pose)
        mask = torch.sigmoid(pose_code)
        image = image + self.image_path(image) * mask
        pose = pose + self.pose_update(torch.cat([pose_code, image], dim=1))
        return image, pose


class FPTNGenerator(nn.Module):
    def __init__(self, cfg: FPTNConfig):
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels

        def encoder(in_ch: int) -> nn.Sequential:
            return nn.Sequential(_conv_norm_relu(in_ch, ch // 2, 7), _conv_norm_relu(ch // 2, ch, 3, 2),
                                 _conv_norm_relu(ch, ch, 3, 2))

        self.image_encoder = encoder(3)
        self.pose_encoder = encoder(2 * cfg.num_landmarks)
        self.blocks = nn.ModuleList([PATB(ch) for _ in range(cfg.num_blocks)])
        self.decoder = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), _conv_norm_relu(ch, ch // 2),
            nn.Upsample(scale_factor=2, mode="nearest"), _conv_norm_relu(ch // 2, ch // 2),
            nn.Conv2d(ch // 2, 3, 7, padding=3), nn.Tanh(),
        )

    def forward(self, face: torch.Tensor, cond_heatmaps: torch.Tensor, target_heatmaps: torch.Tensor) -> torch.Tensor:
        """face (B,3,S,S) in [-1,1]; heatmaps (B,L,h,h) at any size -> target face (B,3,S,S)."""
        size = (self.cfg.face_size,) * 2
        pose = torch.cat([F.interpolate(cond_heatmaps, size=size, mode="bilinear", align_corners=False),
                          F.interpolate(target_heatmaps, size=size, mode="bilinear", align_corners=False)], 1)
        image, pose = self.image_encoder(face), self.pose_encoder(pose)
        for block in self.blocks:
            image, pose = block(image, pose)
        return self.decoder(image)


class PatchDiscriminator(nn.Module):
    """PatchGAN (pix2pix): a map of real/fake logits, one per overlapping patch."""

    def __init__(self, in_ch: int, ch: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, ch, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ch, ch * 2, 4, 2, 1), nn.InstanceNorm2d(ch * 2, affine=True), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ch * 2, ch * 4, 4, 2, 1), nn.InstanceNorm2d(ch * 4, affine=True), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ch * 4, 1, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FPTN(nn.Module):
    """Generator plus the appearance (D_A) and shape (D_S) discriminators."""

    def __init__(self, cfg: FPTNConfig):
        super().__init__()
        self.cfg = cfg
        self.generator = FPTNGenerator(cfg)
        self.d_appearance = PatchDiscriminator(6, cfg.disc_channels)
        self.d_shape = PatchDiscriminator(cfg.num_landmarks + 3, cfg.disc_channels)

    def forward(self, face, cond_heatmaps, target_heatmaps):
        return self.generator(face, cond_heatmaps, target_heatmaps)

    def appearance_logits(self, cond_face: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        return self.d_appearance(appearance_input(cond_face, face))

    def shape_logits(self, heatmaps: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        return self.d_shape(shape_input(heatmaps, face))


def appearance_input(cond_face: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """D_A's input: the condition face beside the face judged."""
    return torch.cat([cond_face, face], 1)


def shape_input(heatmaps: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """D_S's input: the target heatmaps (at the face's size) beside the face judged."""
    hm = F.interpolate(heatmaps, size=face.shape[-2:], mode="bilinear", align_corners=False)
    return torch.cat([hm, face], 1)
