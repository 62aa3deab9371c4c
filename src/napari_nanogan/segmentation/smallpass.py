"""Small particles beside large ones: a second, finer pass over what a shrunk image left as background.

An image shrunk for its large particles (an estimate or a typed diameter several times the
model's) loses particles several times smaller than them: satellites on metal-powder
spheres, fine particles between coarse ones are a few pixels across at the network's
scale and vanish. After the shrunk pass, the image is segmented again at a finer scale,
and the particles of that pass that lie on the first pass's background, and are small
beside the first pass's particles, are added.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

#: The finer pass sees the image this many times larger than the shrunk one (at most at its own scale).
SMALL_PASS_ZOOM = 4.0
#: Images shrunk less than this (factor above it) get no finer pass: the first pass sees their small particles.
SMALL_PASS_BELOW = 0.5
#: A particle of the finer pass is added when at most this share of it lies on the first pass's particles
#: (a satellite on a sphere's outline lies partly under the sphere's outline as the shrunk pass draws it)
SMALL_PASS_MAX_OVERLAP = 0.35
#: and its equivalent diameter is under this share of the first pass's median (larger ones are pieces of
#: particles the first pass missed, not small particles).
SMALL_PASS_MAX_RATIO = 0.5
#: Added particles must be nearly convex (area over convex hull area): pieces of a large particle's
#: rim or halo are crescents.
SMALL_PASS_MIN_SOLIDITY = 0.8
#: Added particles must be compact, their largest inscribed circle's radius at least this share of
#: their equivalent radius (a disc: 1; an ellipse of axis ratio 0.64: 0.8): letters, strokes and slivers are thin,
SMALL_PASS_MIN_THICKNESS = 0.8
#: and the finer pass must be sure of them (its per-particle confidence).
SMALL_PASS_MIN_CONFIDENCE = 0.7
#: An added particle's contrast to its surroundings must have the sign of the first pass's particles'
#: and at least this share of their median contrast,
SMALL_PASS_MIN_CONTRAST = 0.4
#: and under this share of its pixels may be at the image's lowest or highest grey level (burnt-in
#: letters, scale bars and labels are pure black or white).
SMALL_PASS_MAX_SATURATED = 0.3


def small_pass_factor(factor: float) -> float | None:
    """The finer pass's resize factor for a first pass at ``factor``, or None where none is needed."""
    if factor > SMALL_PASS_BELOW:
        return None
    return min(1.0, factor * SMALL_PASS_ZOOM)


def add_small_particles(grey, labels, confidence, fg, interior, fine_labels, fine_confidence, fine_fg, fine_interior,
                        rows: slice = slice(None)):
    """The first pass's (labels, confidence, foreground, interior) with the finer pass's small particles on its background added.

    Particles keep their labels; the added ones are numbered after them, their
    foreground and interior probabilities taken from the finer pass over their pixels. Only
    an added particle's part on the first pass's background is placed, and of that its
    largest connected piece (a first-pass particle across it would leave it in pieces).
    ``rows``: the specimen rows (the info bar's are left out of the grey-level statistics).
    Where the first pass found nothing (no particle to compare with), or the finer pass gives
    no per-particle confidence, nothing is added.
    """
    n_fine = int(fine_labels.max())
    if n_fine == 0 or labels.max() == 0 or fine_confidence is None or len(fine_confidence) != n_fine:
        return labels, confidence, fg, interior  # nothing to add, to compare with, or to be sure of
    area = np.bincount(fine_labels.ravel(), minlength=n_fine + 1)[1:]
    covered = np.bincount(fine_labels.ravel(), (labels > 0).ravel(), minlength=n_fine + 1)[1:]
    found = np.bincount(labels.ravel())[1:]
    found = found[found > 0]
    largest = SMALL_PASS_MAX_RATIO * np.median(2 * np.sqrt(found / np.pi))
    keep = (area > 0) & (covered <= SMALL_PASS_MAX_OVERLAP * area) & (2 * np.sqrt(area / np.pi) < largest) \
        & (np.asarray(fine_confidence) >= SMALL_PASS_MIN_CONFIDENCE)
    if keep.any():
        keep &= _like_the_particles(np.asarray(grey, np.float32), labels, fine_labels, keep, rows)
    if keep.any():
        from skimage.measure import regionprops

        for region in regionprops(np.where(np.concatenate([[False], keep])[fine_labels], fine_labels, 0)):
            inscribed = ndi.distance_transform_edt(np.pad(region.image, 1)).max()
            keep[region.label - 1] = (region.solidity >= SMALL_PASS_MIN_SOLIDITY
                                      and inscribed >= SMALL_PASS_MIN_THICKNESS * np.sqrt(region.area / np.pi))
    if not keep.any():
        return labels, confidence, fg, interior
    start = int(labels.max())
    dtype = labels.dtype if start + int(keep.sum()) <= np.iinfo(labels.dtype).max else np.uint32
    new_ids = np.zeros(n_fine + 1, dtype)
    new_ids[1:][keep] = np.arange(start + 1, start + 1 + int(keep.sum()), dtype=dtype)
    added = _largest_piece(new_ids[np.where(labels == 0, fine_labels, 0)])
    place = added > 0
    labels = labels.astype(dtype, copy=True)
    labels[place] = added[place]
    fg, interior = fg.copy(), interior.copy()
    fg[place] = np.maximum(fg[place], fine_fg[place])
    interior[place] = np.maximum(interior[place], fine_interior[place])
    if confidence is not None:
        confidence = np.concatenate([np.asarray(confidence, np.float32),
                                     np.asarray(fine_confidence, np.float32)[keep]])
    return labels, confidence, fg, interior


