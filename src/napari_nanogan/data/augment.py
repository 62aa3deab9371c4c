"""Patch sampling and EM-suited augmentation (numpy + torch, no Qt).

Geometry: isotropic scale jitter (never anisotropic: particle shapes are data),
random crop, flips and 90 degree rotations. Intensity: contrast, brightness, gamma,
Gaussian blur (focus) and Gaussian/Poisson-like noise (detector), applied after the
same robust normalisation inference uses. Polarity is flipped only on request
(``AugmentConfig.invert_prob``): a patch's grey levels are then mirrored, so bright
particles on dark become dark on bright and the reverse, and the network must tell
particles by their shape and outline, not by their brightness. Imaging styles (edge
brightening or fringes, shading, uneven illumination, a grainy matrix;
:mod:`napari_nanogan.data.styles`) are drawn on request too (``AugmentConfig.style_prob``), and so is
a polycrystalline matrix on the background (``AugmentConfig.matrix_prob``).
"""

from __future__ import annotations

from typing import Protocol, Union

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

from ..config import AugmentConfig
from ..normalize import normalize
from .datasets import Sample
from .styles import draw_matrix, restyle


def _resize(arr: np.ndarray, size: int) -> np.ndarray:
    """Resize [C, h, w] to [C, size, size] bilinearly (antialiased when shrinking)."""
    t = torch.from_numpy(np.ascontiguousarray(arr))[None]
    shrink = arr.shape[-1] > size
    return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)[0].numpy()


def sample_patch(sample: Sample, size: int, rng: np.random.Generator, config: AugmentConfig = AugmentConfig(),
                 *, with_contact: bool = False):
    """One augmented (image [1, S, S], targets [2, S, S]) pair of float32 arrays.

    With ``with_contact`` the targets get a third channel, the sample's contact zone
    (where touching particles meet), transformed with them, for loss weighting.
    """
    lo_s, hi_s = config.scale_range
    scale = float(np.exp(rng.uniform(np.log(lo_s), np.log(hi_s))))
    h, w = sample.image.shape
    src = int(round(size / scale))
    y = int(rng.integers(0, max(h - src, 0) + 1))
    x = int(rng.integers(0, max(w - src, 0) + 1))
    img = normalize(sample.image[y : y + src, x : x + src], sample.low, sample.high)
    tgt = sample.targets[:, y : y + src, x : x + src]
    if with_contact:
        tgt = np.concatenate([tgt, sample.contact[None, y : y + src, x : x + src].astype(np.float32)])
    ph, pw = src - img.shape[0], src - img.shape[1]
    if ph > 0 or pw > 0:  # images smaller than the window: mirror image and targets alike, as inference pads
        img = np.pad(img, ((0, ph), (0, pw)), mode="symmetric")
        tgt = np.pad(tgt, ((0, 0), (0, ph), (0, pw)), mode="symmetric")
    if config.matrix_prob > 0 and rng.random() < config.matrix_prob:  # (before the marks, which stay black or white)
        img = draw_matrix(img, tgt[0], rng)
    if config.distractor_prob > 0 and rng.random() < config.distractor_prob:
        img, tgt = with_distractors(img, tgt, rng)
    stack = _resize(np.concatenate([img[None], tgt]), size)
    if rng.random() < 0.5:
        stack = stack[:, :, ::-1]
    if rng.random() < 0.5:
        stack = stack[:, ::-1, :]
    stack = np.rot90(stack, int(rng.integers(4)), axes=(1, 2))
    img, tgt = np.ascontiguousarray(stack[:1]), np.ascontiguousarray(stack[1:])
    if config.invert_prob > 0 and rng.random() < config.invert_prob:
        img = 1.0 - img  # mirrored about the middle of the normalised range: the polarity flips
    if config.style_prob > 0 and rng.random() < config.style_prob:
        img = restyle(img[0], tgt[0], rng)[None]
    img = _intensity(img[0], rng, config)[None]
    return img.astype(np.float32), np.clip(tgt, 0, 1).astype(np.float32)


def with_distractors(img: np.ndarray, tgt: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A normalised patch with figure marks drawn on it (``data.distractors.draw_distractors``); targets cleared beneath.

    ``img``: [h, w] float (0-1 is the normalised range); ``tgt``: [C, h, w], foreground
    first. Pixels the marks do not touch keep their values exactly; the marks are black or
    white (anti-aliased), as figure annotations are.
    """
    from .distractors import draw_distractors

    img8 = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    particles = (tgt[0] > 0.5).astype(np.int32)
    drawn, kept, _ = draw_distractors(img8, particles, rng)
    changed = drawn != img8
    img = np.where(changed, drawn.astype(np.float32) / 255, img).astype(np.float32)
    tgt = np.where((particles > 0) & (kept == 0), 0, tgt).astype(np.float32)
    return img, tgt


def _intensity(img: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    c = rng.uniform(*config.contrast)
    b = rng.uniform(-config.brightness, config.brightness)
    img = (img - 0.5) * c + 0.5 + b
    g = float(np.exp(rng.uniform(np.log(config.gamma[0]), np.log(config.gamma[1]))))
    img = np.clip(img, 0, None) ** g
    if rng.random() < config.blur_prob:
        img = ndi.gaussian_filter(img, rng.uniform(*config.blur_sigma))
    if rng.random() < config.noise_prob:
        sigma = rng.uniform(*config.noise_sigma)
        # signal-dependent (shot-like) plus constant (read-out) noise
        img = img + rng.normal(0, 1, img.shape) * sigma * np.sqrt(0.5 + np.clip(img, 0, 2))
    return np.clip(img, -1.0, 2.0)


class SampleSource(Protocol):
    """A domain whose samples are drawn fresh for each patch (e.g. :class:`~napari_nanogan.data.randomized.RandomizedSource`)."""

    def draw(self, rng: np.random.Generator, side: int) -> Sample:
        """A new sample of at least ``side`` x ``side`` pixels, from ``rng`` alone."""


Pool = Union[list, SampleSource]


def sample_batch(samples_by_domain: dict[str, Pool], batch: int, size: int, rng: np.random.Generator,
                 config: AugmentConfig = AugmentConfig(), *, with_contact: bool = False,
                 domain_weights: dict[str, float] | None = None):
    """A batch with domains drawn uniformly (or by ``domain_weights``), then images uniformly within a domain.

    A domain is a list of samples, or a :class:`SampleSource` that draws a new one, large
    enough for the patch at the smallest scale, for each patch.
    """
    domains = sorted(samples_by_domain)
    p = None
    if domain_weights is not None:
        w = np.array([float(domain_weights.get(d, 0.0)) for d in domains])
        if not (w >= 0).all() or w.sum() <= 0:
            raise ValueError(f"domain weights must be non-negative with a positive sum, got {domain_weights}")
        p = w / w.sum()
    images, targets = [], []
    for _ in range(batch):
        index = int(rng.integers(len(domains))) if p is None else int(rng.choice(len(domains), p=p))
        pool = samples_by_domain[domains[index]]
        if hasattr(pool, "draw"):
            sample = pool.draw(rng, int(np.ceil(size / min(config.scale_range))))
        else:
            sample = pool[int(rng.integers(len(pool)))]
        img, tgt = sample_patch(sample, size, rng, config, with_contact=with_contact)
        images.append(img)
        targets.append(tgt)
    return torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(targets))
