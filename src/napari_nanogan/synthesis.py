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
from .models.texture import LearnedTexture

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
        step-7000 generator weights. Noise shaped to the spectrum the images lack (FID 157) and
        noise whose level follows the brightness (134) were measured worse than white
        noise and are not part of the post-processing (``bench/texture.py``).
    """

    blur_sigma: float = 0.0
    noise_residual: float = 0.0
    gain: float = 1.0
    offset: float = 0.0

    def to_dict(self) -> dict:
        return {"blur_sigma": float(self.blur_sigma), "noise_residual": float(self.noise_residual),
                "gain": float(self.gain), "offset": float(self.offset)}

    @classmethod
    def from_dict(cls, data: dict) -> "SynthesisPostprocess":
        return cls(blur_sigma=float(data.get("blur_sigma", 0.0)), noise_residual=float(data.get("noise_residual", 0.0)),
                   gain=float(data.get("gain", 1.0)), offset=float(data.get("offset", 0.0)))

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
        if self.noise_residual > 0:
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


@dataclass
class Generator:
    """A trained mask -> image generator ready for sampling."""

    network: StyleUNet
    name: str = "unnamed"
    card: dict = field(default_factory=dict)
    postprocess: SynthesisPostprocess = field(default_factory=SynthesisPostprocess)
    #: A learned substrate texture laid over the post-processed image (``models.texture``), or None.
    texture: LearnedTexture | None = None
    #: A learned fine detail laid over the particles after that (``models.texture``, region "particles"), or None.
    particle_texture: LearnedTexture | None = None

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
        if data.get("substrate_texture"):
            generator.texture = LearnedTexture.from_dict(data["substrate_texture"])
        if data.get("particle_texture"):
            generator.particle_texture = LearnedTexture.from_dict(data["particle_texture"])
        return generator

    @classmethod
    def from_network(cls, network: StyleUNet, *, name="unnamed", card=None, device=None) -> "Generator":
        device = torch.device(device) if device is not None else default_device()
        network = network.to(device).eval()
        if device.type == "cpu":  # as for the segmenter: oneDNN's convolutions are faster so (1.15 -> 1.01 s, 1024 x 768)
            network = network.to(memory_format=torch.channels_last)
        return cls(network, name, card or {})


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
    returns the network's output without ``generator.postprocess`` (blur, SEM noise)
    and without the generator's learned textures (``generator.texture``, ``generator.particle_texture``).
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
    if not postprocess:
        return image
    return finish(image, maps[0] > 0.5, generator, seed)


def finish(image: np.ndarray, foreground: np.ndarray, generator: Generator, seed: int) -> np.ndarray:
    """What :func:`synthesize` does after the network: ``generator.postprocess`` on the uint8 ``image``, then the
    learned substrate texture and particle texture (if the generator has them) over the boolean ``foreground``."""
    image = generator.postprocess.apply(image, seed)
    if generator.texture is not None:
        image = generator.texture.apply(image, foreground, seed)
    if generator.particle_texture is not None:
        image = generator.particle_texture.apply(image, foreground, seed + 7919)  # its own draws, not the substrate's
    return image
