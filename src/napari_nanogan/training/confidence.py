"""Fitting the confidence model: which segmented particles match annotated ones (``nanogan fit-confidence``)."""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from ..data.datasets import Sample
from ..metrics.segmentation import MIN_AREA, iou_matrix
from ..segmentation import segment
from ..segmentation.segmenter import passes_only
from ..segmentation.confidence import FEATURES, ConfidenceModel, particle_features


def matched(truth: np.ndarray, pred: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """For particles 1..K of ``pred``: whether one annotated particle overlaps it at IoU >= ``threshold``.

    (At IoU above 0.5 a match is one-to-one, so this is the instance F1's matching.)
    """
    k = int(pred.max()) if pred.size else 0
    out = np.zeros(k, bool)
    if k == 0 or truth.max() == 0:
        return out
    ious = iou_matrix(truth, pred)  # [truth instances present, predicted instances present]
    present = np.unique(pred)
    present = present[present > 0]
    out[present - 1] = ious.max(axis=0) >= threshold
    return out


def sample_examples(segmenter, samples: list[Sample], *, diameter=None,
                    progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(features [N, F], matched [N], image index [N], annotated particles) of every particle the segmenter finds
    in ``samples``, segmented as a user's images are (``diameter``: as :func:`~napari_nanogan.segmentation.segment`
    takes it). Annotated particles count as the instance scores count them (16 px or more)."""
    feats, targets, images, annotated = [], [], [], 0
    every = dataclasses.replace(segmenter.postprocess, min_confidence=0.0) if hasattr(segmenter, "postprocess") else None
    segmenter = passes_only(segmenter)  # each pass's particles, not those a final confidence model keeps
    for i, s in enumerate(samples):
        # one pass's particles: the finer pass's additions have that pass's own maps and confidence; at the
        # estimate's scale, not one the confidence being refitted chose; every particle, those under the
        # min_confidence of the confidence being replaced too
        result = segment(s.image, segmenter, info_bar=None, diameter=diameter, small_pass=False, scale_check=False,
                         polarity_check=False, postprocess=every)
        f = particle_features(result.labels, result.foreground, result.interior)
        feats.append(f)
        targets.append(matched(s.labels, result.labels))
        images.append(np.full(len(f), i))
        annotated += int((np.bincount(s.labels.ravel())[1:] >= MIN_AREA).sum())
        if progress is not None:
            progress(i + 1, len(samples))
    return np.concatenate(feats), np.concatenate(targets), np.concatenate(images), annotated


def kept_by(segmenter, features: np.ndarray) -> np.ndarray:
    """Which rows of :func:`sample_examples`' features are particles that ``segmenter``'s own confidence model
    keeps (at its ``postprocess.min_confidence``): those a final confidence model judges."""
    model, threshold = segmenter.confidence_model, segmenter.postprocess.min_confidence
    if threshold <= 0:
        return np.ones(len(features), bool)
    # without a model the passes' confidence is the mean foreground (the first feature)
    return (model.predict(features) if model is not None else features[:, 0]) >= threshold


def choose_min_confidence(probability: np.ndarray, matched_: np.ndarray, area: np.ndarray, annotated: int,
                          candidates=np.arange(0.0, 0.55, 0.05)) -> tuple[float, dict]:
    """The confidence below which dropping particles gives the best instance F1, and F1 at each candidate.

    Particles of under 16 px count neither way, as in the instance scores; a threshold is
    taken only where it adds at least 0.005 to F1 over keeping every particle.
    """
    counted = area >= MIN_AREA
    f1 = {}
    for t in candidates:
        kept = counted & (probability >= t)
        tp, fp = int((kept & matched_).sum()), int((kept & ~matched_).sum())
        f1[round(float(t), 2)] = 2 * tp / max(2 * tp + fp + (annotated - tp), 1)
    best = max(f1, key=f1.get)
    return (best if f1[best] >= f1[0.0] + 0.005 else 0.0), {k: round(v, 4) for k, v in f1.items()}


def _logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iterations: int = 50) -> tuple[np.ndarray, float]:
    """Weights and bias of an L2-regularised logistic regression (Newton's method)."""
    n, f = x.shape
    a = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(f + 1)
    reg = np.diag([l2 * n] * f + [0.0])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(a @ w)))
        grad = a.T @ (p - y) + reg @ w
        hess = (a * (p * (1 - p))[:, None]).T @ a + reg + 1e-9 * np.eye(f + 1)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> dict:
    """Expected calibration error, Brier score and ROC AUC of probabilities ``p`` for outcomes ``y``."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    ece = sum(abs(p[which == b].mean() - y[which == b].mean()) * (which == b).mean()
              for b in range(bins) if (which == b).any())
    order = np.argsort(p)
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    pos, neg = y.sum(), (~y).sum()
    auc = (ranks[y].sum() - pos * (pos + 1) / 2) / max(pos * neg, 1)
    return {"particles": int(len(p)), "matched_share": round(float(y.mean()), 4), "ece": round(float(ece), 4),
            "brier": round(float(np.mean((p - y) ** 2)), 4), "auc": round(float(auc), 4)}


def fit_confidence(features: np.ndarray, targets: np.ndarray, images: np.ndarray, *, folds: int = 5,
                   seed: int = 0, names: tuple[str, ...] | None = None,
                   scored: np.ndarray | None = None) -> tuple[ConfidenceModel, np.ndarray]:
    """The confidence model on the columns ``names`` of ``features`` (all of them by default; features of
    :func:`~napari_nanogan.segmentation.confidence.particle_features` are named by ``FEATURES``), and each
    particle's probability from a model fitted without its image.

    Its reliability is cross-validated over images (``metrics["cross_validated"]``), over the
    particles ``scored`` marks (all of them by default): those the model will judge.
    """
    x = np.asarray(features, np.float64)
    if names is not None:
        x = x[:, [FEATURES.index(name) for name in names]]
    y = np.asarray(targets, bool)
    if len(y) < 20 or y.all() or not y.any():
        raise ValueError("need at least 20 segmented particles, some matched and some not, to fit a confidence")
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    fold = np.random.default_rng(seed).permutation(int(images.max()) + 1) % folds
    held = np.zeros(len(y))
    for f in range(folds):
        test = fold[images] == f
        if test.any() and (~test).any() and y[~test].any() and not y[~test].all():
            w, b = _logistic(z[~test], y[~test].astype(float))
            held[test] = 1 / (1 + np.exp(-(z[test] @ w + b)))
    w, b = _logistic(z, y.astype(float))
    used = tuple(names) if names is not None else FEATURES[: x.shape[1]]
    scored = np.ones(len(y), bool) if scored is None else np.asarray(scored, bool)
    metrics = {"features": list(used), "cross_validated": reliability(held[scored], y[scored]),
               "uncalibrated_mean_foreground": reliability(x[scored, 0], y[scored])}
    return ConfidenceModel(mean, std, w, b, metrics, features=used), held
