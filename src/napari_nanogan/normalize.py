"""Robust intensity normalisation shared by training and inference (numpy only)."""

from __future__ import annotations

import numpy as np

LOW_PERCENTILE = 1.0
HIGH_PERCENTILE = 99.8
_MAX_SAMPLES = 2_000_000


def intensity_range(image: np.ndarray, rows: slice = slice(None)) -> tuple[float, float]:
    """Robust (low, high) grey levels from percentiles of the specimen rows.

    Large images are subsampled on a regular grid (at most ~2 M pixels), so the cost
    and memory do not grow with the image. Only the grid is read, so ``image`` (2D)
    may be a lazy array (zarr, dask) larger than memory.
    """
    if not hasattr(image, "shape") or len(image.shape) != 2:
        image = np.asarray(image)
    start, stop, _ = rows.indices(image.shape[0])
    size = max(stop - start, 0) * image.shape[1]
    if size == 0:
        raise ValueError("no specimen pixels to normalise")
    step = max(1, int(np.ceil(np.sqrt(size / _MAX_SAMPLES))))
    sample = np.asarray(image[start:stop:step, ::step]).astype(np.float32)
    if not np.isfinite(sample).all():
        raise ValueError("the image contains NaN or infinite values; replace them with grey levels first")
    lo, hi = np.percentile(sample, [LOW_PERCENTILE, HIGH_PERCENTILE])
    if hi <= lo:  # (nearly) constant image
        lo, hi = float(sample.min()), float(sample.max())
        if hi <= lo:
            hi = lo + 1.0
    return float(lo), float(hi)


def normalize(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``low``/``high`` to 0/1 as float32 (values outside are kept, clipped to [-1, 2])."""
    out = (np.asarray(image, np.float32) - np.float32(low)) / np.float32(high - low)
    return np.clip(out, -1.0, 2.0, out=out)
