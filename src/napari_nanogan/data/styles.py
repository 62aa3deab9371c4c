"""Imaging-style augmentation: the looks that SEM and TEM give one particle field (numpy only).

A training patch's particles keep their outlines; what changes is how the microscope
renders them, so that a segmenter trained on a few instruments meets the others'
looks during training:

- **illumination**: a smooth gain and offset across the field (uneven illumination,
  charging halos, thickness gradients);
- **edge**: a band just inside every particle's outline made brighter or darker
  (secondary-electron edge brightening), or just outside it, of the other sign than the
  particle (a Fresnel fringe of a defocused TEM, a halo);
- **shading**: a particle's grey level tilted across it along one direction
  (topographic contrast and shadowing of SEM);
- **texture**: band-pass noise over the field, within particles at a random 0-1.5 times
  its strength outside (a grainy substrate or matrix, polycrystalline particles).

Each look is drawn independently, each with its own chance, by :func:`restyle`. Apart
from them, :func:`draw_matrix` draws a polycrystalline matrix (grains, boundaries,
lamellae at the particles' scale) on the background, for ``nanogan train --matrix``. The
particle mask is an input: the looks follow the particles, as the physics does. Edges are
those of the mask's connected regions: particles that touch without a gap share one
outline, as the free edges of an agglomerate brighten in SEM and its contacts do not.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..measure import median_diameter


def restyle(img: np.ndarray, foreground: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``img`` (normalised [h, w] float, 0-1 the usual range) with one or more looks drawn on it.

    ``foreground``: [h, w] particle mask (> 0.5 is particle) of the same patch. Every look
    that applies (edges and shading need particles and background) is drawn with chance one
    half, at least one of them; amplitudes are relative to the patch's own
    particle-background contrast, so faint images stay faint and the particles stay apart
    from their background.
    """
    img = img.astype(np.float32, copy=True)
    fg = foreground > 0.5
    contrast = _contrast(img, fg)
    applies = np.array([True, 0 < fg.mean() < 1, fg.any(), True])  # illumination, edge, shading, texture
    looks = (rng.random(4) < 0.5) & applies
    if not looks.any():
        looks[rng.choice(np.flatnonzero(applies))] = True
    if looks[1]:
        img += _edge(fg, rng) * contrast
    if looks[2]:
        img += _shading(fg, rng) * contrast * rng.uniform(0.2, 0.6)
    if looks[3]:
        amplitude = max(abs(contrast), 0.1) * rng.uniform(0.1, 0.4)
        img += _texture(img.shape, rng) * amplitude * np.where(fg, rng.uniform(0.0, 1.5), 1.0).astype(np.float32)
    if looks[0]:
        gain, offset = _smooth_field(img.shape, rng), _smooth_field(img.shape, rng)
        img = img * (1 + 0.4 * gain) + 0.2 * offset
    return img.astype(np.float32)


def _contrast(img: np.ndarray, fg: np.ndarray) -> float:
    """Median particle minus median background grey level, at least 0.05 in size (0.3 without either)."""
    if not fg.any() or fg.all():
        return 0.3
    c = float(np.median(img[fg]) - np.median(img[~fg]))
    return c if abs(c) > 0.05 else 0.05 * (1 if c >= 0 else -1)


