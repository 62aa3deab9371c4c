"""Domain-randomised image-mask pairs: many microscopes, materials, sizes and artefacts.

A segmenter that has seen one data set segments that data set. These pairs teach
breadth: :func:`random_pair` draws a layout (:mod:`napari_nanogan.data.layouts`) and
renders it in a randomly drawn style, each an approximation of the physics that makes
particles visible:

- **SEM, secondary electrons**: bright particles on a darker substrate, brighter edges
  (the edge effect), shading by surface slope from a detector direction, shadows, scan
  lines, charging streaks;
- **bright-field TEM**: dark particles on a bright support, darker where they are thicker
  (absorption and diffraction contrast, which differs from particle to particle),
  Fresnel fringes at the edges, lattice fringes, core-shell particles, amorphous carbon;
- **HAADF STEM / dark field**: bright particles, brighter where thicker, on a dark support;

on flat, cloudy or grainy (matrix) backgrounds, then uneven illumination, blur, resampling,
shot and read noise, drift and JPEG compression. Text, scale bars, arrows, panel letters,
frames and info bars are drawn as things that are not particles
(:mod:`napari_nanogan.data.distractors`). The labels are exact by construction.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ..config import MODEL_DIAMETER_PX
from ..normalize import intensity_range
from .datasets import Sample
from .distractors import draw_distractors
from .layouts import random_layout
from .styles import grains
from .targets import SEED_DEPTH

#: Imaging styles and how often each is drawn.
STYLES = {"sem": 0.4, "tem": 0.4, "haadf": 0.2}


def smooth_field(shape: tuple[int, int], rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise of unit standard deviation (computed on a coarse grid for large ``sigma``)."""
    h, w = shape
    f = max(1, int(sigma // 4))
    small = rng.normal(size=(h // f + 2, w // f + 2)).astype(np.float32)
    small = ndi.gaussian_filter(small, max(sigma / f, 0.5), mode="wrap")
    field = ndi.zoom(small, f, order=1)[:h, :w] if f > 1 else small[:h, :w]
    return (field - field.mean()) / max(float(field.std()), 1e-6)


def particle_maps(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance to the particle's own edge in px, the same relative to the particle's deepest point)."""
    from skimage.segmentation import find_boundaries

    inner = (labels > 0) & ~find_boundaries(labels, mode="inner")
    depth = ndi.distance_transform_edt(inner).astype(np.float32) + (labels > 0)
    deepest = np.ones(int(labels.max()) + 1, np.float32)
    np.maximum.at(deepest, labels.ravel(), depth.ravel())
    return depth, np.where(labels > 0, depth / deepest[labels], 0).astype(np.float32)


def _per_particle(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.where(labels > 0, values[labels], 0).astype(np.float32)


def _thickness(labels, depth, rel, rng):
    """Projected thickness in [0, 1]: domes (spheres) or flat tops with soft edges (plates, cubes)."""
    n = int(labels.max()) + 1
    dome = np.sqrt(np.clip(1 - (1 - rel) ** 2, 0, 1))
    flat = np.clip(depth / rng.uniform(1.5, 4), 0, 1)
    mix = _per_particle(labels, rng.uniform(0, 1, n) ** 2)
    return (mix * flat + (1 - mix) * dome) * _per_particle(labels, rng.uniform(0.6, 1.0, n))


def _background(shape, rng, *, fine: float) -> np.ndarray:
    """Zero-mean background texture: clouds, grains (a matrix), or almost nothing."""
    kind = rng.choice(["flat", "clouds", "grains"], p=[0.35, 0.4, 0.25])
    out = fine * smooth_field(shape, rng, rng.uniform(0.6, 1.5))
    if kind == "clouds":
        out += rng.uniform(0.02, 0.12) * smooth_field(shape, rng, rng.uniform(4, 30))
    elif kind == "grains":
        grain, edges = grains(shape, rng, rng.uniform(400, 6000))
        level = rng.normal(0, rng.uniform(0.03, 0.12), int(grain.max()) + 1).astype(np.float32)
        out += level[grain] - rng.uniform(0, 0.08) * edges
    return out.astype(np.float32)


def render_sem(labels, rng) -> np.ndarray:
    h, w = labels.shape
    fg = labels > 0
    depth, rel = particle_maps(labels)
    height = _thickness(labels, depth, rel, rng) * rng.uniform(2, 12)
    n = int(labels.max()) + 1
    substrate = rng.uniform(0.05, 0.45) + _background(labels.shape, rng, fine=rng.uniform(0.005, 0.04))
    base = substrate.mean() + _per_particle(labels, rng.uniform(0.15, 0.55) * rng.uniform(0.75, 1.25, n))
    angle = rng.uniform(0, 2 * np.pi)
    gy, gx = np.gradient(ndi.gaussian_filter(height, 1.0))
    shading = rng.uniform(0, 0.12) * (gx * np.cos(angle) + gy * np.sin(angle))
    rim = rng.uniform(0, 0.35) * np.exp(-(depth - 1) / rng.uniform(0.8, 3.0))
    particles = base + rim + shading + rng.uniform(0, 0.06) * smooth_field(labels.shape, rng, 1.0)
    shift = rng.uniform(0, 4)
    shadow = ndi.shift(ndi.gaussian_filter(fg.astype(np.float32), 2), (-shift * np.sin(angle), -shift * np.cos(angle)),
                       order=1)
    substrate = substrate - rng.uniform(0, 0.15) * shadow
    image = np.where(fg, particles, substrate)
    if rng.random() < 0.15:  # charging: bright streaks along scan lines after bright particles
        streak = ndi.uniform_filter1d(fg.astype(np.float32), int(rng.integers(5, 40)), axis=1, origin=-1)
        image = image + rng.uniform(0.05, 0.3) * streak * (~fg)
    if rng.random() < 0.5:  # scan-line noise
        image = image + rng.normal(0, rng.uniform(0.003, 0.03), (h, 1))
    return image


def render_tem(labels, rng) -> np.ndarray:
    fg = labels > 0
    depth, rel = particle_maps(labels)
    n = int(labels.max()) + 1
    thickness = _thickness(labels, depth, rel, rng)
    # absorption + diffraction contrast: some particles (in Bragg condition) far darker than others
    mu = _per_particle(labels, rng.uniform(0.3, 2.5) * np.exp(rng.normal(0, 0.6, n)))
    support = rng.uniform(0.55, 0.92) + _background(labels.shape, rng, fine=rng.uniform(0.01, 0.06))
    image = support * np.exp(-mu * thickness)
    if rng.random() < 0.3:  # core-shell: a core of different density
        core = rel > rng.uniform(0.35, 0.7)
        image = image * np.where(core, rng.uniform(0.4, 1.4), 1.0)
    if rng.random() < 0.3:  # lattice fringes inside some particles
        yy, xx = np.mgrid[0 : labels.shape[0], 0 : labels.shape[1]].astype(np.float32)
        theta = _per_particle(labels, rng.uniform(0, np.pi, n))
        period = rng.uniform(2.5, 6)
        fringes = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period)
        image = image * (1 + rng.uniform(0.02, 0.12) * fringes * fg * (rng.random(n) < 0.6)[labels])
    if rng.random() < 0.7:  # Fresnel fringe at the edges (defocus): a thin bright or dark ring
        ring = ndi.gaussian_laplace(fg.astype(np.float32), rng.uniform(0.7, 1.5))
        image = image + rng.choice([-1, 1]) * rng.uniform(0.05, 0.4) * ring
    return image


def render_haadf(labels, rng) -> np.ndarray:
    depth, rel = particle_maps(labels)
    n = int(labels.max()) + 1
    thickness = _thickness(labels, depth, rel, rng)
    z = _per_particle(labels, rng.uniform(0.3, 0.9) * np.exp(rng.normal(0, 0.3, n)))
    support = rng.uniform(0.02, 0.25) + _background(labels.shape, rng, fine=rng.uniform(0.005, 0.04))
    return support + z * thickness ** rng.uniform(0.6, 1.2)


RENDERERS = {"sem": render_sem, "tem": render_tem, "haadf": render_haadf}


def degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uneven illumination, blur, resampling and noise, then 8-bit quantisation and maybe JPEG (uint8)."""
    h, w = image.shape
    if rng.random() < 0.5:
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        a = rng.uniform(0, 0.4)
        plane = a * ((yy - 0.5) * np.cos(rng.uniform(0, 6.3)) + (xx - 0.5) * np.sin(rng.uniform(0, 6.3)))
        image = image * (1 + plane + rng.uniform(0, 0.1) * smooth_field((h, w), rng, max(h, w) / 4))
    if rng.random() < 0.7:
        image = ndi.gaussian_filter(image, rng.uniform(0.3, 1.6))
    if rng.random() < 0.3:  # a figure resampled on its way into a paper
        f = rng.uniform(1.3, 2.5)
        small = ndi.zoom(image, 1 / f, order=1)
        image = ndi.zoom(small, (h / small.shape[0], w / small.shape[1]), order=1)[:h, :w]
    lo, hi = np.percentile(image, [rng.uniform(0, 2), rng.uniform(98, 100)])
    image = np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1)
    counts = float(np.exp(rng.uniform(np.log(15), np.log(2000))))
    image = rng.poisson(image * counts) / counts + rng.normal(0, rng.uniform(0, 0.04), image.shape)
    if rng.random() < 0.5:
        image = np.clip(image, 0, None) ** rng.uniform(0.7, 1.4)
    out = np.clip(np.round(255 * np.clip(image, 0, 1) * rng.uniform(0.8, 1) + rng.uniform(0, 20)), 0, 255)
    out = out.astype(np.uint8)
    if rng.random() < 0.3:
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(out).save(buffer, format="JPEG", quality=int(rng.integers(20, 90)))
        out = np.asarray(Image.open(buffer)).copy()
    return out


def _skew(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
    """Drift during a slow scan: a small shear and stretch of image and labels alike."""
    matrix = np.array([[rng.uniform(0.95, 1.05), rng.uniform(-0.08, 0.08)], [0.0, 1.0]])
    offset = -matrix @ np.array(image.shape) / 2 + np.array(image.shape) / 2
    image = ndi.affine_transform(image, matrix, offset=offset, order=1, mode="reflect")
    labels = ndi.affine_transform(labels, matrix, offset=offset, order=0, mode="constant")
    return image, labels


def random_pair(shape: tuple[int, int], rng: np.random.Generator, *, min_diameter: float = 4.0,
                max_diameter: float = 90.0, distractor_prob: float = 0.35) -> tuple[np.ndarray, np.ndarray, dict]:
    """One domain-randomised pair: (uint8 image, int32 instance labels, what was drawn).

    Particle diameters (median per image) are log-uniform in [``min_diameter``,
    ``max_diameter``] px; with probability ``distractor_prob`` the image also carries
    text, scale bars, arrows, frames or an info bar, labelled background.
    """
    labels, info = random_layout(shape, rng, min_diameter=min_diameter, max_diameter=max_diameter)
    names = list(STYLES)
    style = names[int(rng.choice(len(names), p=np.array([STYLES[s] for s in names])))]
    image = RENDERERS[style](labels, rng).astype(np.float32)
    if rng.random() < 0.15:
        image, labels = _skew(image, labels, rng)
    image = degrade(image, rng)
    info["style"] = style
    if rng.random() < distractor_prob:
        image, labels, info["distractors"] = draw_distractors(image, labels, rng)
    return image, labels.astype(np.int32), info


@dataclass
class RandomizedSource:
    """An endless training domain of :func:`random_pair` images (a :class:`~napari_nanogan.data.augment.SampleSource`).

    Each draw renders a new pair from the caller's random generator alone, so a training
    run that resumes draws the same pairs as one that did not stop.
    """

    min_diameter: float = 4.0
    max_diameter: float = 90.0
    distractor_prob: float = 0.35
    seed_depth: float | None = SEED_DEPTH  # the interior target's depth cap (set by the training loop)

    def draw(self, rng: np.random.Generator, side: int) -> Sample:
        image, labels, _ = random_pair((side, side), rng, min_diameter=self.min_diameter,
                                       max_diameter=self.max_diameter, distractor_prob=self.distractor_prob)
        low, high = intensity_range(image)
        return Sample("randomized", image, labels, low, high, "randomized", self.seed_depth)

    @classmethod
    def at_model_scale(cls, largest: float = 3.0) -> RandomizedSource:
        """Pairs for a network trained at the model's scale (``nanogan train --at-model-scale``): medians from
        8 px (images enlarged at most twice, ``config.MAX_ENLARGE``, for the model's 24 px) to ``largest`` times
        the model's diameter. With ``largest`` 1.1, only the sizes of images resized for an estimate (8-26 px);
        the default 3 adds those of images segmented at their own scale, whose particles can be larger
        (``segment(..., diameter=None)``). Fine-tunes of ``default`` with either lost a tenth of their
        own-scale foreground Dice on the EMPS test images (docs/alternatives.md)."""
        return cls(min_diameter=MODEL_DIAMETER_PX / 3, max_diameter=largest * MODEL_DIAMETER_PX)

    def use_seed_depth(self, seed_depth: float | None) -> None:
        self.seed_depth = seed_depth
