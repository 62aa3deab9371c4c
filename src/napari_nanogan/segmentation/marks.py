"""Marks burnt into a figure are not particles.

Scale bars, panel letters, label boxes and arrows drawn into a figure are ink: pixels at
the image's lowest or highest grey level, over most of their area. Particles seldom are:
where the typical particle has ``config.CLIPPING_SHARE`` or more of its pixels at that
level, the level is the detector's clipping and nothing is dropped for it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .. import config as _config
from .confidence import drop_doubtful, particle_confidence


def ink_particles(grey: np.ndarray, labels: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
    """Which particles 1..K of ``labels`` (index k - 1) are ink: ``config.INK_SHARE`` or more of their pixels at an
    extreme grey level of the specimen rows that the median particle has under ``config.CLIPPING_SHARE`` of."""
    n = int(labels.max()) if labels.size else 0
    ink = np.zeros(n, bool)
    specimen = np.asarray(grey)[rows]
    if n == 0 or specimen.size == 0:
        return ink
    grey, index = np.asarray(grey), np.arange(1, n + 1)
    for level in (specimen.min(), specimen.max()):
        share = ndi.mean((grey == level).astype(np.float32), labels, index)
        if np.median(share) < _config.CLIPPING_SHARE:
            ink |= share >= _config.INK_SHARE
    return ink


def drop_ink(grey: np.ndarray, labels: np.ndarray, confidence: np.ndarray | None, rows: slice = slice(None)
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """``labels`` without the particles :func:`ink_particles` finds, renumbered 1..K in order, and their confidence."""
    return without_particles(labels, confidence, ink_particles(grey, labels, rows))


#: Images over this many pixels are not searched for a figure's scale bar: a montage holds none, and the
#: search takes about 12 bytes a pixel.
SCALE_BAR_MAX_PIXELS = 4096 * 4096


def scale_bar_marks(grey: np.ndarray, labels: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
    """Which particles 1..K of ``labels`` (index k - 1) are a scale bar's label or the bar itself: wholly (9/10)
    in the zone around the bar found in the specimen ``rows`` of ``grey`` (:func:`scale_bar_zone`) with
    ``config.SCALE_BAR_INK_SHARE`` of their pixels at its level; none in images over
    :data:`SCALE_BAR_MAX_PIXELS`. Unlike :func:`ink_particles` it holds where the particles are as bright
    (or dark) as the bar: a label's letters then look like them, and only the zone tells them apart. A
    particle of such an image lying wholly in the zone goes too (none of the annotated EMPS particles did)."""
    from ..io.images import as_grey
    from ..io.scalebar import ScaleBar, find_scale_bar

    n = int(labels.max()) if labels.size else 0
    grey = as_grey(grey)  # (a colour image's bar is found on its grey levels)
    start = rows.indices(grey.shape[0])[0]
    bar = find_scale_bar(grey[rows]) if n and 0 < grey[rows].size and grey.size <= SCALE_BAR_MAX_PIXELS else None
    if bar is None:
        return np.zeros(n, bool)
    bar = ScaleBar(bar.top + start, bar.bottom + start, bar.start, bar.stop, bar.level)
    zone, at_level = scale_bar_zone(grey, bar, rows)
    index = np.arange(1, n + 1)
    share = ndi.mean(at_level.astype(np.float32), labels, index)
    return (ndi.mean(zone.astype(np.float32), labels, index) >= 0.9) & (share >= _config.SCALE_BAR_INK_SHARE)


def scale_bar_zone(grey: np.ndarray, bar, rows: slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
    """(the zone of a scale bar's label around ``bar``: three tenths of its length beyond either end, and
    ``config.SCALE_BAR_ZONE_HEIGHT`` of it, 3 times its thickness and at least 24 px above and below; the pixels
    at its level, by the grey range of the specimen ``rows``) of a grey image, as boolean masks."""
    from ..io.scalebar import LEVEL_TOLERANCE

    grey = np.asarray(grey)
    h = max(3 * bar.thickness_px, 24, int(round(_config.SCALE_BAR_ZONE_HEIGHT * bar.length_px)))
    w = 0.3 * bar.length_px
    zone = np.zeros(grey.shape, bool)
    zone[max(bar.top - h, 0) : bar.bottom + h, max(int(bar.start - w), 0) : int(np.ceil(bar.stop + w))] = True
    low, high = float(grey[rows].min()), float(grey[rows].max())
    tolerance = LEVEL_TOLERANCE * (high - low)
    return zone, (grey >= high - tolerance if bar.level == "white" else grey <= low + tolerance)


def drop_scale_bar_marks(grey: np.ndarray, labels: np.ndarray, confidence: np.ndarray | None,
                         rows: slice = slice(None)) -> tuple[np.ndarray, np.ndarray | None]:
    """``labels`` without the particles :func:`scale_bar_marks` finds, renumbered 1..K in order, and their confidence."""
    return without_particles(labels, confidence, scale_bar_marks(grey, labels, rows))


def without_particles(labels: np.ndarray, confidence: np.ndarray | None, drop: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray | None]:
    """``labels`` without the particles ``drop`` marks (index k - 1), renumbered 1..K in order, and their confidence."""
    if not drop.any():
        return labels, confidence
    keep = np.concatenate([[False], ~drop])
    lut = np.zeros(len(keep), labels.dtype)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=labels.dtype)
    return lut[labels], None if confidence is None else np.asarray(confidence)[~drop]


def judge(grey: np.ndarray, labels: np.ndarray, foreground: np.ndarray, interior: np.ndarray, network,
          min_confidence: float, rows: slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
    """(labels, confidence) of the particles found, as every path keeps them: the confidence of each
    (``network``'s confidence model), those under ``min_confidence`` dropped, and the marks (:func:`drop_ink`)."""
    confidence = particle_confidence(labels, foreground, interior, network.confidence_model)
    if min_confidence > 0 and confidence.size:
        labels, confidence = drop_doubtful(labels, confidence, min_confidence)
    return drop_ink(grey, labels, confidence, rows)


def final_particles(grey: np.ndarray, labels: np.ndarray, confidence: np.ndarray, foreground: np.ndarray,
                    interior: np.ndarray, network, rows: slice, first: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(labels, confidence, how many of the particles numbered after ``first`` are left) of the particles a
    segmentation returns: a scale bar's label dropped (:func:`scale_bar_marks`), then :func:`judge_final`."""
    drop = scale_bar_marks(grey, labels, rows)
    labels, confidence = without_particles(labels, confidence, drop)
    first -= int(drop[:first].sum())
    final, confidence = judge_final(labels, confidence, foreground, interior, network)
    added = np.unique(final[labels > first])
    return final, confidence, int((added > 0).sum())


def judge_final(labels: np.ndarray, confidence: np.ndarray, foreground: np.ndarray, interior: np.ndarray,
                network) -> tuple[np.ndarray, np.ndarray]:
    """(labels, confidence) of the final particles, as every path keeps them: where ``network`` has a final
    confidence model (one that sees each particle's shape too), its probability for each particle, and those
    under its ``metrics["min_confidence"]`` dropped; else ``labels`` and ``confidence`` as they are."""
    model = getattr(network, "final_confidence_model", None)
    if model is None or not labels.size or not int(labels.max()):
        return labels, confidence
    confidence = particle_confidence(labels, foreground, interior, model)
    threshold = float(model.metrics.get("min_confidence", 0.0))
    return drop_doubtful(labels, confidence, threshold) if threshold > 0 else (labels, confidence)
