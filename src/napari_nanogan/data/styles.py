"""Imaging-style augmentation: the looks that SEM and TEM give one particle field (numpy only).

A training patch's particles keep their outlines; what changes is how the microscope
renders them, so that a segmenter trained on a few instruments meets the others'
looks during training:

- **illumination**: a smooth gain and offset across the field (uneven illumination,
  charging halos, thickness gradients);
- **edge**: a band just inside or just outside every particle's outline made brighter or
  darker (secondary-electron edge brightening; Fresnel fringes of a defocused TEM);
- **shading**: a particle's grey level tilted along one direction, following its
  surface slope (topographic contrast and shadowing of SEM);
- **texture**: band-pass noise over the field, weaker within particles by a random
  factor (a grainy substrate or a polycrystalline matrix, which is not particles).

Each look is drawn independently, each with its own chance, by :func:`restyle`. The
particle mask is an input: the looks follow the particles, as the physics does.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def restyle(img: np.ndarray, foreground: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``img`` (normalised [h, w] float, 0-1 the usual range) with one or more looks drawn on it.

    ``foreground``: [h, w] particle mask (> 0.5 is particle) of the same patch. Every look
    is applied with chance one half, at least one of them; amplitudes are drawn relative
    to the patch's own particle-background contrast, so faint images stay faint.
    """
    img = img.astype(np.float32, copy=True)
    fg = foreground > 0.5
    contrast = _contrast(img, fg)
    looks = rng.random(4) < 0.5
    if not looks.any():
        looks[int(rng.integers(4))] = True
    if looks[1] and fg.any():
        img += _edge(fg, rng) * contrast * rng.uniform(0.3, 1.0)
    if looks[2] and fg.any():
        img += _shading(fg, rng) * contrast * rng.uniform(0.2, 0.8)
    if looks[3]:
        amplitude = max(abs(contrast), 0.1) * rng.uniform(0.1, 0.4)
        img += _texture(img.shape, rng) * amplitude * np.where(fg, rng.uniform(0.0, 1.0), 1.0).astype(np.float32)
    if looks[0]:
        gain, offset = _smooth_field(img.shape, rng), _smooth_field(img.shape, rng)
        img = img * (1 + 0.4 * gain) + 0.2 * offset
    return img.astype(np.float32)


def _contrast(img: np.ndarray, fg: np.ndarray) -> float:
    """Median particle minus median background grey level (0.3 when either is missing)."""
    if fg.sum() < 16 or (~fg).sum() < 16:
        return 0.3
    c = float(np.median(img[fg]) - np.median(img[~fg]))
    return c if abs(c) > 0.05 else 0.05 * (1 if c >= 0 else -1)


def _edge(fg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A band of 1-4 px along the outlines, inside or outside, of either sign: [-1, 1]-scaled."""
    width = rng.uniform(1.0, 4.0)
    inside = rng.random() < 0.6
    depth = ndi.distance_transform_edt(fg if inside else ~fg)
    band = np.exp(-np.maximum(depth - 1, 0) / width) * ((fg if inside else ~fg))
    sign = 1.0 if rng.random() < 0.75 else -1.0
    return (sign * band).astype(np.float32)


def _shading(fg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each particle lit from one side: the slope of its smoothed mask along a random direction."""
    smooth = ndi.gaussian_filter(fg.astype(np.float32), rng.uniform(2.0, 6.0))
    gy, gx = np.gradient(smooth)
    angle = rng.uniform(0, 2 * np.pi)
    slope = gy * np.sin(angle) + gx * np.cos(angle)
    scale = float(np.abs(slope).max())
    return (slope / scale * fg).astype(np.float32) if scale > 0 else np.zeros_like(smooth)


def _texture(shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """Band-pass Gaussian noise of grains 1-6 px across, unit standard deviation."""
    fine = rng.uniform(0.7, 3.0)
    noise = rng.standard_normal(shape).astype(np.float32)
    band = ndi.gaussian_filter(noise, fine) - ndi.gaussian_filter(noise, fine * rng.uniform(2.0, 4.0))
    sd = float(band.std())
    return band / sd if sd > 0 else band


def _smooth_field(shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """A field in about [-1, 1] that varies over the patch's whole width: a ramp plus coarse noise."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * (xx / max(w - 1, 1) - 0.5) + np.sin(angle) * (yy / max(h - 1, 1) - 0.5)) * 2
    coarse = rng.standard_normal((3, 3)).astype(np.float32)
    blobs = ndi.zoom(coarse, (h / 3, w / 3), order=3, mode="nearest")[:h, :w]
    field = rng.uniform(0, 1) * ramp + rng.uniform(0, 0.5) * blobs
    return np.clip(field, -1.5, 1.5).astype(np.float32)
