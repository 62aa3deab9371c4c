"""Style U-Net generator: a U-Net over the mask whose decoder is modulated by a style
vector and perturbed by per-layer noise, so one mask gives many realistic images.

Unlike the public reference code (whose "style" generator ignores both its style and
its noise), every decoder convolution here is a StyleGAN2 modulated + demodulated
convolution driven by ``w = mapping(z)``, and every decoder layer adds its own noise
map, drawn at full resolution and *resized* (area averaging, variance restored) to
the layer's resolution, so that noise is spatially consistent across layers and
across tiles of the same image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import GeneratorConfig
from .blocks import ConvBlock
from .tiling import memory_format_of, tiled_stage, use_tiles


class MappingNetwork(nn.Module):
    """MLP from a normalised latent ``z`` [N, D] to a style vector ``w`` [N, D]."""

    def __init__(self, dim: int, layers: int):
        super().__init__()
        mods = []
        for _ in range(layers):
            mods += [nn.Linear(dim, dim), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*mods)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
        return self.net(z)


class ModulatedConv2d(nn.Module):
    """3x3 (or 1x1) convolution whose input channels are scaled by an affine map of ``w``,
    with the output demodulated to unit variance (StyleGAN2)."""

    def __init__(self, in_channels: int, out_channels: int, style_dim: int, kernel: int = 3, demodulate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.scale = 1 / math.sqrt(in_channels * kernel * kernel)
        self.affine = nn.Linear(style_dim, in_channels)
        nn.init.ones_(self.affine.bias)
        self.demodulate = demodulate
        self.padding = kernel // 2

    def modulated_weight(self, w: torch.Tensor) -> torch.Tensor:
        """The convolution's weight for each style: [N, C_out, C_in, k, k]."""
        style = self.affine(w)  # [N, C_in]
        weight = self.scale * self.weight[None] * style[:, None, :, None, None]
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        return weight

    def forward(self, x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """``bias`` [C_out] (optional) is added by the convolution itself."""
        n, c, h, wd = x.shape
        weight = self.modulated_weight(w)
        out_c = weight.shape[1]
        if n == 1:  # one image (synthesis): a plain convolution, whose output keeps the standard strides
            return F.conv2d(x, weight[0], bias, padding=self.padding)
        out = F.conv2d(x.reshape(1, n * c, h, wd), weight.reshape(n * out_c, c, *weight.shape[3:]),
                       None if bias is None else bias.repeat(n), padding=self.padding, groups=n)
        return out.reshape(n, out_c, h, wd)


class StyledLayer(nn.Module):
    """Modulated conv -> noise (per-channel learned strength) -> bias -> LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, style_dim: int, noise_init: float):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, style_dim)
        self.noise_strength = nn.Parameter(torch.full((1, out_channels, 1, 1), noise_init))
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return F.leaky_relu(self.conv(x, w) + self.noise_strength * noise + self.bias, 0.2)
        # Inference: the same sum in place, the bias inside the convolution. Half of a 1024 x 768
        # synthesis went to these element-wise passes over full-resolution activations.
        out = self.conv(x, w, self.bias.view(-1)).addcmul_(self.noise_strength, noise)
        return F.leaky_relu_(out, 0.2)

    def forward_parts(self, parts: list[torch.Tensor], w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` of one image (no autograd) on the channel concatenation of ``parts``, without
        making it: one convolution per part, summed. At 4096 x 4096 the decoder's concatenation was
        the synthesis's largest tensor (1.6 GB)."""
        weight = self.conv.modulated_weight(w)[0]
        out, start = None, 0
        for part in parts:
            k = part.shape[1]
            term = F.conv2d(part, weight[:, start: start + k].contiguous(memory_format=memory_format_of(part)),
                            self.bias.view(-1) if out is None else None, padding=self.conv.padding)
            out = term if out is None else out.add_(term)
            start += k
        return F.leaky_relu_(out.addcmul_(self.noise_strength, noise), 0.2)



def resize_noise(noise: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-resize a full-resolution noise map [N, 1, H, W] to ``size``, keeping unit variance."""
    if tuple(noise.shape[-2:]) == tuple(size):
        return noise
    factor = math.sqrt((noise.shape[-2] * noise.shape[-1]) / (size[0] * size[1]))
    return F.adaptive_avg_pool2d(noise, size) * factor


class StyleUNet(nn.Module):
    """Mask [N, in_channels, H, W] (+ style, noise) -> image [N, 1, H, W] in about [-1, 1].

    H and W must be multiples of ``config.multiple``.
    """

    def __init__(self, config: GeneratorConfig = GeneratorConfig()):
        super().__init__()
        self.config = config
        widths = [config.base_channels * 2**i for i in range(config.depth)]
        self.mapping = MappingNetwork(config.style_dim, config.mapping_layers)
        self.encoders = nn.ModuleList()
        prev = config.in_channels
        for w in widths:
            self.encoders.append(ConvBlock(prev, w, "group"))
            prev = w
        self.bottleneck = StyledLayer(widths[-1], widths[-1], config.style_dim, config.noise_init)
        self.decoders = nn.ModuleList()
        for w_skip, w_deep in zip(reversed(widths[:-1]), reversed(widths[1:])):
            self.decoders.append(nn.ModuleList([
                StyledLayer(w_deep + w_skip, w_skip, config.style_dim, config.noise_init),
                StyledLayer(w_skip, w_skip, config.style_dim, config.noise_init),
            ]))
        self.to_image = ModulatedConv2d(widths[0], 1, config.style_dim, kernel=1, demodulate=False)
        self.out_bias = nn.Parameter(torch.zeros(1))

    @torch.no_grad()
    def invert_output_(self) -> "StyleUNet":
        """Negate the output in place: the same inputs then give the photographic negative.

        The last layer is linear before the odd ``tanh``, so negating its weight and bias
        turns every image into ``-image`` ([-1, 1] range). A bright-field TEM generator
        starts so from an SEM one: dark particles on a bright background, same shapes.
        """
        self.to_image.weight.neg_()
        self.out_bias.neg_()
        return self

    @property
    def n_noise(self) -> int:
        """Number of noise maps one forward pass uses (one per styled layer)."""
        return 1 + 2 * len(self.decoders)

    def sample_latents(self, n: int, *, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        return torch.randn(n, self.config.style_dim, generator=generator, device=device or "cpu")

    def sample_noise(self, n: int, size: tuple[int, int], *, generator: torch.Generator | None = None, device=None):
        return [torch.randn(n, 1, *size, generator=generator, device=device or "cpu") for _ in range(self.n_noise)]

    def forward(self, mask: torch.Tensor, z: torch.Tensor | None = None, noise: list | None = None, *,
                w: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        m = self.config.multiple
        n, c, h, wd = mask.shape
        if c != self.config.in_channels or h % m or wd % m:
            raise ValueError(f"expected mask [N, {self.config.in_channels}, H, W] with H, W multiples of {m}, got {tuple(mask.shape)}")
        if w is None:
            if z is None:
                z = self.sample_latents(n, generator=generator).to(mask.device)
            w = self.mapping(z)
        if noise is None:
            noise = [t.to(mask.device) for t in self.sample_noise(n, (h, wd), generator=generator)]
        if len(noise) != self.n_noise:
            raise ValueError(f"expected {self.n_noise} noise maps, got {len(noise)}")
        skips = []
        x = mask
        for i, enc in enumerate(self.encoders):
            x = enc(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        k = 0
        x = self.bottleneck(x, w, resize_noise(noise[k], x.shape[-2:]))
        k += 1
        tiled = n == 1 and use_tiles(x)
        for i, (first, second) in enumerate(self.decoders):
            skip = skips.pop()
            layer_noise = [resize_noise(t, skip.shape[-2:]) for t in noise[k: k + 2]]
            k += 2
            if tiled:
                x = self._decoder_tiled(first, second, x, skip, w, layer_noise, last=i == len(self.decoders) - 1)
                continue
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            if n == 1 and not torch.is_grad_enabled():
                x = first.forward_parts([x, skip], w, layer_noise[0])
            else:
                x = first(torch.cat([x, skip], dim=1), w, layer_noise[0])
            x = second(x, w, layer_noise[1])
        return x if tiled else torch.tanh(self.to_image(x, w) + self.out_bias)

    def _decoder_tiled(self, first, second, x, skip, w, noise, *, last: bool):
        """One decoder level of one image (upsampling, two styled layers; the output layer too if ``last``),
        tile by tile (``models.tiling``): :meth:`forward`'s result, computed in cache and without the
        level's upsampled features in memory (1024 x 768: about 0.1 s less; 4096 x 4096: 0.7 GB less than
        tiling the last level alone)."""
        fmt = memory_format_of(x)
        k = x.shape[1]
        w1 = first.conv.modulated_weight(w)[0]
        w1_up, w1_skip = (t.contiguous(memory_format=fmt) for t in (w1[:, :k], w1[:, k:]))
        w2 = second.conv.modulated_weight(w)[0].contiguous(memory_format=fmt)
        w_out = self.to_image.modulated_weight(w)[0].contiguous(memory_format=fmt) if last else None

        def stage(low, full, valid):
            skip_t, n1, n2 = full
            up = F.interpolate(low[0], scale_factor=2.0, mode="bilinear", align_corners=False).mul_(valid)
            h = F.conv2d(up, w1_up, first.bias.view(-1), padding=1).add_(F.conv2d(skip_t, w1_skip, None, padding=1))
            h = F.leaky_relu_(h.addcmul_(first.noise_strength, n1), 0.2).mul_(valid)
            h = F.leaky_relu_(F.conv2d(h, w2, second.bias.view(-1), padding=1).addcmul_(second.noise_strength, n2), 0.2)
            return torch.tanh(F.conv2d(h, w_out, self.out_bias)) if last else h

        return tiled_stage(stage, [x], [skip, *noise], out_channels=1 if last else w2.shape[0], memory_format=fmt)


class StyleEncoder(nn.Module):
    """Image [N, 1, H, W] -> style vector ``w`` [N, style_dim]: global texture and contrast.

    Lets the image -> mask -> image cycle (and paired reconstruction) give the
    generator the style of the image it has to reproduce; random styles come from
    the mapping network instead.
    """

    def __init__(self, style_dim: int = 64, base_channels: int = 16, levels: int = 4):
        super().__init__()
        mods, prev = [], 1
        for i in range(levels):
            out = base_channels * 2 ** min(i, 2)
            mods += [nn.Conv2d(prev, out, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            prev = out
        self.features = nn.Sequential(*mods)
        self.head = nn.Linear(2 * prev, style_dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        f = self.features(image)
        stats = torch.cat([f.mean(dim=(2, 3)), f.std(dim=(2, 3))], dim=1)
        return self.head(stats)
