"""Exact tile-by-tile evaluation of a network's upsampling stages on the CPU.

The generators' decoders are built of the same stage: a x2 bilinear upsampling, then 3x3
convolutions at the new resolution (the last stage also a 1x1 convolution to one channel).
The texture networks run their last stage so, the Style U-Net every decoder level. On a
1024 x 768 image the stage's intermediates are 25-100 MB each, larger than the CPU's
cache, so the upsampling alone took 40-50 ms per network (bound by memory, not
arithmetic). :func:`tiled_stage` runs the same stage on batches of tiles a few MB in
size, which stay in cache: about half the time of a texture network's stage
(``python -m bench.synthesis_speed``). Tiles whose pixels the caller does not need (a particle
texture off the particles) are skipped, and cost nothing.

It is exact: each tile carries a halo of ``halo`` full-resolution pixels that covers
the upsampling's edge rows and the convolutions' reach, and ``valid`` (1 inside the
image, 0 in the padding) lets the stage zero its activations outside the image, as the
whole-image convolution's zero padding does. Half-resolution inputs are padded by
replicating their edges, which reproduces the upsampling's edge clamping. Results
equal the whole-image stage's to float rounding (tested).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

#: Tile sides tried (full-resolution px); :func:`choose_tile` picks the cheapest for the region.
TILE_SIDES = (32, 64, 128)
#: Full-resolution pixels per batch of tiles: a batch's activations (24-48 channels) then take a few MB.
BATCH_PIXELS = 160 * 160


def choose_tile(need: np.ndarray | None, shape: tuple[int, int], halo: int) -> tuple[int, np.ndarray]:
    """The tile side from :data:`TILE_SIDES` that computes the fewest pixels (halos included) to cover
    ``need`` (bool, full resolution; None: every pixel), and which of its tiles hold a needed pixel."""
    best = None
    for side in TILE_SIDES:
        rows, cols = -(-shape[0] // side), -(-shape[1] // side)
        if need is None:
            tiles = np.ones((rows, cols), bool)
        else:
            padded = np.zeros((rows * side, cols * side), bool)
            padded[: shape[0], : shape[1]] = need
            tiles = padded.reshape(rows, side, cols, side).any(axis=(1, 3))
        cost = tiles.sum() * (side + 2 * halo) ** 2
        if best is None or cost < best[0]:
            best = (cost, side, tiles)
    return best[1], best[2]


def tiled_stage(stage: Callable, low: Sequence[torch.Tensor], full: Sequence[torch.Tensor], *,
                out_channels: int = 1, halo: int = 4, need: np.ndarray | None = None,
                memory_format=torch.channels_last) -> torch.Tensor:
    """``stage(low_tiles, full_tiles, valid)`` over the image, tile by tile, as one [1, out_channels, H, W] tensor
    (in ``memory_format``).

    Parameters
    ----------
    stage : callable
        Takes a list of half-resolution tiles [B, C, S/2, S/2] (to upsample x2), a list of
        full-resolution tiles [B, C, S, S] and ``valid`` [B, 1, S, S]; returns [B, out_channels, S, S].
        Its 3x3 convolutions (with padding 1) must number at most ``halo - 1`` after the upsampling,
        and it must multiply by ``valid`` each activation a 3x3 convolution reads.
    low, full : sequences of tensors
        [1, C, H/2, W/2] and [1, C, H, W] inputs; H and W even.
    halo : int
        Full-resolution pixels each tile reaches beyond its own (even).
    need : bool array [H, W], optional
        Pixels the caller uses; tiles without one are left 0. None: all.
    """
    h, w = full[0].shape[-2:] if full else (2 * low[0].shape[-2], 2 * low[0].shape[-1])
    if h % 2 or w % 2 or halo % 2:
        raise ValueError(f"tiled_stage needs an even image size and halo, got {h} x {w} and {halo}")
    side, tiles = choose_tile(need, (h, w), halo)
    rows, cols = tiles.shape
    span = side + 2 * halo
    first = full[0] if full else low[0]
    device, dtype = first.device, first.dtype
    out = torch.zeros(1, out_channels, rows * side, cols * side, device=device, dtype=dtype).contiguous(
        memory_format=memory_format)
    ones = torch.ones(1, 1, h, w, device=device, dtype=dtype)
    todo = list(zip(*np.nonzero(tiles)))
    per_batch = max(1, BATCH_PIXELS // (side * side))
    for start in range(0, len(todo), per_batch):
        batch = todo[start: start + per_batch]

        def gather(t, scale, mode):
            # each tile with its halo, padded where it leaves the image (not the whole input: no copy of it):
            # half-resolution inputs by their edges (the upsampling's clamp), full-resolution ones with zeros
            # (the convolutions' padding)
            s, n, size = side // scale, span // scale, t.shape[-2:]
            tiles = []
            for i, j in batch:
                y0, x0 = i * s - halo // scale, j * s - halo // scale
                y1, x1 = min(y0 + n, size[0]), min(x0 + n, size[1])
                part = t[..., max(y0, 0): y1, max(x0, 0): x1]
                pad = (max(-x0, 0), x0 + n - x1, max(-y0, 0), y0 + n - y1)
                tiles.append(F.pad(part, pad, mode=mode) if any(pad) else part)
            return torch.cat(tiles).contiguous(memory_format=memory_format)

        result = stage([gather(t, 2, "replicate") for t in low], [gather(t, 1, "constant") for t in full],
                       gather(ones, 1, "constant"))
        for b, (i, j) in enumerate(batch):
            out[0, :, i * side: (i + 1) * side, j * side: (j + 1) * side] = \
                result[b, :, halo: halo + side, halo: halo + side]
    return out[..., :h, :w]


def memory_format_of(x: torch.Tensor):
    """``torch.channels_last`` if ``x`` is stored so (the generators on the CPU), else the standard format."""
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


def use_tiles(x: torch.Tensor) -> bool:
    """Whether to evaluate the last stage by tiles: on the CPU, without autograd (a GPU has no such cache limit)."""
    return x.device.type == "cpu" and not torch.is_grad_enabled()
