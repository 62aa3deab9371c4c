"""Attention U-Net: a U-Net whose skip connections pass through additive attention gates."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import SegmenterConfig
from .blocks import AttentionGate, ConvBlock


class AttentionUNet(nn.Module):
    """Attention U-Net for particle segmentation.

    Input [N, 1, H, W] (normalised grey image, H and W multiples of
    ``config.multiple``); output [N, config.out_channels, H, W] logits.
    """

    def __init__(self, config: SegmenterConfig = SegmenterConfig(), in_channels: int = 1):
        super().__init__()
        if config.depth < 2:
            raise ValueError("depth must be at least 2")
        self.config = config
        widths = [config.base_channels * 2**i for i in range(config.depth)]
        self.encoders = nn.ModuleList()
        prev = in_channels
        for w in widths:
            self.encoders.append(ConvBlock(prev, w, config.norm))
            prev = w
        self.ups = nn.ModuleList()
        self.gates = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for w_skip, w_deep in zip(reversed(widths[:-1]), reversed(widths[1:])):
            self.ups.append(nn.Conv2d(w_deep, w_skip, 1, bias=False))
            self.gates.append(AttentionGate(w_skip, w_skip, max(w_skip // 2, 4)))
            self.decoders.append(ConvBlock(2 * w_skip, w_skip, config.norm))
        self.head = nn.Conv2d(widths[0], config.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.config.multiple
        if x.ndim != 4 or x.shape[2] % m or x.shape[3] % m:
            raise ValueError(f"expected [N, C, H, W] with H, W multiples of {m}, got {tuple(x.shape)}")
        skips = []
        for i, enc in enumerate(self.encoders):
            x = enc(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for up, gate, dec in zip(self.ups, self.gates, self.decoders):
            skip = skips.pop()
            x = up(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
            x = dec(torch.cat([gate(skip, x), x], dim=1))
        return self.head(x)
