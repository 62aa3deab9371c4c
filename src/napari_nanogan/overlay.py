"""Overlay pictures of labels on images (numpy + PIL; for the CLI, docs and reports)."""

from __future__ import annotations

import numpy as np
from skimage.segmentation import find_boundaries


def label_colors(n: int, seed: int = 7) -> np.ndarray:
    """``n + 1`` bright RGB colours (uint8); colour 0 is black for the background."""
    rng = np.random.default_rng(seed)
    hsv_h = rng.uniform(0, 1, n + 1)
    import colorsys

    cols = np.array([colorsys.hsv_to_rgb(h, 0.85, 1.0) for h in hsv_h]) * 255
    cols[0] = 0
    return cols.astype(np.uint8)


def overlay(image: np.ndarray, labels: np.ndarray, *, alpha: float = 0.25, info_bar=None) -> np.ndarray:
    """RGB uint8 picture: the grey image with each particle tinted and outlined.

    ``info_bar`` (an :class:`~napari_nanogan.io.infobar.InfoBar`, optional): the rows left out of the
    segmentation are dimmed and a yellow line marks where they start.
    """
    grey = np.asarray(image, np.float32)
    lo, hi = np.percentile(grey, [0.5, 99.5])
    grey = np.clip((grey - lo) / max(hi - lo, 1e-6), 0, 1) * 255
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    colors = label_colors(int(labels.max())).astype(np.float32)
    inside = labels > 0
    rgb[inside] = (1 - alpha) * rgb[inside] + alpha * colors[labels[inside]]
    edges = find_boundaries(labels, mode="inner")
    rgb[edges] = colors[labels[edges]]
    if info_bar is not None:
        n = rgb.shape[0]
        start, stop, _ = info_bar.specimen_rows.indices(n)
        outside = np.ones(n, bool)
        outside[start:stop] = False
        rgb[outside] *= 0.5
        for row in (start - 1, stop):  # the line between specimen and info bar
            if 0 <= row < n:
                rgb[row] = (255, 220, 0)
    return rgb.astype(np.uint8)
