"""Finishing a generator's image: a mild blur, grey-level calibration and detector noise, then textures.

:class:`~napari_nanogan.config.Finishing` holds the parameters (``nanogan tune-generator``
measures them on real images); :func:`finish` is what
:func:`~napari_nanogan.synthesis.synthesize` does after the network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..config import Finishing

if TYPE_CHECKING:
    from .generator import Generator


def apply_finishing(image: np.ndarray, finishing: Finishing, seed: int) -> np.ndarray:
    """The finished uint8 image (the same ``seed``, the same noise).

    In order: blur, grey-level calibration (``gain * image + offset``), then white
    noise up to ``noise_residual``.
    """
    if finishing.blur_sigma > 0 or (finishing.gain, finishing.offset) != (1.0, 0.0):
        from scipy import ndimage as ndi

        out = image.astype(np.float32)
        if finishing.blur_sigma > 0:
            out = ndi.gaussian_filter(out, finishing.blur_sigma)
        image = np.clip(np.round(finishing.gain * out + finishing.offset), 0, 255).astype(np.uint8)
    if finishing.noise_residual > 0:
        image = add_sem_noise(image, finishing.noise_residual, seed)
    return image


def finish(image: np.ndarray, foreground: np.ndarray, generator: "Generator", seed: int) -> np.ndarray:
    """What :func:`~napari_nanogan.synthesis.synthesize` does after the network: the generator's
    finishing on the uint8 ``image``, then its learned substrate texture and particle texture
    (if it has them) over the boolean ``foreground``."""
    image = apply_finishing(image, generator.finishing, seed)
    if generator.texture is not None:
        image = generator.texture.apply(image, foreground, seed)
    if generator.particle_texture is not None:
        image = generator.particle_texture.apply(image, foreground, seed + 7919)  # its own draws, not the substrate's
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
