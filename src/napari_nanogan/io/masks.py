"""Particle masks: reading, validating, and turning them into instance labels (numpy only)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from .images import ImageReadError

_FOUR = ndi.generate_binary_structure(2, 1)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a mask or label image as a 2D integer array (RGB masks: any channel > 0)."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            data = tifffile.imread(path)
        else:
            from PIL import Image

            with Image.open(path) as im:
                data = np.asarray(im)
    except Exception as exc:
        raise ImageReadError(f"{path}: cannot read as a mask ({type(exc).__name__}: {exc})") from None
    if data.ndim == 3 and data.shape[-1] in (3, 4):
        data = (data[..., :3] > 0).any(-1).astype(np.uint8)
    if data.ndim != 2:
        raise ImageReadError(f"{path}: expected a 2D mask, got shape {data.shape}")
    return data


def instance_labels(mask: np.ndarray) -> np.ndarray:
    """Instance labels (int32) from a mask: label images are kept, binary masks split into 4-connected parts.

    A mask with at most two distinct values is binary; its 4-connected foreground
    components are the particles (touching particles annotated with 1-px gaps come apart).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2D mask, got shape {mask.shape}")
    values = np.unique(mask)
    if len(values) <= 2:
        return ndi.label(mask > 0, structure=_FOUR)[0].astype(np.int32)
    return mask.astype(np.int32)


def check_mask(mask: np.ndarray) -> np.ndarray:
    """A binary or instance-label mask as instance labels, or a ``ValueError`` saying why it is not one.

    RGB(A) masks count any non-zero channel as particle; booleans and whole-number floats
    are accepted; negative labels, fractions, NaN and non-numeric types are refused.
    """
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] in (3, 4):
        mask = (mask[..., :3] > 0).any(-1)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be 2D (binary or instance labels), got shape {mask.shape}")
    if mask.dtype == bool:
        mask = mask.astype(np.uint8)
    if np.issubdtype(mask.dtype, np.floating):
        if not np.isfinite(mask).all() or not np.array_equal(mask, np.round(mask)):
            raise ValueError("a float mask must hold whole numbers (0 = background, labels or 1 = particle)")
        mask = mask.astype(np.int64)
    if not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(f"unsupported mask type {mask.dtype}")
    if mask.size and mask.min() < 0:
        raise ValueError("mask labels must be >= 0")
    return instance_labels(mask)
