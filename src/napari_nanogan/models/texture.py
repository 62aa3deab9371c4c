"""A small fully convolutional texture generator and the band-pass filters it is trained with.

:class:`TextureNet` turns spatial noise at 1/8 resolution (three x2 upsamplings, noise
injected at each; Jetchev et al. 2016, "Texture synthesis with spatial generative
adversarial networks") into a texture; :func:`band_pass` keeps what is finer than
``sigma`` px over a weight map (the substrate, or the particles), so a region's level
never leaks into its texture. :mod:`napari_nanogan.synthesis.texture` lays a trained one
over synthetic images; :mod:`napari_nanogan.training.texture` trains it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import TextureConfig
from .tiling import memory_format_of, tiled_stage, use_tiles

#: Grey levels per network unit: the residual is a few grey levels.
SCALE = 8.0


class TextureNet(nn.Module):
    """Spatial noise [N, z, H/8, W/8] (+ noise maps at 1/4, 1/2, 1) -> texture [N, 1, H, W] in SCALE grey levels.

    With ``config.cond_channels`` > 0, condition maps [N, c, H, W] (:func:`napari_nanogan.synthesis.texture.condition_maps`) are
    resized to 1/4, 1/2 and full resolution and concatenated to each upsampling block's input.
    """

    def __init__(self, config: TextureConfig | None = None):
        super().__init__()
        self.config = config = config or TextureConfig()
        w = config.widths
        self.inp = nn.Sequential(nn.Conv2d(config.z_channels, w[0], 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                                 nn.Conv2d(w[0], w[0], 3, padding=1), nn.LeakyReLU(0.2, inplace=True))
        self.ups = nn.ModuleList()
        self.noise_gain = nn.ParameterList()
        c = config.cond_channels
        for a, b in zip(w[:-1], w[1:]):
            self.ups.append(nn.Sequential(nn.Conv2d(a + c, b, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                                          nn.Conv2d(b, b, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)))
            self.noise_gain.append(nn.Parameter(torch.full((1, a, 1, 1), 0.1)))
        self.out = nn.Conv2d(w[-1], 1, 1)

    def forward(self, z: torch.Tensor, noise: list[torch.Tensor], cond: torch.Tensor | None = None, *,
                need: np.ndarray | None = None) -> torch.Tensor:
        """``need`` (bool [H, W], one image, no autograd, CPU): the pixels the caller uses. The last,
        full-resolution block is then computed tile by tile (``models.tiling``), only where needed;
        elsewhere the output is 0."""
        if (cond is None) != (self.config.cond_channels == 0):
            raise ValueError(f"this texture takes {self.config.cond_channels} condition channels; "
                             f"got {'none' if cond is None else cond.shape[1]}")
        h = self.inp(z)
        for k, (up, gain, n) in enumerate(zip(self.ups, self.noise_gain, noise)):
            c = None if cond is None else (cond if cond.shape[-2:] == n.shape[-2:]
                                           else F.interpolate(cond, size=n.shape[-2:], mode="area"))
            if k == len(self.ups) - 1 and h.shape[0] == 1 and use_tiles(h):
                def block(low, full, valid):
                    return self.out(self._block(up, gain, low[0], full[0], full[1] if len(full) > 1 else None, valid))

                return tiled_stage(block, [h], [n] if c is None else [n, c], need=need,
                                   memory_format=memory_format_of(h))
            h = self._block(up, gain, h, n, c)
        return self.out(h)

    def _block(self, up, gain, h, n, c=None, valid=None):
        """One upsampling block; ``valid`` (tiles): 0 outside the image."""
        extra = {} if self.config.upsample == "nearest" else {"align_corners": False}
        h = F.interpolate(h, scale_factor=2, mode=self.config.upsample, **extra)
        if torch.is_grad_enabled():
            h = h + gain * n
            return up(h if c is None else torch.cat([h, c], 1))
        h.addcmul_(gain, n)
        if valid is not None:
            h.mul_(valid)
        if c is None:
            h = up[:2](h)
        else:  # the same first convolution in two parts: a channel cat at full resolution costs more than it
            first, k = up[0], h.shape[1]
            h = up[1](F.conv2d(h, first.weight[:, :k], first.bias, padding=1).add_(
                F.conv2d(c.contiguous(memory_format=memory_format_of(h)), first.weight[:, k:], None, padding=1)))
        if valid is not None:
            h.mul_(valid)
        return up[2:](h)

    def sample(self, n: int, height: int, width: int, generator: torch.Generator,
               cond: torch.Tensor | None = None, need: np.ndarray | None = None) -> torch.Tensor:
        """A texture [n, 1, height, width] from noise drawn with ``generator`` (the same seed, the same texture).

        ``cond``: condition maps [n, c, height, width] for a conditional texture. ``need`` (bool
        [height, width], n = 1): the pixels used; the texture may be 0 elsewhere (:meth:`forward`).
        """
        zh, zw = -(-height // 8), -(-width // 8)
        dev, dtype = self.out.weight.device, self.out.weight.dtype  # (bf16 for a bf16 copy)
        z = torch.randn(n, self.config.z_channels, zh, zw, generator=generator).to(dev, dtype)
        noise = [torch.randn(n, 1, zh * 2**k, zw * 2**k, generator=generator).to(dev, dtype) for k in (1, 2, 3)]
        if cond is not None:  # padded to the noise's multiple of 8 (edge values), cut back below
            cond = F.pad(cond.to(dev, dtype), (0, zw * 8 - width, 0, zh * 8 - height), mode="replicate")
        if need is not None:
            need = np.pad(np.asarray(need, bool), ((0, zh * 8 - height), (0, zw * 8 - width)))
        return self(z, noise, cond, need=need)[..., :height, :width]


def gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, int(round(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def blur_zero(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Separable blur of [N, 1, H, W] with zero padding (for normalised convolution)."""
    r = (len(k) - 1) // 2
    k = k.to(x.device, x.dtype)
    x = F.conv2d(x, k.view(1, 1, 1, -1), padding=(0, r))
    return F.conv2d(x, k.view(1, 1, -1, 1), padding=(r, 0))


def lowpass_w(x: torch.Tensor, w: torch.Tensor, sigma: float) -> torch.Tensor:
    """Normalised Gaussian of ``x`` [N, 1, H, W] over the weight ``w``: the substrate's local level, particles ignored."""
    k = gaussian_kernel(sigma)
    return blur_zero(x * w, k) / blur_zero(w, k).clamp_min(1e-3)


def band_pass(x: torch.Tensor, w: torch.Tensor, sigma: float) -> torch.Tensor:
    """``(x - lowpass_w(x)) * w``: the substrate's texture finer than ``sigma``, zero off the substrate."""
    return (x - lowpass_w(x, w, sigma)) * w
