"""Marks burnt into a figure are not particles.

Scale bars, panel letters, label boxes and arrows drawn into a figure are ink: pixels at
the image's lowest or highest grey level, over most of their area. Particles seldom are:
where the typical particle has ``config.CLIPPING_SHARE`` or more of its pixels at that
level, the level is the detector's clipping and nothing is dropped for it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .. import config as _config
from .confidence import drop_doubtful, particle_confidence


def ink_particles(grey: np.ndarray, labels: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
    """Which particles 1..K of ``labels`` (index k - 1) are ink: ``config.INK_SHARE`` or more of their pixels at an
    extreme grey level of the specimen rows that the median particle has under ``config.CLIPPING_SHARE`` of."""
    n = int(labels.max()) if labels.size else 0
    ink = np.zeros(n, bool)
    specimen = np.asarray(grey)[rows]
    if n == 0 or specimen.size == 0:
        return ink
    grey, index = np.asarray(grey), np.arange(1, n + 1)
    for level in (specimen.min(), specimen.max()):
        share = ndi.mean((grey == level).astype(np.float32), labels, index)
        if np.median(share) < _config.CLIPPING_SHARE:
            ink |= share >= _config.INK_SHARE
    return ink


def drop_ink(grey: np.ndarray, labels: np.ndarray, confidence: np.ndarray | None, rows: slice = slice(None)
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """``labels`` without the particles :func:`ink_particles` finds, renumbered 1..K in order, and their confidence."""
    ink = ink_particles(grey, labels, rows)
    if not ink.any():
        return labels, confidence
    keep = np.concatenate([[False], ~ink])
    lut = np.zeros(len(keep), labels.dtype)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=labels.dtype)
    return lut[labels], None if confidence is None else np.asarray(confidence)[~ink]


def judge(grey: np.ndarray, labels: np.ndarray, foreground: np.ndarray, interior: np.ndarray, network,
          min_confidence: float, rows: slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
    """(labels, confidence) of the particles found, as every path keeps them: the confidence of each
    (``network``'s confidence model), those under ``min_confidence`` dropped, and the marks (:func:`drop_ink`)."""
    confidence = particle_confidence(labels, foreground, interior, network.confidence_model)
    if min_confidence > 0 and confidence.size:
        labels, confidence = drop_doubtful(labels, confidence, min_confidence)
    return drop_ink(grey, labels, confidence, rows)
