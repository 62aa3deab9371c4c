"""From probability maps to one label per particle: seeded watershed per connected component."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..config import PostprocessConfig, SeedMethod

_FOUR = ndi.generate_binary_structure(2, 1)


_CHUNK_PIXELS = 1 << 22  # rows per pass of the whole-image steps: about 4 MP (32 MB of int64 counts)


def _row_chunks(shape: tuple[int, ...]) -> tuple[range, int]:
    step = max(1, _CHUNK_PIXELS // max(shape[1], 1))
    return range(0, shape[0], step), step


def drop_small_and_renumber(labels: np.ndarray, min_area: int) -> np.ndarray:
    """Zero labels under ``min_area`` pixels and renumber the rest 1..K in order, in place.

    Counting and relabelling go a band of rows at a time, so the extra memory is a few
    MB whatever the image size (``np.bincount`` of a whole 8k x 8k label image would
    make a 512 MB int64 copy).
    """
    n = int(labels.max()) if labels.size else 0
    if n == 0:
        return labels
    counts = np.zeros(n + 1, np.int64)
    starts, step = _row_chunks(labels.shape)
    for r in starts:
        counts += np.bincount(labels[r : r + step].ravel(), minlength=n + 1)
    keep = counts >= max(min_area, 1)
    keep[0] = False
    if keep[1:].all():
        return labels  # nothing dropped, no gaps
    lut = np.zeros(n + 1, labels.dtype)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=labels.dtype)
    for r in starts:
        labels[r : r + step] = lut[labels[r : r + step]]
    return labels


def instances_from_probabilities(
    foreground: np.ndarray,
    interior: np.ndarray,
    config: PostprocessConfig = PostprocessConfig(),
) -> np.ndarray:
    """Instance labels from foreground and interior (seed) probabilities.

    Parameters
    ----------
    foreground, interior : ndarray of shape (M, N)
        Probabilities in [0, 1] (float) or quantised to uint8 (0-255).

    Returns
    -------
    labels : ndarray of shape (M, N), uint32
        0 is background; particles are numbered 1..K, one connected component after the
        other (components in raster order of their first pixel).

    Each 4-connected foreground component is split by a watershed on the interior
    probability, seeded by the 4-connected interior blobs inside it; a component
    without a seed stays one particle. With ``config.merge_depth`` > 0, regions of one
    component whose dividing pass is shallower than that are merged again
    (:func:`merge_shallow_regions`). Work happens per component bounding box, so
    memory follows the largest agglomerate, not the image size.
    """
    from skimage.segmentation import watershed

    scale = 255.0 if foreground.dtype == np.uint8 else 1.0
    fg = foreground >= config.fg_threshold * scale
    seeds_mask = interior >= config.seed_threshold * scale
    fg |= seeds_mask
    # the component image becomes the output in place: particles are written as negative
    # labels, so a box never mistakes a finished particle for the component it looks for
    labels, _ = ndi.label(fg, structure=_FOUR, output=np.int32)
    del fg
    next_label = 1
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        target = labels[box]
        comp = target == index
        relief = np.asarray(interior[box], np.float32) / scale
        if config.seed_method in (SeedMethod.DISTANCE, SeedMethod.COMBINED):
            depth = ndi.distance_transform_edt(np.pad(comp, 1))[1:-1, 1:-1].astype(np.float32)
            depth /= max(float(depth.max()), 1.0)
            relief = depth if config.seed_method == SeedMethod.DISTANCE else 0.5 * (relief + depth)
        if config.smooth_sigma > 0:
            relief = ndi.gaussian_filter(relief, config.smooth_sigma)
        if config.seed_method != SeedMethod.COMPONENTS:
            seeds, n_seeds = _peak_seeds(relief, comp, config)
        else:
            seeds, n_seeds = _component_seeds(seeds_mask[box] & comp, config.min_seed_area)
        if n_seeds <= 1:
            target[comp] = -next_label
            next_label += 1
            continue
        split = watershed(-relief, markers=seeds, mask=comp, connectivity=1)
        if config.merge_depth > 0:
            split = merge_shallow_regions(split, relief, config.merge_depth)
        if config.merge_interior > 0:
            split = merge_through(split, np.asarray(interior[box], np.float32) / scale, config.merge_interior)
        target[comp] = -(split[comp].astype(np.int32) + (next_label - 1))
        next_label += n_seeds
    del seeds_mask
    np.negative(labels, out=labels)
    return drop_small_and_renumber(labels.view(np.uint32), config.min_area)


def merge_shallow_regions(regions: np.ndarray, relief: np.ndarray, depth: float) -> np.ndarray:
    """Merge neighbouring regions separated by a pass less than ``depth`` below their lower peak.

    Parameters
    ----------
    regions : ndarray of int, shape (M, N)
        Labels 1..K (0 = outside), e.g. a watershed of ``-relief``.
    relief : ndarray of float, shape (M, N)
        High inside particles, low on the boundaries between them.
    depth : float
        The smallest dynamic kept: for two 4-neighbouring regions, the pass is the
        highest value of ``min(relief[p], relief[q])`` over pixel pairs (p, q) across
        their border, and they merge when ``min(peak_a, peak_b) - pass < depth``.

    Returns
    -------
    ndarray
        ``regions`` with each merged group carrying the label of one of its members
        (labels may then have gaps). Passes are taken from the highest down, with the
        peaks of merged groups updated, so the result does not depend on label order
        (except between passes of exactly equal height).
    """
    if depth <= 0:
        return regions
    return _merge(regions, relief, lambda low_peak, height: low_peak - height < depth)


def merge_through(regions: np.ndarray, relief: np.ndarray, level: float) -> np.ndarray:
    """Merge neighbouring regions whose pass (as in :func:`merge_shallow_regions`) is at least ``level``:
    ``relief`` stays that high all the way across their border, as one particle's interior does."""
    return _merge(regions, relief, lambda low_peak, height: height >= level)


