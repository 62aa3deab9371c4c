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
                   seed: int = 0) -> SizeModel:
    """Nearest-neighbour size model; the number of neighbours chosen by k-fold cross-validation.

    The score of each k is the mean over domains of the median |log error|, so a few
    images of one microscope count as much as hundreds of another's.
    """
    x = np.asarray(features, np.float64)
    y = np.log(np.asarray(diameters, np.float64))
    if len(y) < 2 * folds or not np.isfinite(y).all():
        raise ValueError(f"need at least {2 * folds} images with annotated particles to fit a size model")
    domains = np.asarray(domains)
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    fold = np.random.default_rng(seed).permutation(len(y)) % folds
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


def sample_features(segmenter, samples: list[Sample], progress: Callable[[int, int], None] | None = None):
    """(features, median diameters, domains) of annotated samples, skipping ones without particles."""
    feats, diams, domains = [], [], []
    for i, sample in enumerate(samples):
        d = median_diameter(sample.labels)
        if np.isfinite(d):
            feats.append(size_features(sample.image, segmenter))
            diams.append(d)
            domains.append(sample.domain)
        if progress is not None:
            progress(i + 1, len(samples))
    return np.stack(feats), np.array(diams), domains
