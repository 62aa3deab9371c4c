"""Probability maps of images of any size: tiles that overlap, blended, with the whole image's statistics.

A segmenter's network turns a normalised grey image into two maps: particle foreground
and particle interior. :func:`probability_steps` runs it over tiles of an image and
blends them with linear ramps; memory beyond the uint8 outputs follows the tile size and
the image width, not its height.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generator

import numpy as np
import torch

from ..config import TILE
from ..models.runtime import working_format
from ..normalize import intensity_range, normalize
from .statistics import WHOLE_IMAGE_PIXELS, Statistics, image_statistics, statistics_crops

if TYPE_CHECKING:
    from .segmenter import Segmenter

#: Smallest side (px) of an image (or of its resized specimen) that can be segmented.
MIN_SIDE = 8


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _ramp(n: int, overlap: int) -> np.ndarray:
    """1D blending weight: linear ramps of ``overlap`` pixels at both ends, never zero."""
    w = np.ones(n, np.float32)
    if overlap > 0:
        r = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        k = min(overlap, n // 2)
        w[:k] = r[:k]
        w[n - k :] = np.minimum(w[n - k :], r[:k][::-1])
    return w


def check_tiling(segmenter, tile: int, overlap: int | None) -> int:
    """The overlap (its default for None), or a ``ValueError`` for a tile or overlap ``segmenter`` cannot use."""
    m = segmenter.config.multiple
    if overlap is None:
        overlap = min(128, tile // 4)
    if tile % m or tile < 2 * m:
        raise ValueError(f"tile must be a multiple of {m} and at least {2 * m}")
    if not 0 <= overlap < tile // 2:
        raise ValueError("overlap must be in [0, tile / 2)")
    return overlap


def probability_steps(
    image: np.ndarray,
    segmenter: "Segmenter",
    *,
    tile: int = TILE,
    overlap: int | None = None,
    specimen_rows: slice = slice(None),
    intensity: tuple[float, float] | None = None,
    statistics: Statistics | None = None,
) -> Generator[tuple[int, int], None, tuple[np.ndarray, np.ndarray]]:
    """Foreground and interior probabilities (uint8, 0-255) of a 2D grey image.

    A generator: yields ``(tiles_done, tiles_total)`` after each tile and returns
    ``(foreground, interior)``.

    Images (or specimen areas) of at most ``WHOLE_IMAGE_PIXELS`` run in one pass.
    Larger ones run in tiles of ``tile`` pixels that overlap by ``overlap`` and are
    blended with linear ramps, with group-norm statistics of the whole image
    (:mod:`~napari_nanogan.segmentation.statistics`), so the result does not depend on the tiling. Accumulators cover one
    band of tile rows at a time: memory beyond the uint8 outputs follows the tile size
    and the image width, not the image height.

    A block of a larger image passes that image's grey levels ``intensity`` (low, high)
    and group-norm ``statistics`` (:func:`~napari_nanogan.segmentation.statistics.record_statistics`):
    the block is then tiled with them, whatever its size, as the whole image would be.
    """
    m = segmenter.config.multiple
    overlap = check_tiling(segmenter, tile, overlap)
    h, w = image.shape
    start, stop, _ = specimen_rows.indices(h)
    given = statistics is not None
    if given and intensity is None:
        raise ValueError("statistics of a larger image need its intensity range too")
    if not given and (stop - start) * w <= WHOLE_IMAGE_PIXELS and (start, stop) != (0, h):
        # a specimen of at most 1 MP runs as one tile of its own rows: its statistics are
        # the image's, the info bar does not enter them, and no statistics pass is needed
        inner = yield from probability_steps(image[start:stop], segmenter, tile=tile, overlap=0)
        out = np.zeros((2, h, w), np.uint8)
        out[:, start:stop] = np.stack(inner)
        return out[0], out[1]
    if h * w <= WHOLE_IMAGE_PIXELS and not given:
        tile = max(tile, -(-max(h, w) // m) * m)  # one pass over the whole image
    lo, hi = intensity if intensity is not None else intensity_range(image, specimen_rows)
    th = min(tile, -(-h // m) * m)
    tw = min(tile, -(-w // m) * m)
    ys, xs = _starts(h, th, overlap), _starts(w, tw, overlap)
    wy, wx = _ramp(th, overlap if len(ys) > 1 else 0), _ramp(tw, overlap if len(xs) > 1 else 0)
    window = wy[:, None] * wx[None, :]
    out = np.zeros((2, h, w), np.uint8)
    total, done = len(ys) * len(xs), 0
    device = segmenter.device
    fmt = working_format(device)
    net = segmenter.network
    bf16 = segmenter.precision == "bf16"
    band_start = 0
    acc = np.zeros((2, 0, w), np.float32)
    wacc = np.zeros((0, w), np.float32)
    # one pass over a small image uses its own statistics; larger ones always use the statistics
    # crops' (whatever the tiling, even a single tile), so every tiling sees the same statistics
    crops = None if h * w <= WHOLE_IMAGE_PIXELS or given else torch.from_numpy(
        statistics_crops(image, lo, hi, specimen_rows, m)).to(device).contiguous(memory_format=fmt)
    with image_statistics(net, crops, statistics=statistics):
        for y in ys:
            # grow the band accumulators to cover rows [band_start, y + th)
            need = min(y + th, h) - band_start
            if need > acc.shape[1]:
                grow = need - acc.shape[1]
                acc = np.concatenate([acc, np.zeros((2, grow, w), np.float32)], axis=1)
                wacc = np.concatenate([wacc, np.zeros((grow, w), np.float32)], axis=0)
            for x in xs:
                crop = image[y : y + th, x : x + tw]
                ch, cw = crop.shape
                patch = normalize(crop, lo, hi)
                if (ch, cw) != (th, tw):
                    patch = np.pad(patch, ((0, th - ch), (0, tw - cw)), mode="symmetric")
                inp = torch.from_numpy(patch)[None, None].to(device).contiguous(memory_format=fmt)
                with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    prob = torch.sigmoid(net(inp)[0, :2].float()).cpu().numpy()
                wt = window[:ch, :cw]
                acc[:, y - band_start : y - band_start + ch, x : x + cw] += prob[:, :ch, :cw] * wt
                wacc[y - band_start : y - band_start + ch, x : x + cw] += wt
                done += 1
                yield done, total
            # rows before the next tile's start are final
            next_y = ys[ys.index(y) + 1] if y != ys[-1] else h
            final = next_y - band_start
            out[:, band_start:next_y] = np.round(255 * acc[:, :final] / wacc[None, :final]).astype(np.uint8)
            acc, wacc = acc[:, final:], wacc[final:]
            band_start = next_y
    return out[0], out[1]


def resized_probability_steps(grey, segmenter, factor, rows, *, tile, overlap):
    """:func:`probability_steps` on the specimen rows resized by ``factor``, resized back."""
    from skimage.transform import resize

    h, w = grey.shape
    start, stop, _ = rows.indices(h)
    specimen = grey[start:stop]
    shape = (round(specimen.shape[0] * factor), round(specimen.shape[1] * factor))
    if min(shape) < MIN_SIDE:
        raise ValueError(f"the image would be {shape[0]} x {shape[1]} px at this particle diameter: too small to segment")
    small = resize(specimen.astype(np.float32), shape, order=1, anti_aliasing=factor < 1, preserve_range=True)
    fg, interior = yield from probability_steps(small, segmenter, tile=tile, overlap=overlap)
    out = np.zeros((2, h, w), np.uint8)
    for k, prob in enumerate((fg, interior)):
        back = resize(prob.astype(np.float32), specimen.shape, order=1, preserve_range=True)
        out[k, start:stop] = np.clip(np.round(back), 0, 255).astype(np.uint8)
    return out[0], out[1]