def _largest_piece(labels: np.ndarray) -> np.ndarray:
    """``labels`` with each label kept only in its largest 4-connected piece."""
    from skimage.measure import label as connected

    pieces = connected(labels, background=0, connectivity=1)
    if pieces.max() == 0:
        return labels
    size = np.bincount(pieces.ravel())
    owner = np.zeros(len(size), labels.dtype)
    owner[pieces.ravel()] = labels.ravel()
    order = np.lexsort((-size[1:], owner[1:]))  # by label, the largest piece first
    first = np.ones(len(order), bool)
    first[1:] = owner[1:][order][1:] != owner[1:][order][:-1]
    kept = np.zeros(len(size), bool)
    kept[1:][order[first]] = True
    return np.where(kept[pieces], labels, 0)


def _like_the_particles(grey, labels, fine_labels, keep, rows: slice = slice(None)):
    """Which finer-pass particles (``keep``, one per label) look like the first pass's particles.

    Contrast: a particle's mean grey level minus the median of a ring 2-5 px around it
    (specimen pixels of no particle of either pass; the background's median where the ring
    is empty); the first pass's particles' median contrast is the reference. Marks burnt
    into a figure (letters, scale bars) are of the other polarity, or saturated: at the
    image's lowest or highest grey level, where the first pass's particles are not (a
    level they reach with 5 % or more of their pixels is the detector's clipping, not ink).
    """
    n = int(labels.max())
    specimen = np.zeros(grey.shape, bool)
    specimen[rows] = True
    free = specimen & (labels == 0) & (fine_labels == 0)
    particles = labels > 0
    background = float(np.median(grey[free])) if free.any() else float(np.median(grey[specimen]))
    reference = np.median(ndi.mean(grey, labels, np.arange(1, n + 1)) - background)
    if reference == 0:
        return np.zeros_like(keep)
    saturated = np.zeros(grey.shape, bool)
    for level in (grey[specimen].min(), grey[specimen].max()):
        if (grey[particles] == level).mean() < 0.05:
            saturated |= grey == level
    fine_index = np.flatnonzero(keep) + 1
    chosen = np.concatenate([[False], keep])[fine_labels]
    ring = ndi.grey_dilation(np.where(chosen, fine_labels, 0), size=11)
    ring = np.where(free & ~ndi.binary_dilation(fine_labels > 0, iterations=1), ring, 0)
    inside = ndi.mean(grey, fine_labels, fine_index)
    in_ring = ring > 0
    around = ndi.median(grey[in_ring], ring[in_ring], fine_index) if in_ring.any() else np.zeros(len(fine_index))
    empty = np.bincount(ring[in_ring], minlength=int(fine_labels.max()) + 1)[fine_index] == 0
    around = np.where(empty, background, around)
    contrast = (inside - around) / reference
    share = ndi.mean(saturated.astype(np.float32), fine_labels, fine_index)
    out = keep.copy()
    out[fine_index - 1] = (contrast >= SMALL_PASS_MIN_CONTRAST) & (share < SMALL_PASS_MAX_SATURATED)
    return out
