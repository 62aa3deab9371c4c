"""Convolutional building blocks shared by the networks."""

from __future__ import annotations

import torch
from torch import nn


class GroupNorm(nn.GroupNorm):
    """Group normalisation that can normalise with fixed statistics instead of each input's own.

    Group norm normalises each input by its own statistics, so a network trained on
    crops gives different results for different tile sizes of one image.
    :func:`napari_nanogan.segmentation.statistics.image_statistics` sets
    :attr:`statistics` to the image's (per group, pooled over a batch of crops of it) and
    every tile then uses those. Same parameters and checkpoint keys as ``nn.GroupNorm``.
    """

    #: While True, a forward pass records its input's statistics, pooled over the batch, and uses them.
    record: bool = False
    #: (mean, var) per group, or None: each input's own (``nn.GroupNorm``).
    statistics: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.record:
            n, c, h, w = x.shape
            var, mean = torch.var_mean(x.float().reshape(n, self.num_groups, c // self.num_groups, h, w),
                                       dim=(0, 2, 3, 4), correction=0)
            self.statistics = (mean, var)
        if self.statistics is None:
            return super().forward(x)
        return self._normalise(x, *self.statistics)

    def _normalise(self, x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        scale = torch.rsqrt(var + self.eps).repeat_interleave(c // self.num_groups)
        shift = -mean.repeat_interleave(c // self.num_groups) * scale
        if self.affine:
            scale, shift = scale * self.weight, shift * self.weight + self.bias
        return torch.addcmul(shift.view(1, c, 1, 1).to(x.dtype), x, scale.view(1, c, 1, 1).to(x.dtype))


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return GroupNorm(min(8, channels), channels)
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
