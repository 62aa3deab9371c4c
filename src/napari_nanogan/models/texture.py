"""A learned substrate texture laid over a synthetic image's substrate.

The Style U-Net draws particles well and the substrate flat: the real BAM substrate
carries faint rings and squiggles 5-20 px across (particles under the surface, relief)
and detector noise, and that missing texture costs most of the generator's FID
(docs/benchmarks.md, "Synthesis"). :class:`TextureNet` is a small fully convolutional
texture generator (spatial noise at 1/8 resolution, three x2 upsamplings, noise injected
at each; Jetchev et al. 2016, "Texture synthesis with spatial generative adversarial
networks"), trained adversarially on real substrate alone (``training.texture``).

What it makes is a *band-pass residual*: ``x - lowpass_w(x)``, where ``lowpass_w`` is a
Gaussian of ``sigma`` px normalised over the substrate weight ``w`` (1 on the substrate, 0
on the particles dilated by ``margin`` px), so particles never leak into the substrate's
level. :meth:`SubstrateTexture.apply` keeps the synthetic image's own substrate level
(its ``lowpass_w``) and its particles (and rims within ``margin`` px), and replaces the
substrate's band-pass content with the learned one, blended over 1.5 px at the dilated
mask's edge. The network is trained with a 3-px margin; laying it at 1 px (the shipped
generator, ``nanogan tune-generator --texture-margin 1``) measured better on BAM.

The same machinery fills the *particles* (``TextureConfig.region = "particles"``): their
fine detail (surface texture, noise, the thin bright lines along outlines) finer than a
small ``sigma`` (2 px), over the particles' own pixels, with the particles' level and
shading kept from the generator. Real particles' fine detail laid over the synthetic
particles is worth 14.6 FID points on BAM (``bench/synthesis_parts.py``, session 17),
more than any other single part. A particle texture can see where it is
(``cond_channels = 2``: the particle mask and the depth inside it), so what follows the
outlines can follow them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .tiling import memory_format_of, tiled_stage, use_tiles

#: Grey levels per network unit: the residual is a few grey levels.
SCALE = 8.0


@dataclass(frozen=True)
class TextureConfig:
    """Architecture of :class:`TextureNet` and the band it fills.

    Attributes
    ----------
    z_channels : int
        Channels of the spatial noise at 1/8 resolution (the large-scale layout).
    widths : tuple of int
        Channels at 1/8, 1/4, 1/2 and full resolution.
    upsample : str
        ``"nearest"`` or ``"bilinear"`` between resolutions.
    sigma : float
        High-pass scale (px): what is texture (finer) and what is the substrate's level.
    margin : int
        Particles dilated by this many pixels are excluded from the substrate; for
        ``region="particles"``, the particles eroded by this many pixels are filled.
    region : str
        ``"substrate"`` or ``"particles"``: where the texture goes.
    blend : float
        Width (px) of the blend into the image at the region's edge (0: a hard edge).
    cond_channels : int
        0: the texture sees noise only; 2: also the region's mask and the depth inside it
        (:func:`condition_maps`), at each resolution from 1/4 up.
    """

    z_channels: int = 16
    widths: tuple = (64, 48, 32, 24)
    upsample: str = "bilinear"
    sigma: float = 16.0
    margin: int = 3
    region: str = "substrate"
    blend: float = 1.5
    cond_channels: int = 0

    def __post_init__(self):
        if len(self.widths) != 4 or min(self.widths) < 1:
            raise ValueError(f"widths must be 4 positive channel counts, got {self.widths}")
        if self.upsample not in ("nearest", "bilinear"):
            raise ValueError(f"upsample must be 'nearest' or 'bilinear', not {self.upsample!r}")
        if not self.sigma > 0 or self.margin < 0 or self.z_channels < 1:
            raise ValueError("sigma must be > 0, margin >= 0 and z_channels >= 1")
        if self.region not in ("substrate", "particles"):
            raise ValueError(f"region must be 'substrate' or 'particles', not {self.region!r}")
        if not self.blend >= 0 or self.cond_channels not in (0, 2):
            raise ValueError(f"blend must be >= 0 and cond_channels 0 or 2, got {self.blend} and {self.cond_channels}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "TextureConfig":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "widths" in known:
            known["widths"] = tuple(int(v) for v in known["widths"])
        return cls(**known)


class TextureNet(nn.Module):
    """Spatial noise [N, z, H/8, W/8] (+ noise maps at 1/4, 1/2, 1) -> texture [N, 1, H, W] in SCALE grey levels.

    With ``config.cond_channels`` > 0, condition maps [N, c, H, W] (:func:`condition_maps`) are
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
        dev = self.out.weight.device
        z = torch.randn(n, self.config.z_channels, zh, zw, generator=generator).to(dev)
        noise = [torch.randn(n, 1, zh * 2**k, zw * 2**k, generator=generator).to(dev) for k in (1, 2, 3)]
        if cond is not None:  # padded to the noise's multiple of 8 (edge values), cut back below
            cond = F.pad(cond.to(dev), (0, zw * 8 - width, 0, zh * 8 - height), mode="replicate")
        if need is not None:
            need = np.pad(np.asarray(need, bool), ((0, zh * 8 - height), (0, zw * 8 - width)))
        return self(z, noise, cond, need=need)[..., :height, :width]


def gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, int(round(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def _blur_zero(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Separable blur of [N, 1, H, W] with zero padding (for normalised convolution)."""
    r = (len(k) - 1) // 2
    k = k.to(x.device, x.dtype)
    x = F.conv2d(x, k.view(1, 1, 1, -1), padding=(0, r))
    return F.conv2d(x, k.view(1, 1, -1, 1), padding=(r, 0))


def lowpass_w(x: torch.Tensor, w: torch.Tensor, sigma: float) -> torch.Tensor:
    """Normalised Gaussian of ``x`` [N, 1, H, W] over the weight ``w``: the substrate's local level, particles ignored."""
    k = gaussian_kernel(sigma)
    return _blur_zero(x * w, k) / _blur_zero(w, k).clamp_min(1e-3)


def band_pass(x: torch.Tensor, w: torch.Tensor, sigma: float) -> torch.Tensor:
    """``(x - lowpass_w(x)) * w``: the substrate's texture finer than ``sigma``, zero off the substrate."""
    return (x - lowpass_w(x, w, sigma)) * w


def condition_maps(weight: np.ndarray) -> np.ndarray:
    """[2, H, W] float32: the region's mask and the depth inside it (Euclidean px to its edge / 4, at most 1)."""
    from ..data.targets import capped_distance

    w = np.asarray(weight) > 0
    depth = capped_distance(w, 4) / 4.0 if w.any() else np.zeros(w.shape)
    return np.stack([w, depth]).astype(np.float32)


def region_weight(labels: np.ndarray, config: TextureConfig) -> np.ndarray:
    """float32 1 where ``config``'s texture goes: the substrate (:func:`substrate_weight`) or the particles."""
    if config.region == "substrate":
        return substrate_weight(labels, config.margin)
    from scipy import ndimage as ndi

    particles = np.asarray(labels) > 0
    if config.margin > 0 and particles.any():
        particles = ndi.binary_erosion(particles, iterations=config.margin)
    return particles.astype(np.float32)


def substrate_weight(labels: np.ndarray, margin: int = 3) -> np.ndarray:
    """float32: 1 on the substrate, 0 on the particles (``labels > 0``) dilated by ``margin`` px."""
    from scipy import ndimage as ndi

    particles = np.asarray(labels) > 0
    if margin > 0 and particles.any():
        particles = ndi.binary_dilation(particles, iterations=margin)
    return (~particles).astype(np.float32)


class LearnedTexture:
    """A trained :class:`TextureNet` and how to lay its texture over a synthetic image's substrate or particles."""

    def __init__(self, network: TextureNet, gain: float = 1.0, contrast: float | None = None):
        self.network = network.eval()
        #: Amplitude of the texture (:func:`fit_gain`: the real residual's spread over the texture's).
        self.gain = float(gain)
        #: Particle textures: the real images' particle-minus-substrate median grey level (:func:`fit_gain`).
        #: A synthetic image with less contrast gets proportionally less texture, so faint particles
        #: are not buried under detail learned from bright ones (None: always the full amplitude).
        self.contrast = None if contrast is None else float(contrast)

    @property
    def config(self) -> TextureConfig:
        return self.network.config

    def to_dict(self) -> dict:
        """Plain data for a checkpoint (loads with ``weights_only=True``)."""
        return {"config": self.config.to_dict(), "gain": self.gain, "contrast": self.contrast,
                "state_dict": {k: v.detach().cpu() for k, v in self.network.state_dict().items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "LearnedTexture":
        net = TextureNet(TextureConfig.from_dict(data["config"]))
        net.load_state_dict(data["state_dict"])
        return cls(net, float(data.get("gain", 1.0)), data.get("contrast"))

    def amplitude(self, image: np.ndarray, foreground: np.ndarray) -> float:
        """The share of the texture's amplitude an image gets: 1, or for a particle texture with a reference
        :attr:`contrast`, the image's particle-minus-substrate median over it, within [0, 1]."""
        if (self.contrast is None or abs(self.contrast) < 1e-3 or self.config.region != "particles"
                or not 0 < foreground.mean() < 1):
            return 1.0
        own = float(np.median(image[foreground])) - float(np.median(image[~foreground]))
        # signed: dark particles (bright-field TEM) have a negative reference, and an image's own contrast
        # of the other sign gets none
        return float(np.clip(own / self.contrast, 0.0, 1.0))

    def fit_gain(self, images, labels, seed: int = 0) -> float:
        """Set :attr:`gain` so that the texture's standard deviation over its region equals the real
        images' band-pass residual's (pooled over ``images`` and their ``labels``); returns it."""
        real, fake, previous = [], [], self.gain
        self.gain = 1.0
        for k, (image, lab) in enumerate(zip(images, labels)):
            w = region_weight(lab, self.config)
            if w.any():
                real.append(_band_pass_np(np.asarray(image, np.float32), w, self.config.sigma)[w > 0])
                fake.append(self.residual(w, seed + k)[w > 0])
        if not real:
            self.gain = previous
            raise ValueError(f"no {self.config.region} in the images: nothing to fit the texture's gain on")
        if self.config.region == "particles":
            contrasts = [np.median(np.asarray(im)[np.asarray(lab) > 0]) - np.median(np.asarray(im)[np.asarray(lab) == 0])
                         for im, lab in zip(images, labels) if 0 < np.mean(np.asarray(lab) > 0) < 1]
            self.contrast = float(np.median(contrasts)) if contrasts else None  # (all particle: no reference)
        self.gain = float(np.concatenate(real).std() / max(np.concatenate(fake).std(), 1e-6))
        return self.gain

    def residual(self, weight: np.ndarray, seed: int, *, blurred_weight: np.ndarray | None = None) -> np.ndarray:
        """The learned band-pass texture (grey levels) for a region's weight map, zero off the region.

        ``blurred_weight``: the weight's zero-padded Gaussian, when the caller has it already.
        """
        net = self.network
        if self._channels_last is None:  # oneDNN's convolutions are faster so on the CPU (0.57 -> 0.37 s, 1024 x 768)
            self._channels_last = net.out.weight.device.type == "cpu"
            if self._channels_last:
                net.to(memory_format=torch.channels_last)
        cond = torch.from_numpy(condition_maps(weight))[None] if self.config.cond_channels else None
        with torch.inference_mode():
            tex = net.sample(1, *weight.shape, torch.Generator().manual_seed(int(seed)), cond,
                             need=weight > 0)[0, 0].float().cpu().numpy()
        return _band_pass_np(tex, weight, self.config.sigma, blurred_weight) * (SCALE * self.gain)

    def apply(self, image: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
        """``image`` (uint8, the labels' shape) with its region's band-pass content replaced by the texture.

        Substrate texture: pixels on the particles and within ``margin`` px of them are unchanged.
        Particle texture: pixels off the particles (eroded by ``margin`` px) are unchanged.
        """
        from scipy import ndimage as ndi

        image = np.asarray(image)
        if image.shape != np.shape(labels):
            raise ValueError(f"image {image.shape} and mask {np.shape(labels)} differ in shape")
        w = region_weight(labels, self.config)
        if not w.any():
            return image
        x = image.astype(np.float32)
        norm = _gauss_zero(w, self.config.sigma)
        amplitude = self.amplitude(image, np.asarray(labels) > 0)
        residual = self.residual(w, seed, blurred_weight=norm) if amplitude > 0 else 0.0
        filled = _gauss_zero(x * w, self.config.sigma) / np.maximum(norm, 1e-3) + amplitude * residual
        # 0 at the region's edge, 1 a couple of pixels into it (blend 1.5, the substrate's); or a hard edge
        blend = self.config.blend
        soft = np.clip(ndi.gaussian_filter(w, blend) * 2 - 1, 0, 1) * w if blend > 0 else w
        out = soft * filled + (1 - soft) * x
        return np.clip(np.round(out), 0, 255).astype(np.uint8)

    _channels_last: bool | None = None


#: The name from before particle textures (session 15).
SubstrateTexture = LearnedTexture


def _gauss_zero(x: np.ndarray, sigma: float) -> np.ndarray:
    """NumPy twin of ``_blur_zero`` with ``gaussian_kernel(sigma)``: a Gaussian with zero padding.

    Below 8 px it is the same filter (scipy, radius round(3 sigma)). From 8 px on, the result is
    so smooth that it is computed on a grid 4 times coarser: 4 x 4 block means (a box of
    variance 1.25 px^2 per axis), a Gaussian of the remaining variance there, and bilinear
    interpolation back: 0.01 s instead of 0.07 s per call at 1024 x 768 for sigma 16. On white
    noise over 0-255, the worst case, it differs from the full filter by at most 0.4 grey levels
    at 1024 x 768 and 0.7 on images narrower than the filter (tested); a synthesis changes by at
    most 1 grey level, on 0.7 % of its pixels.
    """
    from scipy import ndimage as ndi

    x = np.asarray(x, np.float32)
    if sigma < 8:
        radius = max(1, int(round(3 * sigma)))
        return ndi.gaussian_filter(x, sigma, mode="constant", cval=0.0, radius=radius)
    f = 4
    h, w = x.shape
    # zero padding, one coarse cell beyond each edge too, so the interpolation there sees the true falloff
    padded = np.zeros((-(-h // f) * f + 2 * f, -(-w // f) * f + 2 * f), np.float32)
    padded[f: f + h, f: f + w] = x
    small = padded.reshape(padded.shape[0] // f, f, padded.shape[1] // f, f).mean(axis=(1, 3))
    s = np.sqrt(sigma**2 - (f * f - 1) / 12) / f
    small = ndi.gaussian_filter(small, s, mode="constant", cval=0.0, radius=max(1, int(round(3 * s))))
    up = F.interpolate(torch.from_numpy(small)[None, None], scale_factor=f, mode="bilinear", align_corners=False)
    return up[0, 0, f: f + h, f: f + w].numpy()


def _band_pass_np(x: np.ndarray, w: np.ndarray, sigma: float, blurred_weight=None) -> np.ndarray:
    """NumPy twin of :func:`band_pass` for one image (scipy's separable filter: 0.05 s per pass at 1024 x 768,
    against 0.15 s for torch's 97-tap convolution)."""
    norm = _gauss_zero(w, sigma) if blurred_weight is None else blurred_weight
    return (x - _gauss_zero(x * w, sigma) / np.maximum(norm, 1e-3)) * w