def _merge(regions: np.ndarray, relief: np.ndarray, merges) -> np.ndarray:
    """Union of neighbouring regions, passes from the highest down, where ``merges(lower peak, pass)``."""
    n = int(regions.max())
    if n < 2:
        return regions
    flat = regions.ravel().astype(np.int64)
    peak = np.full(n + 1, -np.inf, np.float64)
    np.maximum.at(peak, flat, relief.ravel().astype(np.float64))
    lows, highs, passes = [], [], []
    for a, b, ra, rb in ((regions[:, :-1], regions[:, 1:], relief[:, :-1], relief[:, 1:]),
                         (regions[:-1], regions[1:], relief[:-1], relief[1:])):
        border = (a != b) & (a > 0) & (b > 0)
        lows.append(np.minimum(a[border], b[border]))
        highs.append(np.maximum(a[border], b[border]))
        passes.append(np.minimum(ra[border], rb[border]))
    pair = np.concatenate(lows).astype(np.int64) * (n + 1) + np.concatenate(highs)
    if len(pair) == 0:
        return regions
    height = np.concatenate(passes).astype(np.float64)
    keys, inverse = np.unique(pair, return_inverse=True)
    top = np.full(len(keys), -np.inf)
    np.maximum.at(top, inverse, height)  # the pass between each pair of regions
    parent = np.arange(n + 1)

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for k in np.argsort(-top, kind="stable"):
        a, b = root(int(keys[k] // (n + 1))), root(int(keys[k] % (n + 1)))
        if a != b and merges(min(peak[a], peak[b]), top[k]):
            parent[b] = a
            peak[a] = max(peak[a], peak[b])
    lut = np.array([root(i) for i in range(n + 1)], regions.dtype)
    return lut[regions]


def _component_seeds(mask: np.ndarray, min_area: int) -> tuple[np.ndarray, int]:
    """4-connected blobs of ``mask`` as seeds; blobs under ``min_area`` dropped unless all are."""
    seeds, n = ndi.label(mask, structure=_FOUR)
    if n > 1 and min_area > 1:
        sizes = np.bincount(seeds.ravel())
        keep = sizes >= min_area
        keep[0] = False
        if keep.any():
            remap = np.zeros(len(sizes), np.int32)
            remap[keep] = np.arange(1, keep.sum() + 1)
            return remap[seeds], int(keep.sum())
    return seeds, n


def _peak_seeds(relief: np.ndarray, comp: np.ndarray, config: PostprocessConfig) -> tuple[np.ndarray, int]:
    from skimage.feature import peak_local_max

    threshold = config.seed_threshold if config.seed_method == SeedMethod.PEAKS else 0.0
    peaks = peak_local_max(relief, min_distance=config.min_distance, threshold_abs=threshold,
                           labels=comp.astype(np.int32), exclude_border=False)
    seeds = np.zeros(comp.shape, np.int32)
    if len(peaks):
        seeds[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return seeds, len(peaks)
