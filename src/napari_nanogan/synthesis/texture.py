"""Learned textures laid over synthetic images: the substrate's, and the particles' fine detail.

The Style U-Net draws particles well and the substrate flat: the real BAM substrate
carries faint rings and squiggles 5-20 px across and detector noise, and real particles
carry fine surface detail. A :class:`LearnedTexture` holds a trained
:class:`~napari_nanogan.models.texture.TextureNet` and replaces a region's *band-pass*
content (finer than ``sigma`` px, :func:`band_pass_np`) with the learned one, keeping the
synthetic image's own level there:

- ``region="substrate"``: the substrate (the particles dilated by ``margin`` px are left
  alone), blended over ``blend`` px at the edge;
- ``region="particles"``: the particles' fine detail (``sigma`` 2 px), over the particles'
  own pixels, optionally seeing the particle mask and the depth inside it
  (:func:`condition_maps`), with an amplitude that follows each image's particle contrast.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..config import TextureConfig, TextureRegion
from ..models.runtime import inference_copy
from ..models.texture import SCALE, TextureNet


def condition_maps(weight: np.ndarray) -> np.ndarray:
    """[2, H, W] float32: the region's mask and the depth inside it (Euclidean px to its edge / 4, at most 1)."""
    from ..data.targets import capped_distance

    w = np.asarray(weight) > 0
    depth = capped_distance(w, 4) / 4.0 if w.any() else np.zeros(w.shape)
    return np.stack([w, depth]).astype(np.float32)


def region_weight(labels: np.ndarray, config: TextureConfig) -> np.ndarray:
    """float32 1 where ``config``'s texture goes: the substrate (:func:`substrate_weight`) or the particles."""
    if config.region == TextureRegion.SUBSTRATE:
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
                real.append(band_pass_np(np.asarray(image, np.float32), w, self.config.sigma)[w > 0])
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

    def use_precision(self, precision: str) -> None:
        """Draw in ``precision`` (``"fp32"`` or ``"bf16"``) from now on."""
        if precision != self.precision:
            self.precision, self._sampler = precision, None

    def sampler(self) -> TextureNet:
        """The network that draws the texture: :attr:`network`, or its bf16 copy (made once) if :attr:`precision`
        is bf16; channels-last on the CPU, where oneDNN's convolutions run faster so (0.57 -> 0.37 s, 1024 x 768)."""
        if self._sampler is None:
            if self.network.out.weight.device.type == "cpu":
                self.network.to(memory_format=torch.channels_last)
            self._sampler = inference_copy(self.network, self.precision)
        return self._sampler

    def residual(self, weight: np.ndarray, seed: int) -> np.ndarray:
        """The learned band-pass texture (grey levels) for a region's weight map, zero off the region."""
        return band_pass_np(self._texture(weight, seed), weight, self.config.sigma)

    def _texture(self, weight: np.ndarray, seed: int) -> np.ndarray:
        """The network's texture in grey levels (gain included), before the band-pass; computed where ``weight > 0``."""
        net = self.sampler()
        cond = torch.from_numpy(condition_maps(weight))[None] if self.config.cond_channels else None
        with torch.inference_mode():
            tex = net.sample(1, *weight.shape, torch.Generator().manual_seed(int(seed)), cond,
                             need=weight > 0)[0, 0].float().cpu().numpy()
        return tex * np.float32(SCALE * self.gain)

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
        norm = np.maximum(gauss_zero(w, self.config.sigma), 1e-3)
        amplitude = self.amplitude(image, np.asarray(labels) > 0)
        if amplitude > 0:
            # the region's low-pass level plus the texture's band-pass, lowpass(x) + t - lowpass(t), in one
            # filter: the region-weighted low-pass is linear, and only the region's pixels are kept below
            t = amplitude * self._texture(w, seed)
            filled = gauss_zero((x - t) * w, self.config.sigma) / norm + t
        else:
            filled = gauss_zero(x * w, self.config.sigma) / norm
        # 0 at the region's edge, 1 a couple of pixels into it (blend 1.5, the substrate's); or a hard edge
        blend = self.config.blend
        soft = np.clip(ndi.gaussian_filter(w, blend) * 2 - 1, 0, 1) * w if blend > 0 else w
        out = soft * filled + (1 - soft) * x
        return np.clip(np.round(out), 0, 255).astype(np.uint8)

    #: ``"fp32"`` or ``"bf16"``: what the texture is drawn in (a :class:`~napari_nanogan.synthesis.Generator` sets its own).
    precision: str = "fp32"
    _sampler: TextureNet | None = None


def gauss_zero(x: np.ndarray, sigma: float) -> np.ndarray:
    """NumPy twin of :func:`~napari_nanogan.models.texture.blur_zero` with ``gaussian_kernel(sigma)``: a Gaussian with zero padding.

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


def band_pass_np(x: np.ndarray, w: np.ndarray, sigma: float) -> np.ndarray:
    """NumPy twin of :func:`~napari_nanogan.models.texture.band_pass` for one image (scipy's separable filter: 0.05 s per pass at 1024 x 768,
    against 0.15 s for torch's 97-tap convolution)."""
    return (x - gauss_zero(x * w, sigma) / np.maximum(gauss_zero(w, sigma), 1e-3)) * w
