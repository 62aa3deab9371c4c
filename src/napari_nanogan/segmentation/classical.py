"""Classical baseline: Otsu threshold + distance-transform watershed (numpy/scikit-image only).

The yardstick the learned segmenter has to beat; also a fallback that needs no model.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..config import ClassicalConfig, Polarity
from ..io.images import as_grey
from .postprocess import drop_small_and_renumber

_FOUR = ndi.generate_binary_structure(2, 1)


def otsu_watershed(image: np.ndarray, config: ClassicalConfig = ClassicalConfig(), rows: slice = slice(None)) -> np.ndarray:
    """Instance labels by Otsu thresholding and a distance-transform watershed."""
    from skimage.feature import peak_local_max
    from skimage.filters import threshold_otsu
    from skimage.segmentation import watershed

    grey = as_grey(image).astype(np.float32)
    smooth = ndi.gaussian_filter(grey, config.sigma) if config.sigma > 0 else grey
    t = threshold_otsu(smooth[rows])
    bright = smooth > t
    if config.polarity == Polarity.BRIGHT:
        fg = bright
    elif config.polarity == Polarity.DARK:
        fg = ~bright
    else:  # minority
        fg = bright if bright[rows].mean() <= 0.5 else ~bright
    keep = np.zeros_like(fg)
    keep[rows] = True
    fg &= keep
    fg = ndi.binary_opening(fg, _FOUR)
    dist = ndi.distance_transform_edt(fg)
    comps, _ = ndi.label(fg, _FOUR)
    peaks = peak_local_max(dist, min_distance=config.min_distance, labels=comps, exclude_border=False)
    markers = np.zeros(fg.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-dist, markers, mask=fg, connectivity=1).astype(np.uint32)
    # components without a peak keep their own label
    orphan = fg & (labels == 0)
    if orphan.any():
        extra, n = ndi.label(orphan, _FOUR)
        labels[orphan] = extra[orphan].astype(np.uint32) + labels.max()
    return drop_small_and_renumber(labels, config.min_area)
