"""A confidence per particle: the probability that a segmented particle is a real, annotated one.

Features of each particle come from the network's own maps: how sure the foreground is
inside it (mean and low quantile), how clear its interior (seed) is, how sharp its
outline, its size and how much of its outline it shares with other particles; and, for
models fitted with it, from its shape: its solidity (area over convex hull area), low for
crescents, shards and particles merged with a neighbour. A logistic model on them, fitted
on validation images (``nanogan fit-confidence``), gives the probability that the particle
matches an annotated particle at IoU >= 0.5: a calibrated probability (its reliability is
in the model card). Without a fitted model the confidence is the mean foreground
probability inside the particle: a score that ranks particles, not a probability.

A segmenter holds up to two: the maps-only one judges every pass's particles, and the scale
and polarity checks compare its mean; a final one (``nanogan fit-confidence --shape``,
shipped with ``default``) sees the solidity too and gives the final particles the
confidence reported (:func:`~napari_nanogan.segmentation.marks.judge_final`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

#: Every feature :func:`particle_features` computes, in its columns' order. A confidence model uses those it
#: was fitted on (``ConfidenceModel.features``).
FEATURES = ("mean_foreground", "low_foreground", "max_interior", "edge_contrast", "log_area", "shared_outline",
            "solidity")
#: Those ``nanogan fit-confidence`` fits for the passes: the network's maps alone (with the solidity there too,
#: the scale and polarity checks did worse on unfamiliar images: docs/alternatives.md).
FIT_FEATURES = FEATURES[:6]


def solidity(labels: np.ndarray, n: int, area: np.ndarray | None = None) -> np.ndarray:
    """[n] solidity of particles 1..n of ``labels``: pixel count (``area``, where known) over the area of the
    convex hull of the pixels' squares (1 for a rectangle; 1 for a label with no pixels). Only outline pixels
    carry the hull."""
    from scipy.spatial import ConvexHull
    from scipy.spatial import QhullError

    labels = np.asarray(labels).astype(np.intp, copy=False)
    out = np.ones(n)
    if n == 0:
        return out
    pad = np.pad(labels, 1)
    centre = pad[1:-1, 1:-1]
    outline = (centre > 0) & ((pad[:-2, 1:-1] != centre) | (pad[2:, 1:-1] != centre) | (pad[1:-1, :-2] != centre)
                              | (pad[1:-1, 2:] != centre))
    ys, xs = np.nonzero(outline)
    which = labels[ys, xs]
    order = np.argsort(which, kind="stable")
    points, which = np.stack([ys, xs], 1)[order].astype(np.float64), which[order]
    if area is None:
        area = np.bincount(labels.ravel(), minlength=n + 1)[1 : n + 1]
    bounds = np.searchsorted(which, np.arange(1, n + 2))
    corners = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])
    for k in range(n):
        if bounds[k + 1] > bounds[k]:
            square_corners = (points[bounds[k] : bounds[k + 1], None, :] + corners).reshape(-1, 2)
            try:
                out[k] = area[k] / ConvexHull(square_corners).volume
            except QhullError:  # (cannot happen for whole pixels' corners; kept at 1)
                pass
    return out


def particle_features(labels: np.ndarray, foreground: np.ndarray, interior: np.ndarray, *,
                      shape: bool = True) -> np.ndarray:
    """[K, len(FEATURES)] float features of particles 1..K of ``labels`` (probability maps as uint8 0-255 or 0-1);
    ``shape=False`` leaves the solidity out (1 for every particle: a model that does not use it)."""
    labels = np.asarray(labels)
    n = int(labels.max()) if labels.size else 0
    if n == 0:
        return np.zeros((0, len(FEATURES)))
    scale = 255.0 if np.asarray(foreground).dtype == np.uint8 else 1.0
    fg = np.asarray(foreground, np.float32) / scale
    inside = labels > 0
    lab = labels[inside].astype(np.intp)  # every per-particle sum runs over particle pixels only
    fg_in = fg[inside]
    seed_in = np.asarray(interior, np.float32)[inside] / scale
    area = np.bincount(lab, minlength=n + 1)[1:].astype(float)
    mean_fg = np.bincount(lab, fg_in, minlength=n + 1)[1:] / np.maximum(area, 1)
    low_fg = np.full(n + 1, np.inf, np.float32)
    np.minimum.at(low_fg, lab, fg_in)
    low_fg[~np.isfinite(low_fg)] = 0.0  # label numbers with no pixels
    max_seed = np.zeros(n + 1)
    np.maximum.at(max_seed, lab, seed_in)
    # outline: the particle's pixels next to another label; shared: next to another particle
    nb_max = ndi.maximum_filter(labels, size=3)[inside]
    nb_min = ndi.minimum_filter(labels, size=3)[inside]
    nb_min_particle = ndi.minimum_filter(np.where(inside, labels, n + 1), size=3)[inside]
    own = labels[inside]
    edge = (nb_max != own) | (nb_min != own)
    touching = (nb_max > own) | (nb_min_particle < own)
    edge_count = np.bincount(lab, edge, minlength=n + 1)[1:]
    outside = ndi.maximum_filter(np.where(inside, 0, fg), size=3)[inside]
    contrast = np.bincount(lab, edge * (fg_in - outside), minlength=n + 1)[1:] / np.maximum(edge_count, 1)
    shared = np.bincount(lab, touching, minlength=n + 1)[1:] / np.maximum(edge_count, 1)
    solid = solidity(labels, n, area) if shape else np.ones(n)
    return np.stack([mean_fg, low_fg[1:].astype(np.float64), max_seed[1:], contrast, np.log(np.maximum(area, 1)), shared,
                     solid], 1)


@dataclass(frozen=True)
class ConfidenceModel:
    """Logistic regression of "matches an annotated particle" on standardised features (``features``: the names
    of those it was fitted on, of :data:`FEATURES`)."""

    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    bias: float
    metrics: dict
    features: tuple = FEATURES

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Probabilities of particles from :func:`particle_features`' [K, len(FEATURES)] columns (or the model's own)."""
        x = np.asarray(features, np.float64)
        if x.shape[-1] == len(FEATURES) and tuple(self.features) != FEATURES:  # all the columns: take its own
            x = x[..., [FEATURES.index(name) for name in self.features]]
        z = (x - self.mean) / self.std
        return 1.0 / (1.0 + np.exp(-(z @ self.weights + self.bias)))

    def to_dict(self) -> dict:
        import torch

        tensors = {k: torch.from_numpy(np.ascontiguousarray(getattr(self, k), np.float32))
                   for k in ("mean", "std", "weights")}
        return {**tensors, "bias": float(self.bias), "features": list(self.features), "metrics": dict(self.metrics)}

    @classmethod
    def from_dict(cls, data: dict) -> "ConfidenceModel":
        names = tuple(data.get("features", []))
        arr = {k: np.asarray(data[k], np.float64) for k in ("mean", "std", "weights")}
        if not names or not set(names) <= set(FEATURES) or any(len(v) != len(names) for v in arr.values()):
            raise ValueError("this confidence model was fitted on other features; refit it with `nanogan fit-confidence`")
        return cls(**arr, bias=float(data["bias"]), metrics=dict(data.get("metrics", {})), features=names)


def particle_confidence(labels: np.ndarray, foreground: np.ndarray, interior: np.ndarray,
                        model: ConfidenceModel | None = None) -> np.ndarray:
    """Confidence of particles 1..K (index k - 1 for label k), in [0, 1]: the model's probability, or without
    one the mean foreground probability inside each particle."""
    features = particle_features(labels, foreground, interior, shape=model is not None and "solidity" in model.features)
    if model is None or not len(features):
        return features[:, 0].astype(np.float32) if len(features) else np.zeros(0, np.float32)
    return model.predict(features).astype(np.float32)


def drop_doubtful(labels: np.ndarray, confidence: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """``labels`` without the particles under ``threshold`` confidence, renumbered 1..K in order, and their confidence."""
    keep = np.concatenate([[False], np.asarray(confidence) >= threshold])
    lut = np.zeros(len(keep), labels.dtype)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=labels.dtype)
    return lut[labels], np.asarray(confidence)[keep[1:]]
