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


#: Recorded group-norm statistics: (mean, var) per group of each group-norm layer, in module order.
Statistics = list[tuple[np.ndarray, np.ndarray]]


@contextlib.contextmanager
def image_statistics(network: torch.nn.Module, crops: torch.Tensor | None, *, statistics: Statistics | None = None):
    """Inside this context the network's group-norm layers use the statistics of ``crops``.

    ``crops`` [N, 1, S, S]: normalised crops of the image (:func:`statistics_crops`), or
    None to leave each input's own statistics. ``statistics`` (instead of ``crops``):
    ones recorded before by :func:`record_statistics`, used as they are (every block of
    a large image gets the same). Networks without
    :class:`~napari_nanogan.models.blocks.GroupNorm` layers are left as they are. Not
    thread-safe for one network shared by concurrent calls.
    """
    layers = [m for m in network.modules() if isinstance(m, GroupNorm)]
    if (crops is None and statistics is None) or not layers:
        yield
        return
    try:
        if statistics is not None:
            if len(statistics) != len(layers):
                raise ValueError(f"{len(statistics)} recorded statistics for {len(layers)} group-norm layers")
            device = next(network.parameters()).device
            for module, (mean, var) in zip(layers, statistics):
                module.statistics = (torch.as_tensor(mean, device=device), torch.as_tensor(var, device=device))
        else:
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


def record_statistics(network: torch.nn.Module, crops: np.ndarray) -> Statistics:
    """The group-norm statistics of ``crops`` [N, 1, S, S] (:func:`statistics_crops`) as plain arrays.

    What :func:`image_statistics` records, kept: an image cut into blocks gives every
    block these, so that blocks agree with each other and with the whole image. Empty
    for networks without group-norm layers.
    """
    from ..models.runtime import working_format

    device = next(network.parameters()).device
    tensor = torch.from_numpy(np.ascontiguousarray(crops)).to(device).contiguous(memory_format=working_format(device))
    with image_statistics(network, tensor):
        return [(m.statistics[0].cpu().numpy(), m.statistics[1].cpu().numpy())
                for m in network.modules() if isinstance(m, GroupNorm)]


def statistics_crops(image: np.ndarray, lo: float, hi: float, rows: slice, multiple: int) -> np.ndarray:
    """Normalised crops [4, 1, S, S] of the specimen that set the group-norm statistics.

    Four :data:`STATISTICS_CROP` crops spread over the specimen rows: fixed by the image
    alone, never by the tiling, so every tile size sees the same statistics. Only the
    crops are read, so ``image`` may be a lazy array (zarr, dask) of any size.
    """
    start, stop, _ = rows.indices(image.shape[0])
    h, w = stop - start, image.shape[1]
    ch, cw = min(STATISTICS_CROP, h), min(STATISTICS_CROP, w)
    ys = np.linspace(0, h - ch, 2).round().astype(int) + start
    xs = np.linspace(0, w - cw, 2).round().astype(int)
    crops = [normalize(np.asarray(image[y : y + ch, x : x + cw]), lo, hi) for y in ys for x in xs]
    ph, pw = -(-crops[0].shape[0] // multiple) * multiple, -(-crops[0].shape[1] // multiple) * multiple
    return np.stack([np.pad(c, ((0, ph - c.shape[0]), (0, pw - c.shape[1])), mode="symmetric") for c in crops])[:, None]
