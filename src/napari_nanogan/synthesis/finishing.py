"""Finishing a generator's image: a mild blur, grey-level calibration, particle-to-particle contrast and
detector noise, then textures.

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


def apply_finishing(image: np.ndarray, finishing: Finishing, seed: int,
                    labels: np.ndarray | None = None) -> np.ndarray:
    """The finished uint8 image (the same ``seed``, the same noise).

    In order: blur, grey-level calibration (``gain * image + offset``), each particle's
    contrast scaled by its own factor (``particle_spread``; only with the instance
    ``labels`` of the mask drawn), then white noise up to ``noise_residual``.
    """
    spread = finishing.particle_spread if labels is not None else 0.0
    if spread > 0:
        labels = as_instances(labels)
    if finishing.blur_sigma > 0 or (finishing.gain, finishing.offset) != (1.0, 0.0) or spread > 0:
        from scipy import ndimage as ndi

        out = image.astype(np.float32)
        if finishing.blur_sigma > 0:
            out = ndi.gaussian_filter(out, finishing.blur_sigma)
        out = finishing.gain * out + finishing.offset
        if spread > 0:
            out = vary_particle_contrast(out, labels, spread, seed)
        image = np.clip(np.round(out), 0, 255).astype(np.uint8)
    if finishing.noise_residual > 0:
        image = add_sem_noise(image, finishing.noise_residual, seed)
    return image


def finish(image: np.ndarray, labels: np.ndarray, generator: "Generator", seed: int) -> np.ndarray:
    """What :func:`~napari_nanogan.synthesis.synthesize` does after the network: the generator's
    finishing on the uint8 ``image``, then its learned substrate texture and particle texture
    (if it has them) over the particles. ``labels``: the mask drawn, instance labels (a
    binary mask, boolean or 0/1, counts each 4-connected particle as one; see :func:`as_instances`)."""
    labels = as_instances(labels)
    foreground = labels > 0
    image = apply_finishing(image, generator.finishing, seed, labels)
    if generator.texture is not None:
        image = generator.texture.apply(image, foreground, seed)
    if generator.particle_texture is not None:
        image = generator.particle_texture.apply(image, foreground, seed + 7919)  # its own draws, not the substrate's
    return image


def as_instances(labels: np.ndarray) -> np.ndarray:
    """Integer instance labels as given; a boolean or 0/1 mask split into its 4-connected particles;
    labels larger than the pixel count renumbered (as :func:`~napari_nanogan.io.masks.instance_labels`)."""
    labels = np.asarray(labels)
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.max() <= 1) \
            or (labels.size and labels.max() > labels.size):
        from ..io.masks import instance_labels

        return instance_labels(labels)
    return labels


#: How far (px) past its outline a particle's contrast factor reaches (its bright rim, the line to a
#: touching neighbour), and the blur (px) of the factor map, so that its steps look imaged.
_CONTRAST_REACH, _CONTRAST_BLUR = 2, 1.0


def vary_particle_contrast(image: np.ndarray, labels: np.ndarray, spread: float, seed: int) -> np.ndarray:
    """``image`` (float) with each particle's contrast to the background scaled by its own factor.

    In a real SEM image, particles of one field differ in brightness (their tilt, height and
    shadowing change the secondary-electron yield): on the BAM training fields the log of
    a particle's contrast has an SD of 0.44 about the field's median; the network's raw
    output of the same masks 0.19, the shipped generator's finished images before this
    0.09. Each particle here gets a log-normal factor of mean 1 and log-SD ``spread`` (cut at 2 SD), applied to ``image - background`` over the particle and
    ``_CONTRAST_REACH`` px around it (a pixel between two particles takes the higher label);
    the background level is the median of the rest. The same ``seed``, the same factors.
    """
    from scipy import ndimage as ndi

    n = int(labels.max())
    if n == 0 or spread <= 0:
        return image
    r = _CONTRAST_REACH  # a grey dilation: several times faster than a nearest-label expansion
    disc = np.hypot(*np.mgrid[-r:r + 1, -r:r + 1]) <= r
    reach = np.where(labels > 0, labels, ndi.grey_dilation(labels, footprint=disc))
    outside = reach[::2, ::2] == 0  # every other pixel: the median of a few hundred thousand is enough
    background = float(np.median(image[::2, ::2][outside])) if outside.any() else float(np.percentile(image, 5))
    z = np.clip(np.random.default_rng(seed + 104_729).standard_normal(n), -2.0, 2.0)
    factors = np.concatenate([[1.0], np.exp(spread * z - spread**2 / 2)]).astype(np.float32)
    field = ndi.gaussian_filter(factors[reach], _CONTRAST_BLUR)
    return background + (image - background) * field


def particle_contrast_spread(images, labels) -> float:
    """The SD of log particle contrast about each image's median (pooled RMS over images).

    A particle's contrast is its mean grey level 2 px inside its outline (particles with
    at least 50 such pixels) minus the image's background median (pixels over 3 px from
    any particle). Images with fewer than 3 such particles are skipped; 0 if none is left.
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import expand_labels

    variances = []
    for image, lab in zip(images, labels):
        image, lab = np.asarray(image, np.float64), np.asarray(lab)
        n = int(lab.max())
        if n < 3:
            continue
        outside = expand_labels(lab, 3) == 0
        if not outside.any():
            continue
        inner = np.where(ndi.binary_erosion(lab > 0, iterations=2), lab, 0)
        index = np.arange(1, n + 1)
        keep = ndi.sum_labels(np.ones_like(inner), inner, index) >= 50
        contrast = ndi.mean(image, inner, index[keep]) - np.median(image[outside])
        if keep.sum() < 3 or np.median(contrast) == 0:
            continue
        ratio = contrast / np.median(contrast)
        ratio = ratio[ratio > 0.05]
        if len(ratio) >= 3:
            variances.append(float(np.var(np.log(ratio))))
    return float(np.sqrt(np.mean(variances))) if variances else 0.0


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
