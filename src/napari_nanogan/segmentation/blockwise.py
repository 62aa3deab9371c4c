"""Images larger than memory, block by block, with no particle cut at a block edge.

An image (a zarr or dask array, or any 2D array that reads a region when sliced) is cut
into square blocks of ``block`` pixels. Each block is segmented with a margin of
``margin`` pixels of its neighbours around it, and keeps the labels of its own pixels
(its *core*). What depends on the whole image is decided once, before any block
(:func:`plan_blockwise`), from a subsample of it: the grey levels that normalise it,
the group-norm statistics (:mod:`~napari_nanogan.segmentation.statistics`), the
particle diameter (and so the scale, with ``segment_steps``' scale check), for an
``auto`` segmenter the network, and the polarity (``segment_steps``' polarity check).
Every block gets the same, so blocks agree with each other and with the whole image.

A particle crossing a block edge is labelled in both cores.
:func:`~napari_nanogan.segmentation.stitching.stitch` joins its
parts: along each seam, each of the two blocks says, for every pair of facing pixels,
whether its own segmentation (which sees across the seam, thanks to the margin) puts
them in one particle; parts whose facing pixels are said to be one particle by at least
half of the votes are merged (union-find), parts of touching but distinct particles are
not. :func:`~napari_nanogan.segmentation.stitching.relabel` then gives every part its particle's final label.

Memory per block follows ``block + 2 * margin``, not the image. The steps are plain
functions of small, picklable arguments, so a loop runs them in one process
(:mod:`~napari_nanogan.segmentation.zarrjob`) and a Dask cluster runs them on its workers
(:mod:`napari_nanogan.distributed`).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..config import BLOCK, MARGIN_DIAMETERS, MIN_MARGIN, TILE, PostprocessConfig
from ..io.infobar import InfoBar
from ..normalize import intensity_range
from ..progress import drive
from .postprocess import instances_from_probabilities
from .confidence import particle_confidence
from .marks import judge, judge_final
from .scale import resize_factor, scale_postprocess
from .smallpass import add_small_particles, small_pass_factor
from .sizing import MIN_ESTIMATE_SIDE, estimate_diameter, estimate_factor, keeps_own_scale
from .statistics import Statistics, record_statistics, statistics_crops
from .stitching import relabel, stitch
from .tiles import MIN_SIDE, probability_steps

if TYPE_CHECKING:
    from .segmenter import AutoSegmenter, Segmenter

#: Side (px) of the centre crop the particle diameter is estimated on (and the ``auto`` network chosen on).
ESTIMATE_SAMPLE = 4096
#: Side (px) of the centre crop on which an enlargement for an estimate is checked
#: (:func:`~napari_nanogan.segmentation.pipeline.enlargement_verdict`), as ``segment`` checks the whole image.
ENLARGE_TRIAL = 1024
#: Side (px) of the centre crop on which ``segment_steps``' ``scale_check`` runs (and its ``polarity_check`` on an
#: image made smaller; on others, on ``ENLARGE_TRIAL``).
SCALE_TRIAL = 2048
SIDES = ("top", "bottom", "left", "right")


@dataclass(frozen=True)
class Block:
    """One block: its place in the grid, its core and its core plus margin (image coordinates)."""

    index: tuple[int, int]
    core: tuple[slice, slice]
    padded: tuple[slice, slice]

    @property
    def inner(self) -> tuple[slice, slice]:
        """The core in coordinates of the padded region."""
        return tuple(slice(c.start - p.start, c.stop - p.start) for c, p in zip(self.core, self.padded))

    @property
    def name(self) -> str:
        return f"{self.index[0]}_{self.index[1]}"


def block_grid(shape: tuple[int, int], block: int, margin: int) -> list[Block]:
    """The blocks of an image of ``shape``, row by row (cores tile the image exactly)."""
    h, w = shape
    out = []
    for r, y in enumerate(range(0, h, block)):
        for c, x in enumerate(range(0, w, block)):
            core = (slice(y, min(y + block, h)), slice(x, min(x + block, w)))
            padded = (slice(max(y - margin, 0), min(y + block + margin, h)),
                      slice(max(x - margin, 0), min(x + block + margin, w)))
            out.append(Block((r, c), core, padded))
    return out


@dataclass(frozen=True)
class BlockwisePlan:
    """What every block of one image shares, decided once (:func:`plan_blockwise`). Plain data: it pickles.

    Attributes
    ----------
    shape : (int, int)
        The image's.
    network : str
        Which network segments: ``"self"`` (a plain segmenter), or an ``auto`` segmenter's
        ``"general"`` or ``"bright"``.
    model : str
        That network's name.
    intensity : (float, float)
        Grey levels mapped to 0 and 1, from a regular grid of the whole image.
    statistics : list of (mean, var) arrays
        Group-norm statistics of four crops spread over the image, for ``network``.
    factor : float
        How much blocks are resized for the network (1: not at all).
    diameter_px : float or None
        The particle diameter (given, or estimated on a centre crop).
    postprocess : PostprocessConfig
        The network's, scaled to the image.
    fine_factor, fine_statistics, fine_postprocess
        The finer pass over an image made at least twice smaller (``segment_steps``'
        ``small_pass``): its resize factor, statistics and post-processing; None without one.
        Each block adds the small particles of its own finer pass, judged against the
        block's own particles.
    estimate_scale : float or None
        Where the scale check on a centre crop (``segment_steps``' ``scale_check``) kept
        another factor than the estimate's: the estimate's (``factor`` is the one kept).
    enlargement_rejected : bool
        An estimate enlarged the image, but the particles found on a centre crop were not
        small, or none were where its own scale finds some: ``factor`` is 1
        (``SegmentationResult.enlargement_rejected``).
    mirror : float or None
        Where the polarity check on a centre crop (``segment_steps``' ``polarity_check``) kept
        the image with its grey levels inverted: every block is segmented as ``mirror - value``
        (``mirror`` is the sum of the image's own intensity range; ``intensity`` is then the
        inverted image's), as a whole image inverted would be.
    """

    shape: tuple[int, int]
    network: str
    model: str
    intensity: tuple[float, float]
    statistics: Statistics
    factor: float
    diameter_px: float | None
    diameter_estimated: bool
    postprocess: PostprocessConfig
    block: int = BLOCK
    margin: int = MIN_MARGIN
    tile: int = TILE
    overlap: int | None = None
    info_bar: InfoBar | None = None
    fine_factor: float | None = None
    estimate_scale: float | None = None
    enlargement_rejected: bool = False
    mirror: float | None = None
    fine_statistics: Statistics | None = None
    fine_postprocess: PostprocessConfig | None = None

    @property
    def inverted(self) -> bool:
        return self.mirror is not None

    def blocks(self) -> list[Block]:
        return block_grid(self.shape, self.block, self.margin)

    @property
    def grid(self) -> tuple[int, int]:
        return -(-self.shape[0] // self.block), -(-self.shape[1] // self.block)

    def fingerprint(self) -> str:
        """A digest of everything that decides the labels: equal plans give equal blocks (resume)."""
        plain = {k: v for k, v in self.__dict__.items()
                 if k not in ("statistics", "fine_statistics", "estimate_scale", "enlargement_rejected")}  # (factor decides; not how it came)
        plain["postprocess"] = self.postprocess.to_dict()
        plain["fine_postprocess"] = None if self.fine_postprocess is None else self.fine_postprocess.to_dict()
        plain["info_bar"] = None if self.info_bar is None else self.info_bar.__dict__
        digest = hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode())
        for mean, var in list(self.statistics) + list(self.fine_statistics or []):
            digest.update(np.ascontiguousarray(mean, np.float32).tobytes())
            digest.update(np.ascontiguousarray(var, np.float32).tobytes())
        return digest.hexdigest()[:16]


class Mirrored:
    """An image's grey levels mirrored within ``total`` (``total - value``, float32), read lazily, crop by crop."""

    dtype = np.dtype(np.float32)

    def __init__(self, array, total: float):
        self.array, self.total, self.shape, self.ndim = array, float(total), tuple(array.shape), len(array.shape)

    def __getitem__(self, key) -> np.ndarray:
        return np.float32(self.total) - np.asarray(self.array[key], np.float32)


def network_of(segmenter: "Segmenter | AutoSegmenter", plan: BlockwisePlan) -> "Segmenter":
    """The network ``plan`` chose among ``segmenter``'s."""
    return segmenter if plan.network == "self" else getattr(segmenter, plan.network)


def _centre_crop(array, rows: slice, side: int) -> np.ndarray:
    start, stop, _ = rows.indices(array.shape[0])
    h, w = stop - start, array.shape[1]
    ch, cw = min(side, h), min(side, w)
    y, x = start + (h - ch) // 2, (w - cw) // 2
    return np.asarray(array[y : y + ch, x : x + cw])


def _resized_crops(array, lo: float, hi: float, rows: slice, multiple: int, factor: float) -> np.ndarray:
    """:func:`statistics_crops` of the image as resized by ``factor``, reading only crops of it."""
    from skimage.transform import resize

    from .statistics import STATISTICS_CROP

    if factor == 1.0:
        return statistics_crops(array, lo, hi, rows, multiple)
    start, stop, _ = rows.indices(array.shape[0])
    side = int(math.ceil(STATISTICS_CROP / factor))
    h, w = stop - start, array.shape[1]
    ch, cw = min(side, h), min(side, w)
    crops = []
    for y in np.linspace(0, h - ch, 2).round().astype(int) + start:
        for x in np.linspace(0, w - cw, 2).round().astype(int):
            crop = np.asarray(array[y : y + ch, x : x + cw], np.float32)
            shape = (max(round(ch * factor), 1), max(round(cw * factor), 1))
            crops.append(resize(crop, shape, order=1, anti_aliasing=True, preserve_range=True).astype(np.float32))
    small = np.concatenate([np.concatenate(crops[:2], 1), np.concatenate(crops[2:], 1)], 0)
    return statistics_crops(small, lo, hi, slice(None), multiple)


def plan_blockwise(
    array,
    segmenter: "Segmenter | AutoSegmenter",
    *,
    diameter: float | Literal["auto"] | None = None,
    info_bar: InfoBar | None = None,
    block: int = BLOCK,
    margin: int | None = None,
    tile: int = TILE,
    overlap: int | None = None,
    postprocess: PostprocessConfig | None = None,
    small_pass: bool = True,
    scale_check: bool = True,
    polarity_check: bool = True,
) -> BlockwisePlan:
    """Decide, once for the whole image, what every block uses.

    Reads a regular grid of the image (grey levels), four crops of
    ``STATISTICS_CROP`` px (group-norm statistics) and a centre crop of at most
    ``ESTIMATE_SAMPLE`` px (the particle diameter with ``diameter="auto"``; an ``auto``
    segmenter's choice of network), never the whole image. The options are those of
    :func:`~napari_nanogan.segmentation.segment_steps`; ``info_bar`` is None (the
    default: every row is specimen) or an :class:`~napari_nanogan.io.InfoBar` given.
    ``margin`` (default: ``MARGIN_DIAMETERS`` particle diameters, at least
    ``MIN_MARGIN``) should exceed the largest particle.
    """
    shape = tuple(int(n) for n in array.shape)
    if len(shape) != 2:
        raise ValueError(f"block-wise segmentation takes a 2D grey image, not an array of shape {shape}")
    if min(shape) < MIN_SIDE:
        raise ValueError(f"image of shape {shape} is too small to segment (each side needs {MIN_SIDE}+ pixels)")
    if block < 64 or block % 16:
        raise ValueError(f"block must be a multiple of 16 and at least 64 px, not {block}")
    if isinstance(diameter, str) and diameter != "auto":
        raise ValueError(f'particle diameter must be a number of pixels, "auto" or None, not {diameter!r}')
    rows = info_bar.specimen_rows if info_bar is not None else slice(None)
    lo, hi = intensity_range(array, rows)
    sizer = segmenter.sizer
    estimated = diameter == "auto"
    sample = estimate_scale = None
    own_estimated = rejected = False  # an estimate that keeps the image's own scale; an enlargement undone
    if estimated or not hasattr(segmenter, "network"):
        sample = _centre_crop(array, rows, ESTIMATE_SAMPLE)
    if estimated:
        diameter = estimate_diameter(sample, segmenter) if min(sample.shape) >= MIN_ESTIMATE_SIDE else None
        factor = estimate_factor(diameter, sizer)
        own_estimated = keeps_own_scale(diameter, factor, sizer.diameter_px)
        if factor > 1.0:  # as segment() does, on a centre crop: the enlargement or the image's own scale
            from .pipeline import check_enlargement
            verdict = check_enlargement(_centre_crop(sample, slice(None), ENLARGE_TRIAL), segmenter, diameter,
                                        scale_check=scale_check, tile=tile, overlap=overlap, postprocess=postprocess)
            if verdict != "kept":
                estimate_scale, factor = (factor if verdict == "checked" else None), 1.0
            rejected = verdict == "rejected"
    else:
        factor = resize_factor(diameter, sizer.diameter_px)
    polarity_sample = None
    if hasattr(segmenter, "network"):  # one network: nothing to choose
        choices = [("self", segmenter, None)]
    else:
        from .polarity import POLARITY_CROP

        polarity_sample = _centre_crop(sample, slice(None), POLARITY_CROP)
        named = {id(segmenter.general): "general", id(segmenter.bright): "bright"}
        choices = [(named[id(n)], n, accept) for n, accept in segmenter.candidates(polarity_sample, slice(None), factor)]
    key, network, statistics = _choose(choices, array, polarity_sample if len(choices) > 1 else None, rows,
                                       (lo, hi), factor, tile)
    if estimated and scale_check and (factor < 1.0 or own_estimated):  # as segment() does, on a centre crop
        from .pipeline import surest_scale
        checked = surest_scale(np.asarray(_centre_crop(sample, slice(None), SCALE_TRIAL)), network, factor,
                               tile=tile, overlap=overlap, postprocess=postprocess)
        if checked != factor:
            estimate_scale, factor = factor, checked
            statistics = record_statistics(network.network, _resized_crops(array, lo, hi, rows,
                                                                           network.config.multiple, factor))
    mirror = None
    if polarity_check and key != "bright":  # as segment() does, on a centre crop, at the scale kept
        from .pipeline import check_polarity
        side = SCALE_TRIAL if factor < 1.0 else ENLARGE_TRIAL  # (from the estimate's sample where there is one)
        crop = _centre_crop(array, rows, side) if sample is None else _centre_crop(sample, slice(None), side)
        if check_polarity(crop, network, factor, tile=tile, overlap=overlap, postprocess=postprocess):
            mirror = lo + hi  # the blocks' grey levels become mirror - value, normalised by their own range
            array = Mirrored(array, mirror)
            lo, hi = intensity_range(array, rows)
            statistics = record_statistics(network.network, _resized_crops(array, lo, hi, rows,
                                                                           network.config.multiple, factor))
    base = postprocess or network.postprocess
    config = scale_postprocess(base, 1.0 / factor) if factor != 1.0 else base
    fine = small_pass_factor(factor) if small_pass else None
    fine_statistics = fine_config = None
    if fine is not None:
        fine_statistics = record_statistics(network.network, _resized_crops(array, lo, hi, rows,
                                                                             network.config.multiple, fine))
        fine_config = scale_postprocess(base, 1.0 / fine) if fine != 1.0 else base
    reach = diameter if diameter is not None else sizer.diameter_px
    if estimate_scale is not None:  # the particles are as large as the scale kept says
        reach *= estimate_scale / factor
    if margin is None:
        margin = max(MIN_MARGIN, int(math.ceil(MARGIN_DIAMETERS * reach)))
    margin = min(int(margin), block)
    if margin < 1:
        raise ValueError("the margin must be at least 1 px")
    return BlockwisePlan(shape=shape, network=key, model=network.name, intensity=(lo, hi), statistics=statistics,
                         factor=float(factor), diameter_px=None if diameter is None else float(diameter),
                         diameter_estimated=estimated and diameter is not None, postprocess=config, block=int(block),
                         margin=margin, tile=int(tile), overlap=overlap, info_bar=info_bar,
                         fine_factor=None if fine is None else float(fine), fine_statistics=fine_statistics,
                         fine_postprocess=fine_config, estimate_scale=estimate_scale,
                         enlargement_rejected=rejected, mirror=mirror)


def _choose(choices, array, sample, rows, intensity, factor, tile):
    """The first candidate network whose test its foreground on ``sample`` passes, with its statistics."""
    for key, network, accept in choices:
        crops = _resized_crops(array, *intensity, rows, network.config.multiple, factor)
        statistics = record_statistics(network.network, crops)
        if accept is None:
            return key, network, statistics
        fg, _ = _probabilities(np.asarray(sample), network, intensity, statistics, factor, tile, None)
        if accept(fg):
            return key, network, statistics
    raise ValueError("no network of the segmenter accepted the image")  # an auto segmenter's last always does


def _probabilities(grey, network, intensity, statistics, factor, tile, overlap):
    if factor == 1.0:
        return drive(probability_steps(grey, network, tile=tile, overlap=overlap, intensity=intensity,
                                       statistics=statistics))
    from skimage.transform import resize

    shape = (max(round(grey.shape[0] * factor), MIN_SIDE), max(round(grey.shape[1] * factor), MIN_SIDE))
    small = resize(grey.astype(np.float32), shape, order=1, anti_aliasing=True, preserve_range=True)
    maps = drive(probability_steps(small.astype(np.float32), network, tile=tile, overlap=overlap, intensity=intensity,
                                   statistics=statistics))
    return tuple(np.clip(np.round(resize(p.astype(np.float32), grey.shape, order=1, preserve_range=True)), 0, 255)
                 .astype(np.uint8) for p in maps)


def _bar_rows(block: Block, plan: BlockwisePlan) -> slice:
    """The info bar's rows in a padded block's coordinates (an empty slice without one)."""
    if plan.info_bar is None:
        return slice(0, 0)
    y0 = block.padded[0].start
    return slice(max(plan.info_bar.start - y0, 0), max(plan.info_bar.stop - y0, 0))


def _specimen_rows(block: Block, plan: BlockwisePlan, height: int) -> slice:
    """The rows of a padded block (``height`` rows) that are not the info bar: above a bottom bar, below a top one."""
    bar = _bar_rows(block, plan)
    if not (bar.start < bar.stop and bar.start < height):
        return slice(None)
    return slice(bar.stop, None) if plan.info_bar.side == "top" else slice(0, bar.start)


def _block_probabilities(grey, block: Block, network, plan: BlockwisePlan, statistics, factor: float):
    """A padded block's foreground and interior probabilities at ``factor``, 0 on the info bar's rows."""
    fg, interior = _probabilities(grey, network, plan.intensity, statistics, factor, plan.tile, plan.overlap)
    bar = _bar_rows(block, plan)
    fg[bar] = 0
    interior[bar] = 0
    return fg, interior


@dataclass
class BlockResult:
    """What stitching needs of one segmented block: small, whatever the block's size.

    Attributes
    ----------
    index : (int, int)
    count : int
        Labels in the core, numbered 1..count.
    edges : dict of str to ndarray
        The core's labels along each side (``top``, ``bottom``, ``left``, ``right``).
    same : dict of str to ndarray of bool
        Per pixel of each side: the block's segmentation puts it and the pixel facing it
        across the side (in the margin) in one particle. Absent at the image's border.
    """

    index: tuple[int, int]
    count: int
    edges: dict = field(default_factory=dict)
    same: dict = field(default_factory=dict)

    def to_arrays(self) -> dict:
        out = {"index": np.array(self.index), "count": np.array(self.count)}
        out.update({f"edge_{k}": v for k, v in self.edges.items()})
        out.update({f"same_{k}": v for k, v in self.same.items()})
        return out

    @classmethod
    def from_arrays(cls, data) -> "BlockResult":
        return cls(tuple(int(v) for v in data["index"]), int(data["count"]),
                   {k: np.asarray(data[f"edge_{k}"]) for k in SIDES if f"edge_{k}" in data},
                   {k: np.asarray(data[f"same_{k}"]) for k in SIDES if f"same_{k}" in data})


def segment_block(array, block: Block, network: "Segmenter", plan: BlockwisePlan) -> tuple[np.ndarray, BlockResult]:
    """Segment one block with its margin; its core's labels (uint32, 1..K in raster order) and what stitching needs."""
    grey = np.asarray((array if plan.mirror is None else Mirrored(array, plan.mirror))[block.padded])
    if grey.ndim != 2:
        raise ValueError(f"block {block.name}: expected 2D grey values, got shape {grey.shape}")
    fg, interior = _block_probabilities(grey, block, network, plan, plan.statistics, plan.factor)
    labels = instances_from_probabilities(fg, interior, plan.postprocess)
    specimen = _specimen_rows(block, plan, grey.shape[0])
    labels, confidence = judge(grey, labels, fg, interior, network, plan.postprocess.min_confidence, specimen)
    if plan.fine_factor is not None and labels.max() > 0:
        fine_fg, fine_interior = _block_probabilities(grey, block, network, plan, plan.fine_statistics,
                                                      plan.fine_factor)
        fine = instances_from_probabilities(fine_fg, fine_interior, plan.fine_postprocess)
        labels, confidence, fg, interior = add_small_particles(
            grey, labels, confidence, fg, interior, fine,
            particle_confidence(fine, fine_fg, fine_interior, network.confidence_model), fine_fg, fine_interior,
            rows=specimen)
        del fine_fg, fine_interior, fine
    labels = judge_final(labels, confidence, fg, interior, network)[0]
    del fg, interior
    iy, ix = block.inner
    core = labels[iy, ix]
    present = np.unique(core)
    present = present[present > 0]
    lut = np.zeros(int(labels.max()) + 1, np.uint32)
    lut[present] = np.arange(1, len(present) + 1, dtype=np.uint32)
    local = lut[core]
    h, w = plan.shape
    (y0, y1), (x0, x1) = (block.core[0].start, block.core[0].stop), (block.core[1].start, block.core[1].stop)
    edges = {"top": local[0].copy(), "bottom": local[-1].copy(), "left": local[:, 0].copy(), "right": local[:, -1].copy()}
    same = {}
    sides = {"top": (y0 > 0, (iy.start, ix), (iy.start - 1, ix)),
             "bottom": (y1 < h, (iy.stop - 1, ix), (iy.stop, ix)),
             "left": (x0 > 0, (iy, ix.start), (iy, ix.start - 1)),
             "right": (x1 < w, (iy, ix.stop - 1), (iy, ix.stop))}
    for side, (inside_image, own, facing) in sides.items():
        if inside_image:
            mine = labels[own]
            same[side] = (mine > 0) & (mine == labels[facing])
    return local, BlockResult(block.index, len(present), edges, same)


def segment_blockwise(array, segmenter, *, plan: BlockwisePlan | None = None, **options) -> np.ndarray:
    """Block-wise segmentation of an image that fits in memory, into labels in memory (tests, comparisons).

    ``options`` are :func:`plan_blockwise`'s. Larger images go to a zarr store
    (:func:`~napari_nanogan.segmentation.zarrjob.segment_zarr_steps`).
    """
    plan = plan or plan_blockwise(array, segmenter, **options)
    network = network_of(segmenter, plan)
    out = np.zeros(plan.shape, np.uint32)
    results = []
    for block in plan.blocks():
        local, result = segment_block(array, block, network, plan)
        out[block.core] = local
        results.append(result)
    offsets, lut = stitch(results, plan.grid)
    for block in plan.blocks():
        out[block.core] = relabel(out[block.core], offsets[block.index], lut)
    return out


__all__ = ["BLOCK", "Block", "BlockResult", "BlockwisePlan", "block_grid", "network_of", "plan_blockwise",
           "relabel", "segment_block", "segment_blockwise", "stitch"]
