"""Convolutional building blocks shared by the networks."""

from __future__ import annotations

import torch
from torch import nn


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    raise ValueError(f"unknown normalisation {kind!r}; use 'batch' or 'group'")


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by normalisation and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, norm: str = "batch"):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            norm_layer(norm, out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            norm_layer(norm, out_channels),
            nn.ReLU(inplace=True),
        )


class AttentionGate(nn.Module):
    """Additive attention gate (Oktay et al. 2018) on a skip connection.

    The gating signal ``g`` comes from the coarser decoder level (already upsampled
    to the skip's resolution); the gate returns ``skip * alpha`` with
    ``alpha = sigmoid(psi(relu(W_x skip + W_g g)))`` of shape [N, 1, H, W].
    """

    def __init__(self, skip_channels: int, gate_channels: int, inter_channels: int):
        super().__init__()
        self.w_skip = nn.Conv2d(skip_channels, inter_channels, 1, bias=False)
        self.w_gate = nn.Conv2d(gate_channels, inter_channels, 1, bias=True)
        self.psi = nn.Conv2d(inter_channels, 1, 1, bias=True)

    def forward(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        alpha = torch.sigmoid(self.psi(torch.relu(self.w_skip(skip) + self.w_gate(gate))))
        return skip * alpha
