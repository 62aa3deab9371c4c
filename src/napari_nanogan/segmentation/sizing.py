"""Automatic particle diameter: a small size model on top of a trained segmenter.

The segmenter works best when particles are about ``segmenter.diameter_px`` (24 px)
across; images of much larger particles are cut into fragments at their own scale
(see :func:`napari_nanogan.segmentation.segment_steps`, ``diameter=``). Like Cellpose's
size model, the diameter is predicted from what the segmenter itself makes of the
image, with a model fitted on annotated images
(:func:`napari_nanogan.training.sizing.fit_size_model`, ``nanogan fit-size``).

Features come from the image seen at several scales (1, 1/2, 1/4, 1/8): at each, the
diameter implied by the segmenter's output (foreground area per interior seed), the
median seed diameter, the foreground fraction and the share of the foreground that is
particle interior. Fragments of a large particle look like small particles at the
image's own scale, and small particles melt into blobs at a coarse one; which scale to
believe is what the model learns from annotated images. The model is the median log
diameter of the k nearest annotated images in standardised feature space: on the EMPS
validation images it gave instance F1 0.37-0.39 where a ridge regression on the same
features gave 0.35, one on two features per scale 0.25, and segmenting at the image's
own scale 0.11 (annotated median diameter: 0.41). Adding the network's deepest-layer
features made the cross-validated estimates worse (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..progress import drive
from .tiles import probability_steps

#: Scales the image is seen at for the size features.
SIZE_SCALES = (1.0, 0.5, 0.25, 0.125)
#: Largest side (px) of the window each scale's features are computed on (the centre of
#: the resized image). The full-scale window is the smallest: it costs the most network
#: time per pixel of specimen, and 384 px estimate as well as 768 px did (cross-validated
#: on the training split and on val and test; docs/benchmarks.md) at an eighth of the time.
SIZE_WINDOWS = (384, 768, 768, 768)
#: Features per scale (see :func:`_scale_features`).
FEATURES_PER_SCALE = 4
#: Fewer pixels than this at a scale (after resizing) and that scale repeats the previous one;
#: a specimen under it on either side is too small to estimate a diameter for.
MIN_ESTIMATE_SIDE = 32


@dataclass(frozen=True)
class SizeModel:
    """Nearest-neighbour regression of log(diameter in px) on :func:`size_features`."""

    mean: np.ndarray  # [F] feature means (standardisation)
    std: np.ndarray  # [F] feature standard deviations
    reference: np.ndarray  # [N, F] standardised features of the annotated images
    log_diameter: np.ndarray  # [N] their log median diameters (px)
    k: int
    metrics: dict  # how well it did where it was fitted and checked

    def predict(self, features: np.ndarray) -> float:
        z = (np.asarray(features, np.float64) - self.mean) / self.std
        nearest = np.argsort(((self.reference - z) ** 2).sum(axis=1), kind="stable")[: self.k]
        return float(np.exp(np.median(self.log_diameter[nearest])))

    def to_dict(self) -> dict:
        tensors = {k: torch.from_numpy(np.ascontiguousarray(getattr(self, k), np.float32))
                   for k in ("mean", "std", "reference", "log_diameter")}
        return {**tensors, "k": int(self.k), "scales": list(SIZE_SCALES), "windows": list(SIZE_WINDOWS),
                "metrics": dict(self.metrics)}

    @classmethod
    def from_dict(cls, data: dict) -> "SizeModel":
        if list(data.get("scales", [])) != list(SIZE_SCALES) or list(data.get("windows", [])) != list(SIZE_WINDOWS):
            raise ValueError("this size model was fitted on other scales or windows; refit it with `nanogan fit-size`")
        arr = {k: np.asarray(data[k], np.float64) for k in ("mean", "std", "reference", "log_diameter")}
        if arr["reference"].ndim != 2 or arr["reference"].shape[1] != len(SIZE_SCALES) * FEATURES_PER_SCALE:
            raise ValueError("this size model's features differ from this version's; refit it with `nanogan fit-size`")
        return cls(**arr, k=int(data["k"]), metrics=dict(data.get("metrics", {})))


def _centre(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape
    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return image[y : y + side, x : x + side]


def size_features(grey: np.ndarray, segmenter, rows: slice = slice(None)) -> np.ndarray:
    """Features of a grey image's specimen rows for :class:`SizeModel` (1D float array).

    :data:`FEATURES_PER_SCALE` per scale in :data:`SIZE_SCALES`, from the segmenter's
    probabilities over the centre window of the resized image (:func:`_scale_features`).
    """
    from skimage.transform import resize

    specimen = grey[rows]
    multiple = segmenter.config.multiple
    features: list[np.ndarray] = []
    previous = None
    for scale, side in zip(SIZE_SCALES, SIZE_WINDOWS):
        shape = (round(specimen.shape[0] * scale), round(specimen.shape[1] * scale))
        if min(shape) >= MIN_ESTIMATE_SIDE:
            # the centre window of the resized image, resized from the centre of the original
            # (a large image is never resized, nor copied, whole)
            crop = _centre(specimen, int(np.ceil(side / scale))).astype(np.float32)
            small = crop if scale == 1.0 else resize(
                crop, (round(crop.shape[0] * scale), round(crop.shape[1] * scale)), order=1, anti_aliasing=True)
            window = _centre(small, side)
            maps = drive(probability_steps(window, segmenter, tile=-(-max(window.shape) // multiple) * multiple,
                                           overlap=0))
            previous = _scale_features(*maps, scale)
        if previous is None:
            raise ValueError(f"image of shape {specimen.shape} is too small to estimate a particle diameter")
        features.append(previous)
    return np.concatenate(features).astype(np.float64)


def _scale_features(fg: np.ndarray, interior: np.ndarray, scale: float) -> np.ndarray:
    """One scale's features; sizes are in the image's own pixels, on a log scale.

    log implied diameter (foreground area per interior seed of 4+ px), log median seed
    diameter, foreground fraction, and the share of the foreground that is interior.
    """
    from scipy import ndimage as ndi

    mask = fg >= 128
    seeds, _ = ndi.label(interior >= 128, structure=ndi.generate_binary_structure(2, 1))
    area = float(mask.sum())
    sizes = np.bincount(seeds.ravel())[1:]
    sizes = sizes[sizes >= 4]
    implied = 2 * np.sqrt(max(area, 1.0) / (np.pi * max(sizes.size, 1))) / scale
    seed = 2 * np.sqrt(float(np.median(sizes)) / np.pi) / scale if sizes.size else 1.0 / scale
    interior_share = float((interior[mask] >= 128).mean()) if area else 0.0
    return np.array([np.log(implied), np.log(seed), area / mask.size, interior_share])


@dataclass(frozen=True)
class CoarseSizing:
    """The particle diameter from the network itself, seen at a coarse scale.

    The specimen is shrunk by ``factor`` and segmented; the median equivalent-circle
    diameter of what is found, scaled back, is the estimate. Particles under about
    ``3 / factor`` px vanish at that scale, so an image of small particles yields no
    estimate and is segmented at its own scale, which a network trained on particles of
    4 to 90 px handles; an estimate of at least ``shrink_above`` px makes the image
    smaller for the network (``segment(..., diameter="auto")``).
    """

    factor: float = 0.25
    shrink_above: float = 48.0
    min_particles: int = 3

    def to_dict(self) -> dict:
        return {"method": "coarse", "factor": float(self.factor), "shrink_above": float(self.shrink_above),
                "min_particles": int(self.min_particles)}

    @classmethod
    def from_dict(cls, data: dict) -> "CoarseSizing":
        if data.get("method") != "coarse":
            raise ValueError(f"unknown sizing method {data.get('method')!r}; refit it with `nanogan fit-size`")
        return cls(float(data["factor"]), float(data["shrink_above"]), int(data.get("min_particles", 3)))


def coarse_diameter(grey: np.ndarray, segmenter, rows: slice = slice(None), sizing: CoarseSizing = CoarseSizing()
                    ) -> float | None:
    """Median equivalent-circle diameter (px of ``grey``) of the particles ``segmenter`` finds at a coarse scale,
    or None where it finds fewer than ``sizing.min_particles`` of at least 3 x 3 px there."""
    from skimage.transform import resize

    from ..measure import equivalent_diameters
    from .postprocess import instances_from_probabilities
    from .scale import scale_postprocess

    specimen = np.asarray(grey[rows], np.float32)
    shape = (round(specimen.shape[0] * sizing.factor), round(specimen.shape[1] * sizing.factor))
    if min(shape) < MIN_ESTIMATE_SIDE:
        return None
    small = resize(specimen, shape, order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)
    fg, interior = drive(probability_steps(small, segmenter))
    labels = instances_from_probabilities(fg, interior, scale_postprocess(segmenter.postprocess, sizing.factor))
    diameters = equivalent_diameters(labels, min_area=9)
    if diameters.size < sizing.min_particles:
        return None
    return float(np.median(diameters) / sizing.factor)


def can_estimate_diameter(segmenter) -> bool:
    """Whether ``segment(..., diameter="auto")`` works with this segmenter (its sizer has a size model or a coarse sizing).

    The CLI, the demo and the Segment panel estimate by default only where it does.
    """
    sizer = getattr(segmenter, "sizer", segmenter)
    return getattr(sizer, "size_model", None) is not None or getattr(sizer, "coarse_sizing", None) is not None


def estimate_diameter(grey: np.ndarray, segmenter, rows: slice = slice(None)) -> float | None:
    """Typical particle diameter (px) of a grey image, from the size model or coarse sizing of ``segmenter.sizer``.

    A fine-tuned model's ``size_correction`` (calibrated on its annotated images) scales the
    estimate. None where the coarse sizing finds too few particles (small ones: the image's
    own scale suits them).
    """
    sizer = getattr(segmenter, "sizer", segmenter)
    correction = float(getattr(segmenter, "size_correction", 1.0))
    if sizer.size_model is not None:
        return correction * sizer.size_model.predict(size_features(grey, sizer, rows))
    if getattr(sizer, "coarse_sizing", None) is not None:
        diameter = coarse_diameter(grey, sizer, rows, sizer.coarse_sizing)
        return None if diameter is None else correction * diameter
    raise ValueError(f"model {segmenter.name!r} has no size model for an automatic diameter; "
                     "give the particle diameter, or add one with `nanogan fit-size`")


def estimate_factor(diameter: float | None, sizer) -> float:
    """How much an image is resized for an *estimated* particle diameter (px).

    Estimates are rough, so only clear cases resize: an estimate of at least
    :func:`shrink_threshold` makes the image smaller, one under :func:`auto_enlarge_below`
    makes it larger (as a given diameter would, by at most ``config.MAX_ENLARGE``), anything
    between leaves it at its own scale (1.0, also for None).
    """
    from .scale import resize_factor

    if diameter is None:
        return 1.0
    if diameter >= shrink_threshold(sizer):
        return min(resize_factor(diameter, sizer.diameter_px), 1.0)
    if diameter < auto_enlarge_below(sizer.diameter_px):  # (may be undone after: no warning of its limit)
        return max(resize_factor(diameter, sizer.diameter_px, warn_small=False), 1.0)
    return 1.0


def keeps_own_scale(diameter: float | None, factor: float, model_diameter_px: float) -> bool:
    """Whether an *estimated* ``diameter`` (px) left the image at its own scale (``factor`` 1), as one of particles
    the network sees at that scale: not one of small particles left there (``ENLARGE_BELOW``), whose user is told
    to give the diameter. Where the network is unsure of them, the scale check tries smaller scales."""
    from ..config import ENLARGE_BELOW

    return factor == 1.0 and diameter is not None and diameter >= model_diameter_px / ENLARGE_BELOW


def _model_ratio(model_diameter_px: float) -> float:
    from ..config import MODEL_DIAMETER_PX

    return float(model_diameter_px) / MODEL_DIAMETER_PX


def auto_enlarge_below(model_diameter_px: float) -> float:
    """The estimated diameter (px) under which an image is enlarged, for a network made to see
    particles ``model_diameter_px`` across: ``config.AUTO_ENLARGE_BELOW`` (set for the shipped
    networks' 24 px) in proportion."""
    from ..config import AUTO_ENLARGE_BELOW

    return AUTO_ENLARGE_BELOW * _model_ratio(model_diameter_px)


def enlargement_holds(labels: np.ndarray, model_diameter_px: float | None = None) -> bool:
    """Whether the particles found on an image enlarged for an estimate are small, as the estimate said.

    Their median equivalent-circle diameter (px of the image itself) must be under
    ``config.AUTO_ENLARGE_KEEP_BELOW`` (set for the shipped networks' 24 px; in proportion
    for a network of another ``model_diameter_px``); otherwise the estimate was wrong (a textured matrix
    can look like small particles), the network cut larger particles into pieces, and
    the image is segmented again at its own scale, which suits particles of 12-30 px.
    No particle found: it does not hold either. Particles several times larger than the
    estimate grow past what the network sees once enlarged, and vanish (a field of clean
    27-px cubes estimated at 10 px, enlarged twice, gave none); the image's own scale is
    tried, and what it finds is kept where it finds anything.
    """
    from .. import config as _config
    from ..measure import equivalent_diameters

    ratio = 1.0 if model_diameter_px is None else _model_ratio(model_diameter_px)
    found = equivalent_diameters(labels, min_area=9)
    return bool(found.size) and float(np.median(found)) < _config.AUTO_ENLARGE_KEEP_BELOW * ratio


def shrink_threshold(segmenter) -> float:
    """The smallest estimated diameter (px) at which ``diameter="auto"`` makes an image smaller."""
    from ..config import AUTO_MIN_RATIO

    if segmenter.size_model is None and getattr(segmenter, "coarse_sizing", None) is not None:
        return segmenter.coarse_sizing.shrink_above
    return AUTO_MIN_RATIO * segmenter.diameter_px
