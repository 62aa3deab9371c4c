"""Synthesis of SEM images from particle masks with the Style U-Net generator."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch

from .config import GeneratorConfig
from .data.datasets import instance_labels
from .data.targets import targets_from_labels
from .inference import default_device
from .models.checkpoint import load_checkpoint
from .models.style_unet import StyleUNet

MAX_SIDE = 8192
MIN_SIDE = 8


@dataclass(frozen=True)
class SynthesisPostprocess:
    """What :func:`synthesize` does to the generator's output: a mild blur, grey-level calibration, SEM noise.

    Attributes
    ----------
    blur_sigma : float
        Gaussian blur (px) of the generator's output; 0 for none.
    noise_residual : float
        Target noise level (grey levels; :func:`noise_level`) of the real images the
        generator learned from; Gaussian noise is added up to it, 0 adds none. The
        generator's images are smoother than real SEM images (residual 1.2 vs 2.2 grey
        levels on BAM) and carry a fine texture of their own. On the BAM protocol
        (docs/benchmarks.md) blur 0.7 px then noise lowered the shipped generator's FID
        from 178 to 126; noise alone gave 159, blur alone 162.
    gain, offset : float
        Grey-level calibration after the blur, ``gain * image + offset``
        (:func:`calibration`, ``nanogan tune-generator --calibrate``): 126 → 123 for the
        shipped generator. Noise shaped to the spectrum the images lack
        (:func:`shaped_noise`) was measured worse than white noise (157) and is not
        part of the post-processing.
    """

    blur_sigma: float = 0.0
    noise_residual: float = 0.0
    gain: float = 1.0
    offset: float = 0.0
    noise_table: tuple = ()
    noise_correlation: float = 0.0

    def to_dict(self) -> dict:
        return {"blur_sigma": float(self.blur_sigma), "noise_residual": float(self.noise_residual),
                "gain": float(self.gain), "offset": float(self.offset),
                "noise_table": [[float(a), float(b)] for a, b in self.noise_table],
                "noise_correlation": float(self.noise_correlation)}

    @classmethod
    def from_dict(cls, data: dict) -> "SynthesisPostprocess":
        return cls(blur_sigma=float(data.get("blur_sigma", 0.0)), noise_residual=float(data.get("noise_residual", 0.0)),
                   gain=float(data.get("gain", 1.0)), offset=float(data.get("offset", 0.0)),
                   noise_table=tuple((float(a), float(b)) for a, b in data.get("noise_table", ())),
                   noise_correlation=float(data.get("noise_correlation", 0.0)))

    def apply(self, image: np.ndarray, seed: int) -> np.ndarray:
        """The post-processed uint8 image (the same ``seed``, the same noise).

        In order: blur, grey-level calibration (``gain * image + offset``), then white
        noise up to ``noise_residual``.
        """
        if self.blur_sigma > 0 or (self.gain, self.offset) != (1.0, 0.0):
            from scipy import ndimage as ndi

            out = image.astype(np.float32)
            if self.blur_sigma > 0:
                out = ndi.gaussian_filter(out, self.blur_sigma)
            image = np.clip(np.round(self.gain * out + self.offset), 0, 255).astype(np.uint8)
        if self.noise_table:
            image = add_signal_noise(image, self.noise_table, self.noise_correlation, seed)
        elif self.noise_residual > 0:
            image = add_sem_noise(image, self.noise_residual, seed)
        return image


def noise_level(image: np.ndarray) -> float:
    """Robust standard deviation (grey levels) of the high-frequency residual of an image.

    The residual is the image minus its 1-px Gaussian blur; its median absolute
    deviation times 1.4826 ignores particle edges and follows the pixel noise.
    """
    from scipy import ndimage as ndi

    image = np.asarray(image, np.float32)
    residual = image - ndi.gaussian_filter(image, 1.0)
    return float(1.4826 * np.median(np.abs(residual - np.median(residual))))


#: Residual level of unit white noise (:func:`noise_level` keeps this fraction of its sd).
_RESIDUAL_GAIN = 0.876


def add_sem_noise(image: np.ndarray, target: float, seed: int) -> np.ndarray:
    """``image`` (uint8) with Gaussian noise added until its :func:`noise_level` reaches ``target``.

    Images already at or above the target are returned unchanged.
    """
    extra = np.sqrt(max(target**2 - noise_level(image) ** 2, 0.0)) / _RESIDUAL_GAIN
    if extra == 0:
        return image
    noisy = image.astype(np.float32) + np.random.default_rng(seed).normal(0, extra, image.shape).astype(np.float32)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


#: Grey-level bins (of the 3-px local mean) over which :func:`noise_profile` measures noise.
NOISE_BINS = (0, 20, 40, 60, 90, 130, 180, 256)


def noise_profile(images, bins=NOISE_BINS, *, min_pixels: int = 1000) -> np.ndarray:
    """Noise level per brightness: [len(bins) - 1] median over images of the robust sd of the residual.

    The residual is :func:`noise_level`'s (image minus its 1-px blur); pixels are binned
    by the image's 3-px Gaussian local mean. SEM noise grows with the signal (shot
    noise): on the BAM training images 1.6 grey levels on the substrate (local mean
    under 20) and 8-9 on the particles. Bins with under ``min_pixels`` pixels in every
    image are NaN.
    """
    from scipy import ndimage as ndi

    per_bin = [[] for _ in range(len(bins) - 1)]
    for image in images:
        image = np.asarray(image, np.float32)
        residual = image - ndi.gaussian_filter(image, 1.0)
        index = np.digitize(ndi.gaussian_filter(image, 3.0), bins) - 1
        for k, values in enumerate(per_bin):
            r = residual[index == k]
            if r.size >= min_pixels:
                values.append(1.4826 * np.median(np.abs(r - np.median(r))))
    return np.array([np.median(v) if v else np.nan for v in per_bin])


def signal_noise_table(real_images, synthetic_images, bins=NOISE_BINS) -> tuple:
    """``((grey level, noise sd), ...)``: the noise :func:`add_signal_noise` adds, fitted on pairs.

    Per brightness bin (:func:`noise_profile`), the residual the synthetic images lack,
    ``sqrt(max(real^2 - synthetic^2, 0))``, at the bin's centre. Bins missing on either
    side are left out.
    """
    real, synth = noise_profile(real_images, bins), noise_profile(synthetic_images, bins)
    centres = (np.asarray(bins[:-1], float) + np.asarray(bins[1:], float)) / 2
    ok = np.isfinite(real) & np.isfinite(synth)
    if not ok.any():
        raise ValueError("no brightness range has enough pixels in both the real and the synthetic images")
    extra = np.sqrt(np.maximum(real[ok] ** 2 - synth[ok] ** 2, 0.0))
    return tuple((float(c), float(e)) for c, e in zip(centres[ok], extra))


def add_signal_noise(image: np.ndarray, table, correlation: float, seed: int) -> np.ndarray:
    """``image`` (uint8) plus signal-dependent Gaussian noise (:func:`signal_noise_table`).

    The noise field is white noise blurred by ``correlation`` px (the detector's
    bandwidth; 0 keeps it white), scaled so its :func:`noise_level` is 1, then
    multiplied per pixel by the table's sd at the image's 3-px local mean
    (linear interpolation, constant beyond the ends).
    """
    from scipy import ndimage as ndi

    levels, sds = np.asarray(table, np.float32).T
    field = np.random.default_rng(seed).normal(0.0, 1.0, image.shape).astype(np.float32)
    if correlation > 0:
        field = ndi.gaussian_filter(field, correlation)
    field /= max(noise_level(field), 1e-6)
    local = ndi.gaussian_filter(image.astype(np.float32), 3.0)
    noisy = image.astype(np.float32) + field * np.interp(local, levels, sds).astype(np.float32)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


#: Side of the crops :func:`radial_psd` averages; its profiles are sampled at k / PSD_CROP cycles per pixel.
PSD_CROP = 128


def radial_psd(images, *, n_crops: int = 256, seed: int = 0) -> np.ndarray:
    """Radially averaged power spectral density of grey images (grey levels² per unit frequency area).

    Averages the periodograms of ``n_crops`` Hann-windowed ``PSD_CROP``-px crops drawn
    at seeded random positions (images smaller than a crop are skipped), each minus its
    mean. Entry ``k`` is the density at ``k / PSD_CROP`` cycles per pixel, up to the
    corner frequency; white noise of variance v gives v everywhere.
    """
    images = [np.asarray(im, np.float32) for im in images if min(np.shape(im)) >= PSD_CROP]
    if not images:
        raise ValueError(f"radial_psd needs images of at least {PSD_CROP} x {PSD_CROP} px")
    s = PSD_CROP
    window = np.outer(np.hanning(s), np.hanning(s)).astype(np.float32)
    rng = np.random.default_rng(seed)
    acc = np.zeros((s, s))
    for k in range(n_crops):
        im = images[k % len(images)]
        y, x = rng.integers(0, im.shape[0] - s + 1), rng.integers(0, im.shape[1] - s + 1)
        crop = im[y : y + s, x : x + s]
        acc += np.abs(np.fft.fft2((crop - crop.mean()) * window)) ** 2
    density = np.fft.fftshift(acc / n_crops / (window**2).sum())
    yy, xx = np.mgrid[-s // 2 : s // 2, -s // 2 : s // 2]
    r = np.round(np.hypot(yy, xx)).astype(int).ravel()
    return np.bincount(r, density.ravel()) / np.maximum(np.bincount(r), 1)


def shaped_noise(shape: tuple, psd: np.ndarray | tuple, seed: int) -> np.ndarray:
    """Gaussian noise (float32) of the given radial power spectral density (see :func:`radial_psd`).

    White noise filtered in the Fourier domain by the square root of ``psd``,
    interpolated at each frequency's radius, so the noise's periodogram follows
    ``psd`` at any image size.
    """
    psd = np.asarray(psd, np.float64)
    h, w = shape
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    radius = np.hypot(fy, fx) * PSD_CROP
    amplitude = np.sqrt(np.interp(radius, np.arange(len(psd)), np.maximum(psd, 0), right=0.0))
    white = np.random.default_rng(seed).standard_normal((h, w))
    return np.fft.irfft2(np.fft.rfft2(white) * amplitude, s=(h, w)).astype(np.float32)


def calibration(real_images, synthetic_images) -> tuple[float, float]:
    """Grey-level gain and offset for synthetic images, from matched sets.

    ``real_images`` and ``synthetic_images`` show the same masks (synthetic ones as the
    generator makes them, after any blur). Returns ``(gain, offset)`` such that
    ``gain * synthetic + offset`` has the real images' pooled mean and standard deviation.
    """
    real = np.concatenate([np.asarray(im, np.float64).ravel() for im in real_images])
    synth = np.concatenate([np.asarray(im, np.float64).ravel() for im in synthetic_images])
    gain = float(real.std() / max(synth.std(), 1e-6))
    return gain, float(real.mean() - gain * synth.mean())


def missing_spectrum(real_images, synthetic_images) -> np.ndarray:
    """The power synthetic images lack at each spatial frequency (:func:`radial_psd`, real
    minus synthetic, floored at 0): the texture and detector noise the generator does not
    make. A diagnostic (``bench/synthesis_quality.py --post spectral``); noise of this
    spectrum did not make the images more realistic, so synthesis does not add it.
    """
    return np.maximum(radial_psd(real_images) - radial_psd(synthetic_images), 0.0)


@dataclass
class Generator:
    """A trained mask -> image generator ready for sampling."""

    network: StyleUNet
    name: str = "unnamed"
    card: dict = field(default_factory=dict)
    postprocess: SynthesisPostprocess = field(default_factory=SynthesisPostprocess)

    @property
    def config(self) -> GeneratorConfig:
        return self.network.config

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    @classmethod
    def from_checkpoint(cls, path, *, device=None, name: str | None = None) -> "Generator":
        data = load_checkpoint(path, kind="generator")
        net = StyleUNet(GeneratorConfig.from_dict(data["config"]))
        net.load_state_dict(data["state_dict"])
        generator = cls.from_network(net, name=name or os.path.basename(str(path)), card=data.get("provenance", {}),
                                     device=device)
        generator.postprocess = SynthesisPostprocess.from_dict(data.get("postprocess", {}))
        return generator

    @classmethod
    def from_network(cls, network: StyleUNet, *, name="unnamed", card=None, device=None) -> "Generator":
        device = torch.device(device) if device is not None else default_device()
        return cls(network.to(device).eval(), name, card or {})


def mask_maps(mask: np.ndarray) -> np.ndarray:
    """Validate a binary or instance-label mask and return the generator's input maps [2, M, N].

    Raises
    ------
    ValueError
        For non-2D masks, masks with negative or non-integer labels, and sizes out of range.
    """
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] in (3, 4):
        mask = (mask[..., :3] > 0).any(-1)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be 2D (binary or instance labels), got shape {mask.shape}")
    if min(mask.shape) < MIN_SIDE or max(mask.shape) > MAX_SIDE:
        raise ValueError(f"mask of shape {mask.shape}: each side must be within {MIN_SIDE}..{MAX_SIDE} pixels")
    if mask.dtype == bool:
        mask = mask.astype(np.uint8)
    if np.issubdtype(mask.dtype, np.floating):
        if not np.isfinite(mask).all() or not np.array_equal(mask, np.round(mask)):
            raise ValueError("a float mask must hold whole numbers (0 = background, labels or 1 = particle)")
        mask = mask.astype(np.int64)
    if not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(f"unsupported mask type {mask.dtype}")
    if mask.min() < 0:
        raise ValueError("mask labels must be >= 0")
    return targets_from_labels(instance_labels(mask))


def synthesize(mask: np.ndarray, generator: Generator, *, seed: int = 0, postprocess: bool = True) -> np.ndarray:
    """One grey uint8 image of exactly the mask's height and width.

    The same (mask, seed, generator) gives the same image; different seeds give
    different styles (latent) and textures (noise maps). Empty and all-foreground
    masks are valid (a bare substrate, a field of particles). ``postprocess=False``
    returns the network's output without ``generator.postprocess`` (blur, SEM noise).
    """
    maps = mask_maps(mask)
    h, w = maps.shape[1:]
    m = generator.config.multiple
    ph, pw = -(-h // m) * m - h, -(-w // m) * m - w
    padded = np.pad(maps, ((0, 0), (0, ph), (0, pw)), mode="reflect" if min(h, w) > max(ph, pw) else "edge")
    rng = torch.Generator().manual_seed(int(seed))
    net = generator.network
    x = torch.from_numpy(padded)[None].to(generator.device)
    z = net.sample_latents(1, generator=rng).to(generator.device)
    noise = [t.to(generator.device) for t in net.sample_noise(1, tuple(padded.shape[1:]), generator=rng)]
    with torch.inference_mode():
        out = net(x, z, noise)[0, 0, :h, :w].float().cpu().numpy()
    image = np.clip(np.round((out + 1) * 127.5), 0, 255).astype(np.uint8)
    return generator.postprocess.apply(image, seed) if postprocess else image
