"""PatchGAN critics for the image and the mask domain, and DiffAugment for their inputs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm


class PatchCritic(nn.Module):
    """70x70-style PatchGAN with spectral norm: [N, C, H, W] -> [N, 1, H/8, W/8] realness scores."""

    def __init__(self, in_channels: int, base_channels: int = 32, layers: int = 3):
        super().__init__()
        mods, prev = [], in_channels
        for i in range(layers):
            out = base_channels * 2**i
            mods += [spectral_norm(nn.Conv2d(prev, out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            prev = out
        mods += [spectral_norm(nn.Conv2d(prev, prev, 3, padding=1)), nn.LeakyReLU(0.2), nn.Conv2d(prev, 1, 3, padding=1)]
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def diff_augment(x: torch.Tensor, *, generator: torch.Generator | None = None, colour: bool = True,
                 translation: float = 0.125, cutout: float = 0.25) -> torch.Tensor:
    """Differentiable augmentation (Zhao et al. 2020) applied to real and fake critic inputs alike.

    Brightness/contrast (when ``colour``), integer translation with zero padding and
    cutout, each drawn per sample; gradients flow through to the generator.
    """
    n, _, h, w = x.shape
    dev = x.device

    def rand(*shape):
        return torch.rand(*shape, generator=generator).to(dev)

    if colour:
        x = x + (rand(n, 1, 1, 1) - 0.5) * 0.4
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * (rand(n, 1, 1, 1) * 0.8 + 0.6) + mean
    if translation > 0:
        sy, sx = int(h * translation), int(w * translation)
        ty = (rand(n) * (2 * sy + 1)).long() - sy
        tx = (rand(n) * (2 * sx + 1)).long() - sx
        padded = F.pad(x, (sx, sx, sy, sy))
        x = torch.stack([padded[i, :, sy + ty[i] : sy + ty[i] + h, sx + tx[i] : sx + tx[i] + w] for i in range(n)])
    if cutout > 0:
        ch, cw = int(h * cutout), int(w * cutout)
        cy = (rand(n) * (h - ch + 1)).long()
        cx = (rand(n) * (w - cw + 1)).long()
        keep = torch.ones(n, 1, h, w, device=dev)
        for i in range(n):
            keep[i, :, cy[i] : cy[i] + ch, cx[i] : cx[i] + cw] = 0
        x = x * keep
    return x
