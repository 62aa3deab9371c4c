"""The pixel size of an image that does not say it, from the scale bar burnt into it.

Figure crops, PNG exports and many TEM camera images carry no pixel size, only a scale bar:
a solid horizontal bar at the image's lightest or darkest grey level, maybe with end ticks
(``|---|``), with its length written beside it. :func:`find_scale_bar` finds the bar;
with end ticks, its length runs between the ticks' centres; one cut by its label (|-- 2 um --|)
is taken whole. Its length is the user's
to read (no text is recognised), and
:func:`pixel_size_from_scale_bar` turns the two into nm per pixel.

The bar is the longest horizontal rectangle of pixels within 6 % of the image's grey range
of either extreme (gaps of up to 2 px along a row bridged; a plain end run out over pixels that
merely dim) that is at least 3 times as long as it is thick, 12 px long or more and at
most 70 % of the width, standing free (nothing at its level touches it but end ticks); one in
the lower half of the image, where figures and microscopes put it, before one above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Pixels within this share of the grey range of the lightest or darkest level are the bar's.
LEVEL_TOLERANCE = 0.06
#: Rows of the bar cover at least this share of its length (an anti-aliased end may miss a pixel).
ROW_COVER = 0.95
#: End ticks lie within this share of the bar's length of either end.
TICK_ZONE = 0.15
#: A bar is at least this long (px) and at most this share of the image's width.
MIN_LENGTH, MAX_WIDTH_SHARE = 12, 0.7
#: The rows beside a bar differ from its level by at least this share of the grey range, on average.
STAND_OUT = 0.25
#: A bar is at least this many times as long as it is thick.
MIN_ELONGATION = 3.0
#: Gaps of up to this many pixels in a row of extreme pixels are bridged: a bar's compressed pixels
#: fall a little short of its level here and there, which would leave only the longest piece of it.
GAP_PX = 2
#: A plain end runs out over at most this many columns between two at the bar's level (the rest dimmed).
DIM_RUN_PX = 8


@dataclass(frozen=True)
class ScaleBar:
    """A scale bar found in an image: rows ``top:bottom`` of its solid part; its length runs from column
    ``start`` to ``stop`` (pixel edges: a plain bar's ends, or its end ticks' centres)."""

    top: int
    bottom: int
    start: float
    stop: float
    level: str  # "white" or "black"

    @property
    def length_px(self) -> float:
        return self.stop - self.start

    @property
    def thickness_px(self) -> int:
        return self.bottom - self.top


def find_scale_bar(image: np.ndarray) -> ScaleBar | None:
    """The scale bar of a 2D grey image (RGB is made grey), or None where there is none to see."""
    from scipy import ndimage as ndi

    from .images import as_grey

    grey = np.asarray(as_grey(image), np.float32)
    if grey.ndim != 2:
        raise ValueError(f"expected a 2D image, got shape {grey.shape}")
    if grey.size == 0 or not np.isfinite(grey).all():
        return None
    low, high = float(grey.min()), float(grey.max())
    if high <= low:
        return None
    tolerance = LEVEL_TOLERANCE * (high - low)
    width = grey.shape[1]
    found = []
    for level, at_level in (("white", grey >= high - tolerance), ("black", grey <= low + tolerance)):
        at_level = _bridged(at_level)
        parts, _ = ndi.label(at_level, structure=np.ones((3, 3), bool))  # (end ticks join their bar)
        extreme = high if level == "white" else low
        for k, box in enumerate(ndi.find_objects(parts), start=1):
            if box[0].start == 0 or box[0].stop == grey.shape[0]:
                continue  # a frame's edge, or a figure cut through: not a bar standing free
            bar = _bar_of(parts[box] == k, box, width, level)
            if bar is not None and bar.start == box[1].start and bar.stop == box[1].stop:  # plain ends: run them out
                bar = _run_out(grey, bar, extreme, tolerance)
            if bar is not None and _stands_out(grey, bar, extreme, high - low):
                found.append(_joined(bar, at_level))
    if not found:
        return None
    from .infobar import detect_info_bar

    info = detect_info_bar(grey)
    lower = grey.shape[0] / 2

    def rank(b: ScaleBar):
        middle = (b.top + b.bottom) / 2
        in_bar = info is not None and info.start <= middle < info.stop
        return in_bar, middle >= lower, b.thickness_px > 1, b.length_px

    return max(found, key=rank)


def _bar_of(part: np.ndarray, box: tuple, width: int, level: str) -> ScaleBar | None:
    """The bar one connected part of extreme pixels is, or None: a solid run of full rows, end ticks at most."""
    h, w = part.shape
    if w < MIN_LENGTH or w > MAX_WIDTH_SHARE * width:
        return None
    full = part.mean(1) >= ROW_COVER
    rows = np.flatnonzero(full)
    if rows.size == 0 or rows[-1] - rows[0] + 1 != rows.size:  # one solid run of rows
        return None
    if w < MIN_ELONGATION * rows.size or (rows.size == 1 and w < 2 * MIN_LENGTH):
        return None
    slack = max(1, round(0.03 * w))  # (anti-aliased ends)
    for r in rows:  # each row of the bar spans it end to end: a rectangle, not a rod
        cols = np.flatnonzero(part[r])
        if cols[0] > slack or cols[-1] < w - 1 - slack:
            return None
    block = np.zeros(h, bool)
    block[rows[0] : rows[-1] + 1] = True
    for r in (rows[0] - 1, rows[-1] + 1):  # a partly covered edge row (anti-aliased): one run of half its length
        if 0 <= r < h and part[r].sum() >= 0.5 * w and _one_run(part[r]):
            block[r] = True
    rest = np.flatnonzero(part[~block].any(0)) if (~block).any() else np.zeros(0, int)
    if rest.size and not np.all((rest < TICK_ZONE * w) | (rest >= (1 - TICK_ZONE) * w)):
        return None  # something at the bar's level joins it beyond its ends: text, a particle, a frame
    # end ticks (|---|): the length runs between their centres (Zeiss's bars measure so: a 200-nm bar of
    # 7.344-nm pixels is 29 px outside its 2-px ticks, 27 between their centres)
    left, right = rest[rest < TICK_ZONE * w], rest[rest >= (1 - TICK_ZONE) * w]
    if any(tick.size and np.ptp(tick) >= max(4, 0.08 * w) for tick in (left, right)):
        return None  # ticks are thin: a thick end is a bent rod or a letter
    start = float(left.mean()) + 0.5 if left.size else 0.0
    stop = float(right.mean()) + 0.5 if right.size else float(w)
    if stop - start < MIN_LENGTH:
        return None
    y, x = box[0].start, box[1].start
    return ScaleBar(y + int(rows[0]), y + int(rows[-1]) + 1, x + start, x + stop, level)


def _bridged(at_level: np.ndarray) -> np.ndarray:
    """``at_level`` with gaps of up to :data:`GAP_PX` pixels along its rows filled: a closing by a row of
    ``GAP_PX + 1`` pixels (GAP_PX // 2 either side), by array shifts (a tenth of ``ndi.binary_closing``'s time)."""
    def shifted(a: np.ndarray, d: int) -> np.ndarray:
        out = np.zeros_like(a)
        if d > 0:
            out[:, d:] = a[:, :-d]
        else:
            out[:, :d] = a[:, -d:]
        return out

    reach = range(1, GAP_PX // 2 + 1)
    grown = at_level.copy()
    for d in reach:
        grown |= shifted(at_level, d) | shifted(at_level, -d)
    closed = grown.copy()
    for d in reach:
        closed &= shifted(grown, d) & shifted(grown, -d)
    return at_level | closed


def _run_out(grey: np.ndarray, bar: ScaleBar, extreme: float, tolerance: float) -> ScaleBar:
    """The bar with each plain end moved out to the last column whose rows are at its level (within
    ``tolerance``), across columns that merely dim (within twice that; :data:`DIM_RUN_PX` at most
    between two at its level) and gaps of up to :data:`GAP_PX` columns, while the rows just above
    and below stay off its level: a thin bar of noisy or compressed pixels runs on to where it
    ends, not into a region of its level. A bar run out beyond ``MAX_WIDTH_SHARE`` keeps its ends."""
    rows = np.abs(grey[bar.top : bar.bottom] - extreme)
    beside = [np.abs(grey[r] - extreme) for r in (bar.top - 1, bar.bottom) if 0 <= r < grey.shape[0]]
    free = ~np.any([b <= 2 * tolerance for b in beside], axis=0) if beside else np.ones(grey.shape[1], bool)
    at, dim = (rows <= tolerance).all(0) & free, (rows <= 2 * tolerance).all(0) & free
    ends = []
    for end, step in ((int(bar.start), -1), (int(bar.stop) - 1, 1)):
        col, gap, since = end, 0, 0
        while 0 <= col + step < grey.shape[1] and gap <= GAP_PX and since < DIM_RUN_PX:
            col, since = col + step, since + 1
            if at[col]:
                end, gap, since = col, 0, 0
            elif not dim[col]:
                gap += 1
        ends.append(end)
    if ends[1] + 1 - ends[0] > MAX_WIDTH_SHARE * grey.shape[1]:
        return bar  # run out beyond what a bar may be: its ends as found
    return ScaleBar(bar.top, bar.bottom, float(ends[0]), float(ends[1] + 1), bar.level)


def _joined(bar: ScaleBar, at_level: np.ndarray) -> ScaleBar:
    """The bar with its other half where its length is written in a gap of it (|-- 2 um --|): a run of the
    same rows at the same level, 0.5-2 times as long, on one side within 1.5 times its length."""
    solid = at_level[bar.top : bar.bottom].all(0)
    edges = np.flatnonzero(np.diff(np.concatenate([[False], solid, [False]]).astype(np.int8)))
    runs = list(zip(edges[::2], edges[1::2]))  # [start, stop) of each run of solid columns
    mine = next(((a, b) for a, b in runs if a <= (bar.start + bar.stop) / 2 < b), None)
    if mine is None:
        return bar
    length = mine[1] - mine[0]
    halves = [(a, b) for a, b in runs if (a, b) != mine and 0.5 * length <= b - a <= 2 * length
              and min(abs(a - mine[1]), abs(mine[0] - b)) <= 1.5 * length]
    if len(halves) != 1:  # none, or a row of bars: this one alone
        return bar
    a, b = halves[0]
    zone = max(4, round(TICK_ZONE * (b - a)))
    if b <= mine[0]:  # the other half on the left: its outer end is its left end (or tick)
        return ScaleBar(bar.top, bar.bottom, _tick_centre(at_level, bar, a, a + zone, default=float(a)), bar.stop,
                        bar.level)
    return ScaleBar(bar.top, bar.bottom, bar.start, _tick_centre(at_level, bar, b - zone, b, default=float(b)),
                    bar.level)


def _tick_centre(at_level: np.ndarray, bar: ScaleBar, lo: int, hi: int, *, default: float) -> float:
    """The centre (pixel edges) of a tick in columns ``lo:hi``: the columns at the level just above or below the
    bar's rows; ``default`` without one."""
    rows = [r for r in (bar.top - 1, bar.bottom) if 0 <= r < at_level.shape[0]]
    cols = np.flatnonzero(at_level[rows, lo:hi].any(0)) if rows else np.zeros(0, int)
    return float(lo + cols.mean()) + 0.5 if cols.size else default


def _stands_out(grey: np.ndarray, bar: ScaleBar, extreme: float, span: float) -> bool:
    """Whether the rows just above and those just below the bar each differ from its level by a quarter of
    the grey range or more, on average: a bar drawn to be read, not the dark or bright edge of a region."""
    cols = slice(int(bar.start), int(np.ceil(bar.stop)))
    sides = (grey[max(bar.top - 4, 0) : max(bar.top - 1, 0), cols], grey[bar.bottom + 1 : bar.bottom + 4, cols])
    return all(side.size and float(np.abs(side - extreme).mean()) >= STAND_OUT * span for side in sides)


def _one_run(row: np.ndarray) -> bool:
    cols = np.flatnonzero(row)
    return cols[-1] - cols[0] + 1 == cols.size


def pixel_size_from_scale_bar(image: np.ndarray, length_nm: float) -> tuple[float, ScaleBar]:
    """(nm per pixel, the bar) for an image whose scale bar is ``length_nm`` long. A ``ValueError`` where no
    bar is found or the length is not a positive number."""
    if not (np.isfinite(length_nm) and length_nm > 0):
        raise ValueError(f"the scale bar's length must be a positive number of nm, not {length_nm!r}")
    bar = find_scale_bar(image)
    if bar is None:
        raise ValueError("no scale bar found (a solid white or black horizontal bar, at least 12 px long); "
                         "give the pixel size instead")
    return float(length_nm) / bar.length_px, bar


_LENGTH = r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([^\s0-9.][^\s]*)?\s*"


def length_is_unitless(text: str) -> bool:
    """Whether a length typed for a scale bar is a bare number (which :func:`parse_length_nm` takes as nm; a
    scale bar's label always has its unit, so callers warn of it)."""
    import re

    match = re.fullmatch(_LENGTH, str(text))
    return match is not None and not match.group(2)


def parse_length_nm(text: str) -> float:
    """A length with its unit ("200 nm", "0.5 µm", "1um", "20 Å") in nm; a bare number is nm."""
    import re

    from .metadata import to_nm

    if re.search(r"\d,\d", str(text)):
        raise ValueError(f"{text!r}: write the decimal point as '.', e.g. '2.5 nm'")
    match = re.fullmatch(_LENGTH, str(text))
    if match is None:
        raise ValueError(f"{text!r}: expected a length such as '200 nm' or '0.5 um'")
    value, unit = float(match.group(1)), match.group(2) or "nm"
    try:
        nm = to_nm(value, unit)
    except ValueError:
        raise ValueError(f"{text!r}: unknown unit {unit!r} (use nm, um, µm, Å or pm)") from None
    if not (np.isfinite(nm) and nm > 0):
        raise ValueError(f"{text!r}: a scale bar's length must be a finite length more than 0")
    return nm
