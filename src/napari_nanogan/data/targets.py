"""Training targets from instance labels: particle foreground and particle interior (seeds)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

#: Depth cap (px) of the interior target of the shipped models (``TrainConfig.seed_depth``).
SEED_DEPTH = 4.0


def interior_from_labels(labels: np.ndarray, *, max_depth: float | None = SEED_DEPTH, relative: float = 0.5) -> np.ndarray:
    """Seeds: pixels deep inside their particle.

    A pixel is interior when its distance to the particle's edge (background or a
    different particle) is at least ``min(max_depth, relative * particle's deepest
    distance)`` and at least 1, so every particle of 3x3 px or more keeps a seed while
    touching particles get seeds separated by several pixels. ``max_depth=None``
    removes the cap: every seed is its particle's inner core, however large the
    particle, so the seeds of big overlapping particles lie far apart.
    """
    if max_depth is None:
        max_depth = np.inf
    labels = np.asarray(labels)
    if labels.max() == 0:
        return np.zeros(labels.shape, bool)
    edge = find_boundaries(labels, connectivity=1, mode="inner")
    depth = ndi.distance_transform_edt((labels > 0) & ~edge)
    deepest = np.asarray(ndi.maximum(depth, labels, index=np.arange(labels.max() + 1)))
    threshold = np.maximum(1.0, np.minimum(max_depth, relative * deepest))
    return (labels > 0) & (depth >= threshold[labels]) & (depth > 0)


def contact_zone(labels: np.ndarray, *, radius: int = 3) -> np.ndarray:
    """Pixels within ``radius`` (chessboard distance) of two different particles.

    That is the gap between touching or nearly touching particles and the rims on
    either side of it: where a segmenter must draw the line that keeps two particles
    apart. Isolated particles have no contact zone.
    """
    labels = np.asarray(labels)
    if labels.max() == 0:
        return np.zeros(labels.shape, bool)
    size = 2 * radius + 1
    lab = labels.astype(np.int64)
    big = int(lab.max()) + 1
    highest = ndi.maximum_filter(lab, size=size, mode="constant", cval=0)
    lowest = ndi.minimum_filter(np.where(lab > 0, lab, big), size=size, mode="constant", cval=big)
    return (lowest != big) & (highest != lowest)


def targets_from_labels(labels: np.ndarray, *, seed_depth: float | None = SEED_DEPTH) -> np.ndarray:
    """[2, M, N] float32 targets: foreground and interior (``seed_depth``: its ``max_depth``)."""
    labels = np.asarray(labels)
    return np.stack([labels > 0, interior_from_labels(labels, max_depth=seed_depth)]).astype(np.float32)
