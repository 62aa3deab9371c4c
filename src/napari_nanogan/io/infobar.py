"""Detection of the microscope's info bar (data bar) at the bottom or top of SEM images.

An info bar is a band of rows reaching the image edge whose pixels mostly share one
value (a flat background carrying text and a scale bar), starting at a sharp row
boundary. Specimen rows are noisy: their most frequent value covers a few per cent
of the row, bar rows 80-100 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class InfoBar:
    """Rows ``start`` to ``stop - 1`` of the image are the info bar (not specimen)."""

    start: int
    stop: int
    side: str  # "bottom" or "top"

    @property
    def specimen_rows(self) -> slice:
        return slice(self.stop, None) if self.side == "top" else slice(0, self.start)


def bottom_bar_start(bar: InfoBar | None) -> int | None:
    """The first row of a bottom info bar, or None (no bar, or a bar at the top): what measurements flag
    particles against (``measure_particles(info_bar_start=...)``) and label TIFFs keep."""
    return bar.start if bar is not None and bar.side == "bottom" else None


def top_bar_end(bar: InfoBar | None) -> int | None:
    """One past the last row of a top info bar, or None (no bar, or a bar at the bottom): the first specimen
    row, what measurements flag particles against (``measure_particles(info_bar_end=...)``) and label TIFFs keep."""
    return bar.stop if bar is not None and bar.side == "top" else None


#: Integer images spanning at most this many grey values are counted with one histogram per
#: row; wider ranges (32/64-bit data) are counted by sorting each row, which needs no memory
#: beyond the row itself, whatever the values.
_HISTOGRAM_SPAN = 1 << 16


def _row_mode_fraction(image: np.ndarray) -> np.ndarray:
    """Fraction of each row covered by the row's most frequent value.

    Floats are quantised to 256 levels between the finite minimum and maximum (NaN and
    infinite pixels count as one more level). Memory stays within a few rows for any
    dtype and value range.
    """
    img = np.asarray(image)
    out = np.empty(img.shape[0])
    if np.issubdtype(img.dtype, np.floating):
        finite = np.isfinite(img)
        if not finite.any():
            return np.ones(img.shape[0])
        lo, hi = np.min(img, where=finite, initial=np.inf), np.max(img, where=finite, initial=-np.inf)
        span = hi - lo if hi > lo else 1
        work = np.promote_types(img.dtype, np.float32)  # float16 would overflow at 255 x its range
        for i, row in enumerate(img):
            with np.errstate(invalid="ignore", over="ignore"):
                levels = np.round(255 * (row.astype(work) - lo) / span)
            levels[~np.isfinite(row)] = 256
            out[i] = np.bincount(levels.astype(np.intp), minlength=257).max() / row.size
        return out
    if img.dtype == bool:
        img = img.view(np.uint8)
    lo, hi = int(img.min()), int(img.max())
    if hi - lo < _HISTOGRAM_SPAN:
        signed, offset = np.issubdtype(img.dtype, np.signedinteger), img.dtype.type(lo)
        for i, row in enumerate(img):  # a signed type's difference may not fit it (127 - -128): in 64 bits
            diff = row.astype(np.int64) - lo if signed else row - offset
            out[i] = np.bincount(diff.astype(np.intp), minlength=1).max() / row.size
        return out
    for i, row in enumerate(img):
        ordered = np.sort(row)
        edges = np.flatnonzero(ordered[1:] != ordered[:-1])
        runs = np.diff(np.concatenate(([-1], edges, [row.size - 1])))
        out[i] = runs.max() / row.size
    return out


def _band_from_edge(frac: np.ndarray, *, flat: float, edge_slack: int) -> int:
    """Number of rows of the flat band that starts within ``edge_slack`` rows of index 0."""
    n = len(frac)
    for offset in range(min(edge_slack + 1, n)):
        if frac[offset] >= flat:
            end = offset
            while end < n and frac[end] >= flat:
                end += 1
            return end
    return 0


def detect_info_bar(
    image: np.ndarray,
    *,
    flat: float = 0.6,
    max_fraction: float = 0.25,
    min_rows: int = 8,
    edge_slack: int = 4,
) -> InfoBar | None:
    """Find the info bar of an SEM image, or return None.

    Parameters
    ----------
    image : ndarray of shape (M, N)
        Grey image.
    flat : float
        A row belongs to the bar when its most frequent value covers at least this fraction.
    max_fraction : float
        Largest bar height as a fraction of the image height.
    min_rows : int
        Smallest bar height in rows.
    edge_slack : int
        The bar may stop up to this many rows before the image edge (a thin border
        of other pixels, as in the BAM images); those rows count as bar.
    """
    image = np.asarray(image)
    if image.ndim != 2 or image.shape[0] < 4 * min_rows or image.shape[1] < 32:
        return None
    h = image.shape[0]
    frac = _row_mode_fraction(image)
    limit = int(max_fraction * h)
    for side, rows in (("bottom", frac[::-1]), ("top", frac)):
        height = _band_from_edge(rows, flat=flat, edge_slack=edge_slack)
        if not (min_rows <= height <= limit):
            continue
        inside = rows[:height]
        outside = rows[height : height + 16]
        # sharp boundary: the specimen next to the bar is not flat
        if outside.size == 0 or np.median(outside) > flat / 2:
            continue
        # text or scale bar: a flat band with nothing on it is a blank region, not a bar
        if inside.min() >= 0.999:
            continue
        if side == "bottom":
            return InfoBar(start=h - height, stop=h, side="bottom")
        return InfoBar(start=0, stop=height, side="top")
    return None