def _edge(fg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A band of 1-4 px along the outlines, in units of the particle's contrast.

    Inside the outline: the particle's own sign (secondary-electron edge brightening of a
    bright particle, a darker rim of a dark one; up to 1) or, weaker (up to 0.5), the
    opposite. Outside: always the opposite sign (a Fresnel fringe or halo; up to 1), so the
    band never carries the particle's grey level past its outline.
    """
    width = rng.uniform(1.0, 4.0)
    inside = rng.random() < 0.6
    region = fg if inside else ~fg
    band = np.exp(-np.maximum(ndi.distance_transform_edt(region) - 1, 0) / width) * region
    if inside and rng.random() < 0.7:
        amplitude = rng.uniform(0.3, 1.0)
    else:
        amplitude = -rng.uniform(0.2, 0.5 if inside else 1.0)
    return (amplitude * band).astype(np.float32)


def _shading(fg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each particle lit from one side: a tilt across it along a random direction, -1 to 1 over its width."""
    labels, n = ndi.label(fg)
    if n == 0:
        return np.zeros(fg.shape, np.float32)
    index = np.arange(1, n + 1)
    yy, xx = np.indices(fg.shape, dtype=np.float32)
    cy, cx = (np.asarray(ndi.mean(c, labels, index), np.float32) for c in (yy, xx))
    radius = np.sqrt(np.asarray(ndi.sum(fg, labels, index), np.float32) / np.pi) + 0.5
    angle = rng.uniform(0, 2 * np.pi)
    def per_pixel(values):  # each particle's value on its pixels (1 on the background: no division by 0)
        return np.concatenate([[1], values]).astype(np.float32)[labels]

    tilt = ((xx - per_pixel(cx)) * np.cos(angle) + (yy - per_pixel(cy)) * np.sin(angle)) / per_pixel(radius)
    return (np.clip(tilt, -1, 1) * fg).astype(np.float32)


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


def grains(shape: tuple, rng: np.random.Generator, cell_area: float) -> tuple[np.ndarray, np.ndarray]:
    """(grain index [h, w], boundary mask [h, w]): Voronoi cells of ``cell_area`` pixels on average."""
    cells = max(4, int(shape[0] * shape[1] / cell_area))
    seeds = np.zeros(shape, np.int32)
    seeds[rng.integers(0, shape[0], cells), rng.integers(0, shape[1], cells)] = np.arange(1, cells + 1)
    _, (iy, ix) = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    grain = seeds[iy, ix]
    return grain, ndi.morphological_gradient(grain, size=2) > 0


def draw_matrix(img: np.ndarray, foreground: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``img`` with a polycrystalline matrix drawn on its background.

    The structure a matrix or substrate shows at the particles' own scale, which is what a
    segmenter takes for particles: grains of 0.7-4 times the particles' median diameter,
    each of its own grey level, with etched (dark) or bright boundaries, and lamellae (as
    in pearlite or martensite laths) in some of them. Grain levels spread by 0.08-0.3 of the
    patch's particle-background contrast (standard deviation), so the particles stay the
    brightest or darkest things in the field, as they are in the micrographs this mimics
    (carbides in steel, particles on a polycrystalline film). Three times in four the
    particles get a finer texture of their own (grains of 0.05-0.5 of their diameter, at
    least 2 px: rough or polycrystalline surfaces), so that texture alone does not mark a
    region as matrix.
    """
    img = img.astype(np.float32, copy=True)
    fg = foreground > 0.5
    labels, n = ndi.label(fg)
    diameter = median_diameter(labels) if n else 20.0
    cell = max(diameter, 6.0) * rng.uniform(0.7, 4.0)
    grain, edges = grains(img.shape, rng, cell * cell)
    cells = int(grain.max()) + 1
    texture = rng.normal(0, 1, cells)[grain].astype(np.float32)
    striped = rng.random(cells) < rng.uniform(0, 0.7)
    if striped.any():
        yy, xx = np.indices(img.shape, dtype=np.float32)
        angle, period = rng.uniform(0, np.pi, cells)[grain], rng.uniform(3, 10, cells)[grain]
        stripes = np.sin(2 * np.pi * (yy * np.sin(angle) + xx * np.cos(angle)) / period)
        texture += np.where(striped[grain], rng.uniform(0.5, 1.5) * stripes, 0).astype(np.float32)
    texture += rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 2.0) * edges
    spread = abs(_contrast(img, fg)) * rng.uniform(0.08, 0.3)
    inside = np.zeros_like(texture)
    if n and rng.random() < 0.75:  # polycrystalline or rough particles: texture is no sign of the matrix
        small = max(diameter * float(np.exp(rng.uniform(np.log(0.05), np.log(0.5)))), 2.0)
        grain, edges = grains(img.shape, rng, small * small)
        inside = rng.normal(0, 1, int(grain.max()) + 1)[grain] + rng.uniform(0, 1.5) * edges
        inside = (rng.uniform(0.5, 1.5) * (inside - inside[fg].mean())).astype(np.float32)  # their level kept
    return np.where(fg, img + spread * inside, img + spread * texture).astype(np.float32)
