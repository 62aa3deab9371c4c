"""Fitting the size model behind ``segment(..., diameter="auto")`` (``nanogan fit-size``)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..data.datasets import Sample
from ..measure import median_diameter
from ..segmentation.sizing import SizeModel, size_features

#: Neighbour counts tried by cross-validation.
NEIGHBOURS = (3, 5, 7, 11, 15)


def size_errors(predicted: np.ndarray, truth: np.ndarray) -> dict:
    """Median |relative error| and the share of images within 25 % and within a factor 1.5."""
    ratio = np.asarray(predicted) / np.asarray(truth)
    return {"images": int(ratio.size), "median_abs_error": round(float(np.median(np.abs(ratio - 1))), 4),
            "within_25pct": round(float(np.mean(np.abs(ratio - 1) <= 0.25)), 4),
            "within_1.5x": round(float(np.mean((ratio >= 1 / 1.5) & (ratio <= 1.5))), 4)}


def fit_size_model(features: np.ndarray, diameters: np.ndarray, domains: list[str], *, folds: int = 5,
                   seed: int = 0, groups: list[str] | None = None) -> SizeModel:
    """Nearest-neighbour size model; the number of neighbours chosen by k-fold cross-validation.

    The score of each k is the mean over domains of the median |log error|, so a few
    images of one microscope count as much as hundreds of another's; shrunk copies
    (:func:`shrunk_copies`) are domains of their own, so small particles weigh in the
    choice. Rows of one ``group`` (an image and its copies) share a fold.
    """
    x = np.asarray(features, np.float64)
    y = np.log(np.asarray(diameters, np.float64))
    if len(y) < 2 * folds or not np.isfinite(y).all():
        raise ValueError(f"need at least {2 * folds} images with annotated particles to fit a size model")
    domains = np.asarray(domains)
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    names, group = np.unique(np.asarray(groups if groups is not None else np.arange(len(y)).astype(str)),
                             return_inverse=True)
    fold = (np.random.default_rng(seed).permutation(len(names)) % folds)[group]
    cv = {}
    for k in NEIGHBOURS:
        pred = np.zeros(len(y))
        for f in range(folds):
            model = SizeModel(mean, std, z[fold != f], y[fold != f], k, {})
            pred[fold == f] = [np.log(model.predict(v)) for v in x[fold == f]]
        score = np.mean([np.median(np.abs(pred - y)[domains == d]) for d in np.unique(domains)])
        cv[k] = (float(score), np.exp(pred))
    k = min(cv, key=lambda n: cv[n][0])
    pred = cv[k][1]
    metrics = {"k": k, "cross_validated": {d: size_errors(pred[domains == d], np.exp(y[domains == d]))
                                           for d in np.unique(domains).tolist()}}
    return SizeModel(mean, std, z, y, k, metrics)


#: :func:`shrunk_copies` takes images whose annotated median diameter lies in this range (px)
#: to a diameter drawn log-uniformly from ``SMALL_DIAMETERS``: under 12 px, where annotated
#: references are missing (from 12 px on the training images have some). Copies of 12-14 px
#: were tried: the package's procedural sample (21.5 px) was then estimated 14 px, with no
#: better estimates elsewhere (docs/benchmarks.md).
SHRINK_FROM = (16.0, 96.0)
SMALL_DIAMETERS = (4.0, 11.0)
#: A shrunk copy smaller than this (px) on either side is not made.
MIN_COPY_SIDE = 96


def noisy_shrunk_copy(sample: Sample, factor: float, rng: np.random.Generator) -> Sample:
    """``sample`` made ``factor`` (< 1) times smaller, as a microscope at a lower magnification would see it.

    Shrunk as at inference (:func:`~napari_nanogan.training.data.shrink_sample`: the image
    anti-aliased, the labels by nearest neighbour, so touching particles keep their own
    labels), then the pixel noise that shrinking averages away (its level measured on the
    original) is added back, so that the copy is not cleaner than a real image of small
    particles. Named ``<name>@<factor>``, its domain is ``<domain>-shrunk``.
    """
    from scipy import ndimage as ndi

    from .data import shrink_sample

    image = sample.image.astype(np.float32)
    noise = 1.4826 * float(np.median(np.abs(image - ndi.gaussian_filter(image, 1.0))))
    small = shrink_sample(sample, factor)
    noisy = small.image + rng.normal(0.0, noise * np.sqrt(1.0 - factor ** 2), small.image.shape)
    return Sample(f"{sample.name}@{factor:.3f}", noisy.astype(np.float32), small.labels,
                  sample.low, sample.high, f"{sample.domain}-shrunk")


def shrunk_copies(samples: list[Sample], seed: int = 0) -> list[tuple[Sample, float, str]]:
    """Annotated images made smaller: size references for particles of 4-11 px, which few annotated images show.

    Without them the nearest annotated images of an image of small particles are of larger
    ones: such images were estimated several times too large, and then shrunk for the
    network until their particles vanished. One copy of each sample whose median diameter
    lies in ``SHRINK_FROM``, shrunk to a diameter drawn from
    ``SMALL_DIAMETERS`` (:func:`noisy_shrunk_copy`). Returns (copy, its median diameter, the
    original's name); only the diameter of a copy is used, not its labels.
    """
    rng = np.random.default_rng(seed)
    copies = []
    for sample in samples:
        diameter = median_diameter(sample.labels)
        target = float(np.exp(rng.uniform(*np.log(SMALL_DIAMETERS))))
        if not SHRINK_FROM[0] <= diameter <= SHRINK_FROM[1] or target >= diameter:
            continue
        factor = target / diameter
        shape = (round(sample.image.shape[0] * factor), round(sample.image.shape[1] * factor))
        if min(shape) < MIN_COPY_SIDE:
            continue
        copies.append((noisy_shrunk_copy(sample, factor, rng), diameter * factor, sample.name))
    return copies


def sample_features(segmenter, samples: list[Sample], progress: Callable[[int, int], None] | None = None, *,
                    shrunk: bool = False, seed: int = 0):
    """(features, median diameters, domains, groups) of annotated samples, skipping ones without particles.

    ``shrunk``: with :func:`shrunk_copies` of them (group: ``<domain>/<name>`` of the original).
    ``progress(done, total)`` counts the copies too.
    """
    rows = [(s, median_diameter(s.labels), s.name) for s in samples]
    rows = [r for r in rows if np.isfinite(r[1])]
    if shrunk:
        rows += shrunk_copies([r[0] for r in rows], seed=seed)
    features = []
    for i, (sample, _, _) in enumerate(rows):
        features.append(size_features(sample.image, segmenter))
        if progress is not None:
            progress(i + 1, len(rows))
    return (np.stack(features), np.array([r[1] for r in rows]), [r[0].domain for r in rows],
            [f"{r[0].domain.removesuffix('-shrunk')}/{r[2]}" for r in rows])
