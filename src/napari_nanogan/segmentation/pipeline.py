"""Segmentation of a whole 2D EM image into particles: one label per particle."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Generator, Literal

import numpy as np

from .. import config as _config
from ..config import TILE, PostprocessConfig
from ..io.images import as_grey
from ..io.infobar import InfoBar, detect_info_bar
from ..measure import equivalent_diameters
from ..progress import Progress, drive, staged
from .marks import final_particles, judge
from .polarity import inverted as invert
from .postprocess import instances_from_probabilities
from .smallpass import add_small_particles, small_pass_factor
from .scale import resize_factor, scale_postprocess, within_pixel_budget
from .segmenter import passes_only
from .sizing import (MIN_ESTIMATE_SIDE, auto_enlarge_below, enlargement_holds, estimate_diameter, estimate_factor,
                     keeps_own_scale)
from .tiles import MIN_SIDE, check_tiling, probability_steps, resized_probability_steps
from .wording import ENLARGEMENT_REJECTED, INVERTED, plural, scale_checked

if TYPE_CHECKING:
    from .segmenter import AutoSegmenter, Segmenter


@dataclass(frozen=True)
class SegmentationResult:
    """Labels plus what was found on the way.

    Attributes
    ----------
    labels : ndarray of shape (M, N), uint32
        0 is background; particles are 1..K.
    foreground, interior : ndarray of shape (M, N), uint8
        The network's probabilities times 255.
    info_bar : InfoBar or None
        The rows excluded as the microscope's info bar.
    diameter_px : float or None
        The particle diameter used (given, or estimated).
    diameter_estimated : bool
        Whether ``diameter_px`` was estimated (``diameter="auto"``).
    model : str or None
        The segmenter that made the labels (the one chosen, for an ``auto`` segmenter).
    confidence : ndarray of shape (K,), float32
        Per particle (``confidence[k - 1]`` for label ``k``): the probability that it is a
        real particle (:mod:`~napari_nanogan.segmentation.confidence`).
    enlarge_below_px : float or None
        A given diameter under this enlarges the image (the model's diameter /
        ``config.ENLARGE_BELOW``); an estimated one under it but not under
        :func:`~napari_nanogan.segmentation.sizing.auto_enlarge_below` makes the description
        say to give it.
    scale : float
        How much the image was resized for the network (1: its own scale; 2: twice as large).
    enlargement_rejected : bool
        An estimate under :func:`~napari_nanogan.segmentation.sizing.auto_enlarge_below`
        enlarged the image, but the particles found were not small, or none were found where
        the image's own scale finds some
        (:func:`~napari_nanogan.segmentation.sizing.enlargement_holds`), so the labels are
        those of the image at its own scale.
    flat : bool
        The specimen is a single grey level (a blank or failed acquisition): nothing was
        segmented or estimated.
    small_added : int
        Particles added by the finer pass over a shrunk image (``segment_steps``'
        ``small_pass``), numbered after the others.
    estimate_scale : float or None
        Where the scale check (``segment_steps``' ``scale_check``) kept another scale than
        the estimate's: the estimate's (``scale`` is the one kept); else None.
    inverted : bool
        The labels are those found on the image with its grey levels inverted, which the
        network was surer of (``segment_steps``' ``polarity_check``).
    """

    labels: np.ndarray
    foreground: np.ndarray
    interior: np.ndarray
    info_bar: InfoBar | None
    diameter_px: float | None = None
    diameter_estimated: bool = False
    model: str | None = None
    confidence: np.ndarray | None = None
    enlarge_below_px: float | None = None
    scale: float = 1.0
    enlargement_rejected: bool = False
    flat: bool = False
    small_added: int = 0
    estimate_scale: float | None = None
    inverted: bool = False

    @property
    def count(self) -> int:
        return int(self.labels.max()) if self.labels.size else 0

    def describe(self, *, requested: str | None = None, pixel_size: float | None = None, unit: str = "nm") -> str:
        """One line for a user: "229 particles, estimated particle diameter 31 px, info bar rows 712-767 excluded".

        ``requested``: the model name the user asked for; the model used is named when it
        differs. ``pixel_size`` (in ``unit``): the estimated diameter in that unit too.
        """
        parts = [plural(self.count, "particle")]
        if self.flat:
            parts.append("the image is a single grey level")
        if self.diameter_estimated and self.diameter_px is not None:
            value = self.diameter_px * pixel_size if pixel_size else 0.0
            length = "" if not pixel_size else (f" ({value / 1000:.3g} µm)" if unit == "nm" and value >= 1000
                                                else f" ({value:.3g} {unit})")
            parts.append(f"estimated particle diameter {self.diameter_px:.0f} px{length}")
            if self.scale > 1.0:
                parts.append(f"image enlarged {self.scale:.2g} times for its small particles")
            elif self.scale < 1.0 and self.estimate_scale is None:
                parts.append(f"image made {1 / self.scale:.2g} times smaller")
            elif self.enlargement_rejected:
                parts.append(ENLARGEMENT_REJECTED)
            elif (self.enlarge_below_px
                  and auto_enlarge_below(self.enlarge_below_px * _config.ENLARGE_BELOW) <= self.diameter_px
                  < self.enlarge_below_px):
                parts.append(f"particles under {self.enlarge_below_px:.0f} px are found better with "
                             "their diameter given, which enlarges the image")
            if self.estimate_scale is not None:
                parts.append(scale_checked(self.scale, self.estimate_scale))
        if self.inverted:
            parts.append(INVERTED)
        if self.small_added:
            parts.append(f"{plural(self.small_added, 'small particle')} of these from a finer pass")
        if self.info_bar is not None:
            parts.append(f"info bar rows {self.info_bar.start}-{self.info_bar.stop - 1} excluded")
        if requested is not None and self.model is not None and self.model != requested:
            parts.append(f"model {self.model}")
        return ", ".join(parts)


def segment_steps(
    image: np.ndarray,
    segmenter: "Segmenter | AutoSegmenter",
    *,
    diameter: float | Literal["auto"] | None = None,
    info_bar: InfoBar | Literal["auto"] | None = "auto",
    tile: int = TILE,
    overlap: int | None = None,
    postprocess: PostprocessConfig | None = None,
    small_pass: bool = True,
    scale_check: bool = True,
    polarity_check: bool = True,
) -> Generator[Progress, None, SegmentationResult]:
    """Segment a 2D EM image into particles, as a generator.

    Yields :class:`~napari_nanogan.progress.Progress` records (``done, total = record``
    unpacks them; ``record.stage`` says what is being done: estimating the particle size,
    choosing the model, segmenting tile by tile, separating touching particles) and
    returns a :class:`SegmentationResult` (``result = yield from segment_steps(...)``);
    :func:`segment` drives it. Each yield is a point where the work can be cancelled.

    Parameters
    ----------
    image : ndarray of shape (M, N), (M, N, 3) or (M, N, 4)
        Grey (uint8, uint16, float, palette indices) or RGB(A), converted to grey.
    segmenter : Segmenter or AutoSegmenter
        From :func:`~napari_nanogan.segmentation.load_segmenter`. An
        :class:`~napari_nanogan.segmentation.AutoSegmenter` (the ``auto`` model) first
        chooses one per image.
    diameter : float, "auto" or None
        Typical particle diameter in pixels, for particles much larger or smaller than
        the scale the model was trained at (``segmenter.diameter_px``, about 24 px). The
        specimen is resized by ``segmenter.diameter_px / diameter`` for the network (made
        at most 8 times smaller; made twice as large, within
        ``MAX_ENLARGED_PIXELS``, only for diameters under half the model's:
        :func:`~napari_nanogan.segmentation.scale.resize_factor`), the probabilities are
        resized back, and the post-processing distances are scaled to match, so labels
        keep the image's own size. Diameters near the model's, and ``None`` (default),
        segment at the image's own scale. ``"auto"`` estimates the diameter with the segmenter's size model or coarse
        sizing (:mod:`~napari_nanogan.segmentation.sizing`) and resizes only for clearly
        large or small particles (:func:`~napari_nanogan.segmentation.sizing.estimate_factor`),
        since estimates are rough. A specimen under ``MIN_ESTIMATE_SIDE`` (32) px on a
        side is segmented at its own scale.
    info_bar : InfoBar, "auto" or None
        ``"auto"`` (default) detects the microscope's info bar and labels it 0; None
        treats every row as specimen; an :class:`~napari_nanogan.io.InfoBar` is used as given.
    tile, overlap : int
        Tile side and overlap in pixels; the default overlap is ``min(128, tile // 4)``
        (a quarter of the tile: the network sees past its edges).
    postprocess : PostprocessConfig, optional
        Instead of the segmenter's own.
    small_pass : bool
        Where the image was made at least twice smaller for its particles, segment it again
        at a finer scale (four times larger, at most its own) and add the compact, confident
        particles of that pass that lie on the first pass's background and are under half
        the first pass's median diameter, with the contrast of its particles
        (:mod:`~napari_nanogan.segmentation.smallpass`): satellites beside large spheres, fine
        particles between coarse ones. Default True.
    scale_check : bool
        Where an *estimated* diameter made the image smaller, segment it also at neighbouring
        scales (``config.SCALE_STEP`` apart, never larger than its own, at most
        ``config.SCALE_MOVES`` steps) and keep the one whose particles the network is surer
        of: for a smaller scale a mean confidence ``config.SCALE_SHRINK_MARGIN`` higher, for
        a larger one at most ``config.SCALE_TOLERANCE`` lower (an image shrunk too far merges
        neighbours into particles the network is just as sure of). Where it kept the image's
        own scale and the network is unsure of its particles (mean confidence under
        ``config.SCALE_OWN_BELOW``), try smaller scales the same way, the first needing
        ``config.SCALE_OWN_MARGIN`` (an estimate too small for large particles cuts them into
        pieces). Where it made the image
        larger, segment it also at its own scale with the same network, and keep that where
        the mean confidence there is more than ``config.SCALE_ENLARGE_MARGIN`` higher (an
        estimate far too small cuts particles into doubtful pieces). Size estimates fail on
        kinds of image the size model never saw. Default True. (An enlargement whose
        particles are not small, or that finds none where the own scale finds some, is
        undone either way: :func:`enlargement_verdict`.)
    polarity_check : bool
        Where the network is unsure of the particles it found at the scale kept (mean
        confidence under ``config.POLARITY_UNSURE_BELOW``), segment the image with its grey
        levels inverted too, with the same network at the same scale, and keep that where it
        finds ``config.POLARITY_MORE`` times as many particles, of a mean confidence more than
        ``config.POLARITY_MARGIN`` higher (:func:`polarity_verdict`; ``inverted`` in the
        result). The networks learned dark particles from more images than bright
        ones. Not for ``auto``'s BAM specialist (``sem-tio2``), which only takes images it
        agrees on. Default True.

    Returns
    -------
    SegmentationResult
        ``labels`` of exactly the image's height and width.
    """
    grey = as_grey(image)
    if min(grey.shape) < MIN_SIDE:
        raise ValueError(f"image of shape {grey.shape} is too small to segment (each side needs {MIN_SIDE}+ pixels)")
    if np.issubdtype(grey.dtype, np.floating) and not np.isfinite(grey).all():
        raise ValueError("the image contains NaN or infinite values; replace them with grey levels first")
    if grey.dtype == np.float64 and (span := float(np.abs(grey).max(initial=0))) > 1e30:  # past float32's reach
        grey = grey * (1e6 / span)  # (grey levels are normalised by percentiles: their scale does not matter)
    if isinstance(info_bar, str) and info_bar != "auto" or isinstance(info_bar, bool):
        raise ValueError(f'info_bar must be an InfoBar, "auto" or None, not {info_bar!r}')
    bar = detect_info_bar(grey) if info_bar == "auto" else info_bar
    rows = bar.specimen_rows if bar is not None else slice(None)
    if isinstance(diameter, str) and diameter != "auto":
        raise ValueError(f'particle diameter must be a number of pixels, "auto" or None, not {diameter!r}')
    check_tiling(segmenter.sizer, tile, overlap)  # (each network checks its own again)
    if grey[rows].size and grey[rows].min() == grey[rows].max():  # nothing to see: no particles, no size
        nothing = np.zeros(grey.shape, np.uint8)
        return SegmentationResult(labels=np.zeros(grey.shape, np.uint32), foreground=nothing, interior=nothing.copy(),
                                  info_bar=bar, confidence=np.zeros(0, np.float32), flat=True)
    sizer = segmenter.sizer  # estimates the diameter; sets the scale
    estimated = diameter == "auto"
    if estimated:
        yield Progress(0, 1, "estimating the particle size")
        if min(grey[rows].shape) < MIN_ESTIMATE_SIDE:
            diameter = None  # too small to estimate, and to hold particles that need a smaller image
        else:
            diameter = estimate_diameter(grey, segmenter, rows)
        factor = estimate_factor(diameter, sizer)
    else:
        factor = resize_factor(diameter, sizer.diameter_px)
    factor = within_pixel_budget(factor, grey[rows].shape)
    own_estimated = estimated and keeps_own_scale(diameter, factor, sizer.diameter_px)
    labels, confidence, fg, interior, network = yield from _labels_at(grey, segmenter, rows, bar, factor, tile,
                                                                     overlap, postprocess)
    rejected = estimated and factor > 1.0 and not enlargement_holds(labels, sizer.diameter_px)
    estimate_scale = None
    if rejected or (estimated and scale_check and factor > 1.0):  # the image's own scale too
        # (rejected: any network may suit the image at its own scale; checked: the same network's confidence)
        yield Progress(0, 1, "segmenting the image at its own scale too")
        own = yield from _labels_at(grey, segmenter if rejected else network, rows, bar, 1.0, tile, overlap,
                                    postprocess)
        verdict = enlargement_verdict((labels, confidence), own[:2], sizer.diameter_px)
        rejected = verdict == "rejected"
        if verdict != "kept":
            labels, confidence, fg, interior, network = own
            estimate_scale, factor = (None if rejected else factor), 1.0
    unsure = own_estimated and _unsure((labels, confidence), _config.SCALE_OWN_BELOW)
    if estimated and scale_check and (factor < 1.0 or unsure) and int(labels.max()):
        found, checked = yield from _surest_scale(grey, network, rows, bar, factor, tile, overlap, postprocess,
                                                  (labels, confidence, fg, interior))
        if checked != factor:
            (labels, confidence, fg, interior), estimate_scale, factor = found, factor, checked
    seen, inverted = grey, False  # the grey levels the labels were found on
    if polarity_check and network is not getattr(segmenter, "bright", None):
        (labels, confidence, fg, interior), seen, inverted = yield from _surer_polarity(
            grey, network, rows, bar, factor, tile, overlap, postprocess, (labels, confidence, fg, interior))
    fine = small_pass_factor(factor) if small_pass else None
    first = int(labels.max())
    if fine is not None and first:  # (without a particle found, there is nothing to judge the small ones by)
        small = yield from _labels_at(seen, network, rows, bar, fine, tile, overlap, postprocess)  # the same network
        labels, confidence, fg, interior = add_small_particles(seen, labels, confidence, fg, interior, *small[:4], rows=rows)
    labels, confidence, added = final_particles(grey, labels, confidence, fg, interior, network, rows, first)
    if estimated and diameter is None and getattr(sizer, "coarse_sizing", None) is not None:
        found = equivalent_diameters(labels, min_area=9)  # too small to see coarsely: what was found, measured
        diameter = float(np.median(found)) if found.size else None
    return SegmentationResult(labels=labels, foreground=fg, interior=interior, info_bar=bar,
                              diameter_px=None if diameter is None else float(diameter),
                              diameter_estimated=estimated and diameter is not None, model=network.name,
                              confidence=confidence, enlarge_below_px=sizer.diameter_px / _config.ENLARGE_BELOW,
                              scale=factor, enlargement_rejected=rejected, small_added=added,
                              estimate_scale=estimate_scale, inverted=inverted)


def check_enlargement(grey: np.ndarray, segmenter, diameter: float, *, scale_check: bool = True, tile: int = TILE,
                      overlap: int | None = None, postprocess: PostprocessConfig | None = None) -> str:
    """:func:`enlargement_verdict` for a grey specimen without info bar enlarged for an estimated ``diameter``,
    as ``segment_steps`` reaches it (on the passes' confidence): the block plan's check, on a centre crop."""
    segmenter = passes_only(segmenter)
    run = functools.partial(segment, grey, info_bar=None, tile=tile, overlap=overlap, postprocess=postprocess,
                            polarity_check=False)  # (segment_steps judges enlargements on the image as it is)
    found, model_px = run(segmenter, diameter=diameter), segmenter.sizer.diameter_px
    own = None
    if not enlargement_holds(found.labels, model_px):
        own = run(segmenter, diameter=None)
    elif scale_check:  # the network the enlarged image was segmented with (``auto`` has two)
        own = run(network_of(segmenter, found.model), diameter=None)
    return enlargement_verdict((found.labels, found.confidence), None if own is None else (own.labels, own.confidence),
                               model_px)


def network_of(segmenter: "Segmenter | AutoSegmenter", name: str | None) -> "Segmenter":
    """The network of ``segmenter`` that made a result (``SegmentationResult.model``): one of an ``auto``
    segmenter's two, else ``segmenter`` itself."""
    networks = [getattr(segmenter, key, None) for key in ("general", "bright")]
    return next((n for n in networks if n is not None and n.name == name), segmenter)


def enlargement_verdict(enlarged: tuple[np.ndarray, np.ndarray], own: tuple[np.ndarray, np.ndarray] | None,
                        model_diameter_px: float | None = None) -> str:
    """Whether an image enlarged for an *estimated* diameter keeps the enlargement.

    ``enlarged`` and ``own``: (labels, per-particle confidence) found on the enlarged image
    and on the image at its own scale (None: not segmented there). ``"rejected"``: the
    particles found enlarged are not small, or there are none where the own scale finds
    some (:func:`~napari_nanogan.segmentation.sizing.enlargement_holds`); ``"checked"``:
    the network is more than ``config.SCALE_ENLARGE_MARGIN`` surer of the particles at the
    image's own scale (the scale check); ``"kept"``: otherwise, and where neither finds any.
    """
    if not enlargement_holds(enlarged[0], model_diameter_px):
        return "rejected" if own is not None and (int(enlarged[0].max()) or int(own[0].max())) else "kept"
    if own is not None and _mean_confidence(own) - _mean_confidence(enlarged) > _config.SCALE_ENLARGE_MARGIN:
        return "checked"
    return "kept"


def surest_scale(grey: np.ndarray, network: "Segmenter", factor: float, *, tile: int = TILE, overlap: int | None = None,
                 postprocess: PostprocessConfig | None = None) -> float:
    """The scale check of ``segment_steps`` (``scale_check``) on a grey specimen without info bar: the factor
    near ``factor`` whose particles ``network`` is surest of (``factor`` where it finds none, and where
    ``factor`` is 1, the estimate's own scale, and the network is sure of them)."""
    found = labels_at(grey, network, factor, tile=tile, overlap=overlap, postprocess=postprocess)
    if not int(found[0].max()) or factor == 1.0 and not _unsure(found, _config.SCALE_OWN_BELOW):
        return factor
    return drive(_surest_scale(grey, network, slice(None), None, factor, tile, overlap, postprocess, found))[1]


def check_polarity(grey: np.ndarray, network: "Segmenter", factor: float, *, tile: int = TILE,
                   overlap: int | None = None, postprocess: PostprocessConfig | None = None) -> bool:
    """The polarity check of ``segment_steps`` (``polarity_check``) on a grey specimen without info bar, resized by
    ``factor`` for ``network``: whether its labels come from the image with its grey levels inverted."""
    found = labels_at(grey, network, factor, tile=tile, overlap=overlap, postprocess=postprocess)
    return drive(_surer_polarity(grey, network, slice(None), None, factor, tile, overlap, postprocess, found))[2]


def labels_at(grey: np.ndarray, network: "Segmenter", factor: float, *, tile: int = TILE, overlap: int | None = None,
              postprocess: PostprocessConfig | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(labels, confidence, foreground, interior) of one pass of ``network`` over a grey specimen without info bar
    resized by ``factor``, without ``segment_steps``' checks: what the checks compare (``bench.scale_study``)."""
    return drive(_labels_at(grey, network, slice(None), None, factor, tile, overlap, postprocess))[:4]


def polarity_verdict(found: tuple[np.ndarray, np.ndarray], flipped: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether the (labels, per-particle confidence) found on the inverted image replace those found on the image
    as it is: at least ``config.POLARITY_MORE`` times as many particles, of a mean confidence more than
    ``config.POLARITY_MARGIN`` higher (``segment_steps``' ``polarity_check``). Touching particles an inversion
    merges along their contact lines are as sure but fewer."""
    more = int(flipped[0].max()) >= _config.POLARITY_MORE * int(found[0].max()) > 0
    return more and _mean_confidence(flipped) - _mean_confidence(found) > _config.POLARITY_MARGIN


def _surer_polarity(grey, network, rows, bar, factor, tile, overlap, postprocess, found):
    """((labels, confidence, foreground, interior), their grey levels, whether inverted): ``found``, or where
    ``network`` is unsure of it (``segment_steps``' ``polarity_check``), the inverted image's if :func:`polarity_verdict`
    takes them."""
    if not _unsure(found[:2], _config.POLARITY_UNSURE_BELOW):
        return found, grey, False
    yield Progress(0, 1, "segmenting the image with its grey levels inverted too")
    mirrored = invert(grey)
    flipped = yield from _labels_at(mirrored, network, rows, bar, factor, tile, overlap, postprocess)
    if polarity_verdict(found[:2], flipped[:2]):
        return flipped[:4], mirrored, True
    return found, grey, False


def _unsure(found, below: float) -> bool:
    """Whether (labels, confidence, ...) hold particles whose mean confidence is under ``below``."""
    return bool(int(found[0].max())) and _mean_confidence(found) < below


def _mean_confidence(found) -> float:
    confidence = found[1]
    return float(np.mean(confidence)) if confidence.size else -1.0


def _surest_scale(grey, network, rows, bar, factor, tile, overlap, postprocess, found):
    """((labels, confidence, foreground, interior), factor) at the scale near ``factor`` (at most 1) whose
    particles ``network`` is surest of: ``segment_steps``' ``scale_check``.

    A larger scale (the image less shrunk) is taken where its mean confidence is at most
    ``config.SCALE_TOLERANCE`` below the current one's, a smaller one only where it beats it
    by ``config.SCALE_SHRINK_MARGIN`` (and the other by more than ``config.SCALE_MARGIN``
    would): an image shrunk too far merges neighbours into particles the network is just as
    sure of. From the image's own scale (``factor`` 1), the first step smaller needs
    ``config.SCALE_OWN_MARGIN``. Scales within 5 % of 1 are
    the image's own (as :func:`~napari_nanogan.segmentation.scale.resize_factor` has it);
    scales at which the specimen would be under ``MIN_SIDE`` px are not tried.
    """
    height, width = grey[rows].shape

    def scale(steps: int) -> float:  # (whole steps from the estimate's: no drift across 0.5 or 1)
        option = float(np.clip(factor * _config.SCALE_STEP**steps, _config.MIN_RESIZE, 1.0))
        return 1.0 if abs(option - 1.0) < 0.05 else option

    results = {0: found}
    current, directions = 0, (1, -1)
    for _ in range(_config.SCALE_MOVES):
        options = {}
        for direction in directions:
            step = current + direction
            option = scale(step)
            if abs(np.log(option / scale(current))) < 1e-3:  # (clipped back onto the current scale)
                continue
            if min(round(height * option), round(width * option)) < MIN_SIDE:
                continue  # too small to segment
            if step not in results:
                yield Progress(0, 1, f"checking the scale: image made {1 / option:.2g} times smaller")
                results[step] = (yield from _labels_at(grey, network, rows, bar, option, tile, overlap,
                                                       postprocess))[:4]
            options[direction] = step
        if not options:
            break
        sure = _mean_confidence(results[current])
        shrink = _config.SCALE_OWN_MARGIN if scale(current) == 1.0 else _config.SCALE_SHRINK_MARGIN
        gain = {d: _mean_confidence(results[step]) - sure - (_config.SCALE_MARGIN if d > 0 else shrink)
                for d, step in options.items()}
        direction = max(gain, key=gain.get)
        if gain[direction] <= 0:  # none clearly surer: a larger scale about as sure as this one, or stay
            direction = 1
            if 1 not in options or gain[1] + _config.SCALE_MARGIN < -_config.SCALE_TOLERANCE:
                break
        current, directions = options[direction], (direction,)
    return results[current], (factor if current == 0 else scale(current))


def _labels_at(grey, segmenter, rows, bar, factor, tile, overlap, postprocess):
    """(labels, confidence, foreground, interior, network) of ``grey`` resized by ``factor`` for the network."""
    yield Progress(0, 1, "choosing the model")
    for network, accept in segmenter.candidates(grey, rows, factor):
        if factor == 1.0:
            steps = probability_steps(grey, network, tile=tile, overlap=overlap, specimen_rows=rows)
        else:
            steps = resized_probability_steps(grey, network, factor, rows, tile=tile, overlap=overlap)
        fg, interior = yield from staged(steps, f"segmenting with {network.name}")
        if accept is None or accept(fg):
            break
    yield Progress(1, 1, "separating touching particles")
    config = postprocess or network.postprocess
    if factor != 1.0:
        config = scale_postprocess(config, 1.0 / factor)
    if bar is not None:
        fg[bar.start : bar.stop] = 0
        interior[bar.start : bar.stop] = 0
    labels = instances_from_probabilities(fg, interior, config)
    labels, confidence = judge(grey, labels, fg, interior, network, config.min_confidence, rows)
    return labels, confidence, fg, interior, network


def segment(
    image: np.ndarray,
    segmenter: "Segmenter | AutoSegmenter",
    *,
    diameter: float | Literal["auto"] | None = None,
    info_bar: InfoBar | Literal["auto"] | None = "auto",
    tile: int = TILE,
    overlap: int | None = None,
    postprocess: PostprocessConfig | None = None,
    small_pass: bool = True,
    scale_check: bool = True,
    polarity_check: bool = True,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SegmentationResult:
    """Segment a 2D EM image into particles (the options are :func:`segment_steps`').

    ``progress(done, total)`` is called after each tile (and each stage); ``should_stop()``
    is polled at the same points and raises :class:`InterruptedError` when it returns True.
    """
    steps = segment_steps(image, segmenter, diameter=diameter, info_bar=info_bar, tile=tile, overlap=overlap,
                          postprocess=postprocess, small_pass=small_pass, scale_check=scale_check,
                          polarity_check=polarity_check)
    try:
        return drive(steps, progress=progress, should_stop=should_stop)
    except InterruptedError:
        raise InterruptedError("segmentation cancelled") from None
