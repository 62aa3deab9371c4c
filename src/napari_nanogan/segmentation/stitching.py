"""Joining block-wise labels: parts of one particle cut by block borders get one label.

Each block (:mod:`~napari_nanogan.segmentation.blockwise`) numbers its own particles'
parts and reports, along each border, the labels it sees on both sides and whether it
saw them as one particle; :func:`stitch` merges parts on which the two blocks' votes
agree, and :func:`relabel` writes a block's final labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .blockwise import BlockResult


def stitch(results: list[BlockResult], grid: tuple[int, int]) -> tuple[dict, np.ndarray]:
    """Offsets per block and the lookup table from global part numbers to particle labels.

    Part ``k`` of block ``b`` is global part ``offsets[b] + k``; ``lut[part]`` is its
    particle's label, 1..K numbered by each particle's first part (0 stays 0).
    """
    by_index = {r.index: r for r in results}
    missing = [(r, c) for r in range(grid[0]) for c in range(grid[1]) if (r, c) not in by_index]
    if missing:
        raise ValueError(f"blocks {missing[:3]} have no result")
    offsets, total = {}, 0
    for r in range(grid[0]):
        for c in range(grid[1]):
            offsets[(r, c)] = total
            total += by_index[(r, c)].count
    parent = np.arange(total + 1, dtype=np.int64)

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return x

    for (r, c), first in by_index.items():
        for side, other_index, other_side in (("right", (r, c + 1), "left"), ("bottom", (r + 1, c), "top")):
            second = by_index.get(other_index)
            if second is None or side not in first.same or other_side not in second.same:
                continue
            a, b = first.edges[side].astype(np.int64), second.edges[other_side].astype(np.int64)
            votes = first.same[side].astype(np.int64) + second.same[other_side].astype(np.int64)
            facing = (a > 0) & (b > 0)
            if not facing.any():
                continue
            a, b, votes = a[facing] + offsets[(r, c)], b[facing] + offsets[other_index], votes[facing]
            pairs, inverse, counts = np.unique(np.stack([a, b], 1), axis=0, return_inverse=True, return_counts=True)
            said = np.bincount(inverse.ravel(), weights=votes, minlength=len(pairs))
            for (pa, pb), n, v in zip(pairs, counts, said):
                if v >= n:  # at least half of the 2 n votes: one particle
                    ra, rb = root(int(pa)), root(int(pb))
                    if ra != rb:
                        parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([root(i) for i in range(total + 1)], np.int64)
    is_root = roots == np.arange(total + 1)
    is_root[0] = False
    numbers = np.zeros(total + 1, np.int64)
    numbers[is_root] = np.arange(1, int(is_root.sum()) + 1)
    return offsets, numbers[roots].astype(np.uint32)


def relabel(local: np.ndarray, offset: int, lut: np.ndarray) -> np.ndarray:
    """A block's core labels (1..count) as particle labels: ``lut[offset + k]``, 0 kept."""
    local = np.asarray(local)
    out = np.zeros(local.shape, np.uint32)
    inside = local > 0
    out[inside] = lut[local[inside].astype(np.int64) + offset]
    return out


__all__ = ["relabel", "stitch"]
