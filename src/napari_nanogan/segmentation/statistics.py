"""Group-norm statistics of a whole image, so that tiling does not change a segmentation.

Group norm normalises each input by its own statistics, so a network trained on crops
gives different results for different tile sizes. Images of at most
:data:`WHOLE_IMAGE_PIXELS` run in one pass with their own statistics; for larger ones,
one forward pass over four crops of the image (:func:`statistics_crops`) records every
group-norm layer's mean and variance, pooled over the crops, layer after layer
(:class:`~napari_nanogan.models.blocks.GroupNorm`), and every tile reuses them.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from ..models.blocks import GroupNorm
from ..normalize import normalize

#: Images (or specimen areas) of at most this many pixels run in one pass with their own statistics.
WHOLE_IMAGE_PIXELS = 1024 * 1024
#: Side (px) of the four crops that set the statistics of larger images.
STATISTICS_CROP = 512


@contextlib.contextmanager
def image_statistics(network: torch.nn.Module, crops: torch.Tensor | None):
    """Inside this context the network's group-norm layers use the statistics of ``crops``.

    ``crops`` [N, 1, S, S]: normalised crops of the image (:func:`statistics_crops`), or
    None to leave each input's own statistics. Networks without
    :class:`~napari_nanogan.models.blocks.GroupNorm` layers are left as they are. Not
    thread-safe for one network shared by concurrent calls.
    """
    layers = [m for m in network.modules() if isinstance(m, GroupNorm)]
    if crops is None or not layers:
        yield
        return
    try:
        for module in layers:
            module.record = True
        with torch.inference_mode():
            network(crops)
        for module in layers:
            module.record = False
        yield
    finally:
        for module in layers:
            module.record, module.statistics = False, None


def statistics_crops(image: np.ndarray, lo: float, hi: float, rows: slice, multiple: int) -> np.ndarray:
    """Normalised crops [4, 1, S, S] of the specimen that set the group-norm statistics.

    Four :data:`STATISTICS_CROP` crops spread over the specimen rows: fixed by the image
    alone, never by the tiling, so every tile size sees the same statistics.
    """
    spec = image[rows]
    h, w = spec.shape
    ch, cw = min(STATISTICS_CROP, h), min(STATISTICS_CROP, w)
    ys = np.linspace(0, h - ch, 2).round().astype(int)
    xs = np.linspace(0, w - cw, 2).round().astype(int)
    crops = [normalize(spec[y : y + ch, x : x + cw], lo, hi) for y in ys for x in xs]
    ph, pw = -(-crops[0].shape[0] // multiple) * multiple, -(-crops[0].shape[1] // multiple) * multiple
    return np.stack([np.pad(c, ((0, ph - c.shape[0]), (0, pw - c.shape[1])), mode="symmetric") for c in crops])[:, None]
