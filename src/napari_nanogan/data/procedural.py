"""Procedural particle masks and a simple physics-flavoured SEM renderer.

Used for the package's own sample image (the real data may not be shipped), the
demo and the tests. Particles are ellipses with log-normally distributed sizes;
touching particles are kept apart by 1-px gaps, like the BAM annotations, so the
4-connected components of the mask are the particles.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

_FOUR = ndi.generate_binary_structure(2, 1)


def particle_labels(
    shape: tuple[int, int],
    *,
    n_particles: int = 120,
    mean_diameter: float = 24.0,
    spread: float = 0.3,
    elongation: float = 0.25,
    clustering: float = 0.6,
    seed: int | np.random.Generator = 0,
    facets: int = 0,
    overlap: float = 0.4,
) -> np.ndarray:
    """Instance labels of random elliptical (or faceted) particles.

    Parameters
    ----------
    shape : (int, int)
        Height and width in pixels.
    n_particles : int
        Particles to place (fewer when the field fills up).
    mean_diameter : float
        Median equivalent diameter in pixels; sizes are log-normal with ``spread``.
    elongation : float
        Mean of 1 - minor/major axis ratio.
    clustering : float
        Probability that a particle is placed touching an earlier one (agglomerates).
    facets : int
        0: elliptical outlines; n >= 3: n-sided polygons (faceted crystals) of the
        same area, stretched by the same elongation.
    overlap : float
        Largest fraction of a particle that may lie behind earlier ones (0 = every
        particle whole, touching at most; up to 0.9). Hidden parts are cut off, a
        1-px gap is always kept, so 4-connected components stay the particles.
    """
    if facets and facets < 3:
        raise ValueError(f"facets must be 0 (round) or at least 3, got {facets}")
    if not 0 <= overlap <= 0.9:
        raise ValueError(f"overlap must be within 0..0.9, got {overlap}")
    rng = np.random.default_rng(seed)
    # polygon of unit area-equivalent circumradius: same area as the unit circle
    circumradius = float(np.sqrt(2 * np.pi / (facets * np.sin(2 * np.pi / facets)))) if facets else 1.0
    # agglomerates: centre distance as a fraction of the radii sum (0.85 at the default overlap)
    contact = 1.0 - 0.375 * overlap
    h, w = shape
    labels = np.zeros(shape, np.int32)
    yy, xx = np.mgrid[0:h, 0:w]
    centres: list[tuple[float, float, float]] = []
    label = 0
    for _ in range(n_particles * (3 if overlap >= 0.2 else 6)):
        if label >= n_particles:
            break
        d = mean_diameter * float(np.exp(rng.normal(0, spread)))
        ratio = float(np.clip(1 - abs(rng.normal(elongation, elongation / 2)), 0.35, 1))
        a, b = d / 2 / np.sqrt(ratio), d / 2 * np.sqrt(ratio)
        if centres and rng.random() < clustering:
            cy, cx, r0 = centres[int(rng.integers(len(centres)))]
            ang = rng.uniform(0, 2 * np.pi)
            dist = (r0 + d / 2) * contact + (1.5 if overlap == 0 else 0.0)
            cy, cx = cy + np.sin(ang) * dist, cx + np.cos(ang) * dist
        else:
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        theta = rng.uniform(0, np.pi)
        reach = a * circumradius
        y0, y1 = int(max(cy - reach - 1, 0)), int(min(cy + reach + 2, h))
        x0, x1 = int(max(cx - reach - 1, 0)), int(min(cx + reach + 2, w))
        if y1 <= y0 or x1 <= x0:
            continue
        dy, dx = yy[y0:y1, x0:x1] - cy, xx[y0:y1, x0:x1] - cx
        u = dx * np.cos(theta) + dy * np.sin(theta)
        v = -dx * np.sin(theta) + dy * np.cos(theta)
        if facets:
            phase = rng.uniform(0, 2 * np.pi / facets)
            normals = phase + 2 * np.pi * np.arange(facets) / facets
            apothem = circumradius * np.cos(np.pi / facets)
            inside = np.ones(u.shape, bool)
            for phi in normals:
                inside &= (u / a) * np.cos(phi) + (v / b) * np.sin(phi) <= apothem
        else:
            inside = (u / a) ** 2 + (v / b) ** 2 <= 1
        region = labels[y0:y1, x0:x1]
        occupied = ndi.binary_dilation(region > 0, _FOUR)
        new = inside & ~occupied
        if new.sum() < (1 - overlap) * inside.sum() - 1e-9 or new.sum() < 9 or not inside.any():
            continue
        # keep the largest 4-connected piece only
        parts, n = ndi.label(new, _FOUR)
        if n > 1:
            new = parts == (np.argmax(np.bincount(parts.ravel())[1:]) + 1)
        label += 1
        region[new] = label
        centres.append((cy, cx, d / 2))
    return labels


def render_sem(labels: np.ndarray, *, seed: int | np.random.Generator = 0, info_bar_rows: int = 0) -> np.ndarray:
    """A grey uint8 SEM-like image of the particles (bright, edge-enhanced, on dark).

    Secondary-electron contrast is mimicked with a brighter rim (edge effect), some
    per-particle brightness, smooth background shading, blur and signal-dependent
    noise. ``info_bar_rows`` > 0 appends a flat data bar with text-like marks.
    """
    rng = np.random.default_rng(seed)
    h, w = labels.shape
    fg = labels > 0
    depth = ndi.distance_transform_edt(fg)
    rim = np.exp(-depth / 2.5) * fg
    per_particle = rng.uniform(0.45, 0.75, int(labels.max()) + 1)
    body = per_particle[labels] * fg
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    shading = 0.08 + 0.05 * np.sin(2 * np.pi * (yy * rng.uniform(0.5, 1.5) + xx * rng.uniform(0.5, 1.5)))
    img = shading + body + 0.35 * rim
    img = ndi.gaussian_filter(img, 1.0)
    img = img + rng.normal(0, 1, img.shape) * 0.05 * np.sqrt(0.2 + img)
    img = np.clip(img * 255, 0, 255).astype(np.uint8)
    if info_bar_rows > 0:
        bar = np.full((info_bar_rows, w), 20, np.uint8)
        for _ in range(6):  # text-like blocks and a scale bar
            x0 = int(rng.integers(10, max(w - 60, 11)))
            bar[info_bar_rows // 3 : info_bar_rows // 3 + 8, x0 : x0 + 40 : 3] = 230
        bar[-12:-8, 20 : 20 + w // 8] = 255
        img = np.concatenate([img, bar], axis=0)
    return img


SAMPLE_PIXEL_SIZE_NM = 7.344


def sample_image(seed: int = 2026) -> tuple[np.ndarray, np.ndarray]:
    """The package's own SEM-like sample: (image 768 x 1024 with info bar, labels 712 x 1024)."""
    labels = particle_labels((712, 1024), n_particles=180, mean_diameter=24.0, seed=seed)
    image = render_sem(labels, seed=seed + 1, info_bar_rows=56)
    return image, labels
