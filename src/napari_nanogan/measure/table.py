"""Per-particle measurements in physical units and size-distribution summaries.

Every length is in nm when the pixel size is known and in pixels otherwise; the unit is
part of every column name (``ecd_nm`` or ``ecd_px``), so a table never loses it. Definitions:

- ``area``: pixel count times the pixel area.
- ``ecd``: equivalent-circle diameter, ``sqrt(4 area / pi)``.
- ``feret_max`` / ``feret_min``: largest and smallest caliper width of the particle's
  convex hull, the hull taken over pixel *corners* (so a w x h rectangle of pixels has
  Feret min w and max sqrt(w^2 + h^2), exactly).
- ``perimeter``: the Crofton estimate of the outline's length (scikit-image's
  ``perimeter_crofton``, 4 directions): within 1 % for discs of 10-100 px radius, where
  counting the pixel contour's steps overestimates round outlines by 4-5 %.
- ``circularity``: ``4 pi area / perimeter^2``, clipped to 1 (1 for a disc).
- ``aspect_ratio``: ``feret_min / feret_max`` (ISO 9276-6), in (0, 1].
- ``solidity``: area over the number of pixel centres inside the convex hull of the
  particle's pixel centres (its own included; exact, by Pick's theorem).
- ``touches_border`` / ``touches_info_bar``: the particle is cut by the image edge or
  the microscope's data bar; such particles are left out of the summary by default.
- ``confidence`` (when the segmentation gives it): the probability that the particle is
  real (:mod:`napari_nanogan.segmentation.confidence`); drop doubtful ones by it.

:func:`size_figure` draws a distribution as a figure to publish; :func:`write_size_plot`
writes it (PNG, SVG or PDF).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LENGTH_COLUMNS = ("ecd", "feret_max", "feret_min", "perimeter")


@dataclass(frozen=True)
class Measurements:
    """A particle table: ``columns`` maps column name to a 1D array (one entry per particle)."""

    columns: dict
    unit: str  # "nm" or "px"
    pixel_size_nm: float | None

    def __len__(self) -> int:
        return len(self.columns["label"])

    def included(self) -> np.ndarray:
        """Particles that count for statistics: not cut by the border or the info bar."""
        return ~(self.columns["touches_border"] | self.columns["touches_info_bar"])


def equivalent_diameters(labels: np.ndarray, *, min_area: int = 1, whole_only: bool = False) -> np.ndarray:
    """Equivalent-circle diameters (px) of the particles of an instance label image, fast.

    Particles under ``min_area`` px are skipped; ``whole_only`` also skips those cut by the image border
    (as published size distributions count them). The full table, in nm, is :func:`measure_particles`.
    """
    labels = np.asarray(labels)
    areas = np.bincount(labels.ravel()).astype(float)
    keep = areas >= max(min_area, 1)
    keep[0] = False
    if whole_only:
        keep[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = False
    return np.sqrt(4 * areas[keep] / np.pi)


def median_diameter(labels: np.ndarray) -> float:
    """Median equivalent-circle diameter (px) of all particles in ``labels``; NaN when there are none."""
    ecd = equivalent_diameters(labels)
    return float(np.median(ecd)) if ecd.size else float("nan")


def row_extremes(coords: np.ndarray) -> np.ndarray:
    """The first and last pixel of each row of a pixel set [K, 2], sorted by (row, column): all its hull
    depends on (a one-pixel row appears twice)."""
    c = np.asarray(coords)
    if len(c) > 1 and ((c[1:, 0] < c[:-1, 0]) | ((c[1:, 0] == c[:-1, 0]) & (c[1:, 1] <= c[:-1, 1]))).any():
        c = c[np.lexsort((c[:, 1], c[:, 0]))]  # regionprops' coords come sorted already
    starts = np.flatnonzero(np.r_[True, c[1:, 0] != c[:-1, 0]])
    ends = np.r_[starts[1:] - 1, len(c) - 1]
    return np.stack([c[starts], c[ends]], 1).reshape(-1, 2)


def convex_hull(points) -> list[tuple]:
    """Vertices of the convex hull of 2D points sorted by (y, x), counter-clockwise, collinear points dropped.

    Andrew's monotone chain in plain Python: a particle's hull has a few dozen points, where a call into
    qhull costs more, and plain Python keeps a worker thread from queueing for the interpreter lock at
    every particle (a Qt event loop takes the lock each time a C call lets it go).
    """
    points = [tuple(p) for p in points]
    if len(points) < 3:
        return points

    def chain(seq):
        out = []
        for p in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (p[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = chain(points), chain(reversed(points))
    return lower[:-1] + upper[:-1]


_CORNERS = ((0, 0), (0, 1), (1, 0), (1, 1))


def feret_diameters(coords: np.ndarray) -> tuple[float, float]:
    """(max, min) caliper diameters of a set of pixel coordinates [K, 2], in pixels (the pixels' corners)."""
    return _feret(convex_hull(row_extremes(coords).tolist()))


def _feret(centres: list[tuple]) -> tuple[float, float]:
    """Feret (max, min) from the hull of the pixel centres: the corner hull is that of its vertices' corners."""
    hull = np.asarray(convex_hull(sorted({(y + dy, x + dx) for y, x in centres for dy, dx in _CORNERS})), float)
    diff = hull[:, None, :] - hull[None, :, :]
    fmax = float(np.sqrt((diff**2).sum(-1)).max())
    edges = np.roll(hull, -1, axis=0) - hull
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    normals = np.stack([-edges[:, 1], edges[:, 0]], 1) / lengths[:, None]
    # the width across each edge's normal: the largest distance of a hull vertex from that edge's line
    widths = np.abs(np.einsum("ejd,ed->ej", diff.transpose(1, 0, 2), normals)).max(1)
    return fmax, float(widths.min())


def convex_pixel_count(coords: np.ndarray) -> int:
    """How many pixel centres the convex hull of a pixel set's centres holds (Pick's theorem; the set's own
    pixels included): the convex area behind ``solidity``, exact, and without drawing the hull."""
    return _pixels_in_hull(convex_hull(row_extremes(coords).tolist()), len(coords))


def _pixels_in_hull(centres: list[tuple], n_pixels: int) -> int:
    hull = np.asarray(centres, np.int64)
    if len(hull) < 3:  # on one line: the lattice points from end to end (its own pixels, and any gaps)
        return int(np.gcd(*np.abs(hull[-1] - hull[0]))) + 1 if len(hull) == 2 else n_pixels
    ahead = np.roll(hull, -1, axis=0)
    twice_area = abs(int((hull[:, 0] * ahead[:, 1] - ahead[:, 0] * hull[:, 1]).sum()))
    boundary = int(np.gcd(np.abs(ahead - hull)[:, 0], np.abs(ahead - hull)[:, 1]).sum())
    return (twice_area + boundary) // 2 + 1


def measure_particles(
    labels: np.ndarray,
    *,
    image: np.ndarray | None = None,
    pixel_size_nm: float | None = None,
    info_bar_start: int | None = None,
    name: str = "",
    confidence: np.ndarray | None = None,
    min_area: int = 1,
    info_bar_end: int | None = None,
) -> Measurements:
    """Measure every particle of an instance label image.

    Parameters
    ----------
    labels, image : ndarray of shape (M, N)
        Instance labels (0 = background); the grey image for ``mean_intensity`` (optional).
    pixel_size_nm : float, optional
        Pixel side in nm; lengths are in pixels when None.
    info_bar_start : int, optional
        First row of a bottom info bar: particles reaching the row above are flagged.
    info_bar_end : int, optional
        One past the last row of a top info bar: particles reaching that row are flagged.
    confidence : ndarray, optional
        Per label (``confidence[k - 1]`` for label ``k``): the probability that the particle is real.
    min_area : int
        Particles of fewer pixels are left out (``nanogan segment`` drops those under 16 px;
        annotations often hold specks of 1-2 px).
    """
    from skimage.measure import regionprops

    labels = np.asarray(labels)
    shape = None if image is None else np.asarray(image).shape
    if labels.ndim != 2 or shape not in (None, labels.shape):
        raise ValueError(f"labels must be 2D, and the image of their shape: labels {labels.shape}, image {shape}")
    if pixel_size_nm is not None and not (math.isfinite(pixel_size_nm) and pixel_size_nm >= 0):
        raise ValueError(f"the pixel size must be a positive number of nm (or None: lengths in px), not {pixel_size_nm}")
    if np.issubdtype(labels.dtype, np.floating) and not np.array_equal(labels, np.round(labels)):
        raise ValueError("labels must be whole numbers (0 = background, 1, 2, 3, ... one per particle)")
    scale = pixel_size_nm if pixel_size_nm else 1.0
    unit = "nm" if pixel_size_nm else "px"
    h, w = labels.shape
    rows: dict[str, list] = {k: [] for k in ("label", "area", "ecd", "feret_max", "feret_min", "perimeter", "circularity",
                                              "aspect_ratio", "solidity", "mean_intensity", "centroid_y", "centroid_x",
                                              "touches_border", "touches_info_bar")}
    if labels.size and not np.issubdtype(labels.dtype, np.bool_) and labels.min() < 0:
        raise ValueError(f"labels hold negative values (down to {labels.min()}); a label image numbers its particles "
                         "1, 2, 3, ... on a background of 0")
    original = None  # label numbers far above the particle count (hashed IDs): measured as 1..n, reported as given
    if labels.size and labels.max() > labels.size:
        from skimage.segmentation import relabel_sequential

        labels, _, inverse = relabel_sequential(labels)
        original = dict(zip(inverse.in_values.tolist(), inverse.out_values.tolist()))  # new label -> the file's
    labels = labels.astype(np.int64)
    props = regionprops(labels, intensity_image=None if image is None else np.asarray(image, float))
    for p in props:
        if p.area < min_area:
            continue
        y0, x0, y1, x1 = p.bbox
        coords = p.coords
        centres = convex_hull(row_extremes(coords).tolist())
        fmax, fmin = _feret(centres)
        per = float(p.perimeter_crofton)
        area = float(p.area)
        rows["label"].append(p.label if original is None else original[p.label])
        rows["area"].append(area * scale**2)
        rows["ecd"].append(math.sqrt(4 * area / math.pi) * scale)
        rows["feret_max"].append(fmax * scale)
        rows["feret_min"].append(fmin * scale)
        rows["perimeter"].append(per * scale)
        rows["circularity"].append(min(1.0, 4 * math.pi * area / per**2) if per > 0 else 1.0)
        rows["aspect_ratio"].append(fmin / fmax if fmax > 0 else 1.0)
        rows["solidity"].append(area / _pixels_in_hull(centres, len(coords)))
        rows["mean_intensity"].append(float(p.intensity_mean) if image is not None else float("nan"))
        rows["centroid_y"].append(p.centroid[0] * scale)
        rows["centroid_x"].append(p.centroid[1] * scale)
        rows["touches_border"].append(y0 == 0 or x0 == 0 or y1 == h or x1 == w)
        rows["touches_info_bar"].append(info_bar_start is not None and y1 >= info_bar_start
                                        or info_bar_end is not None and y0 <= info_bar_end)
    columns = {"image": np.array([name] * len(rows["label"]), dtype=object)}
    for key, values in rows.items():
        dtype = bool if key.startswith("touches") else (float if key != "label" else
                                                        np.uint64 if max(values, default=0) > 2**63 - 1 else np.int64)
        out_key = key
        if key == "area":
            out_key = f"area_{unit}2"
        elif key in LENGTH_COLUMNS or key.startswith("centroid"):
            out_key = f"{key}_{unit}"
        columns[out_key] = np.asarray(values, dtype=dtype)
    if confidence is not None:
        confidence = np.asarray(confidence, float)
        index = columns["label"] - 1
        known = index < len(confidence)
        columns["confidence"] = np.where(known, confidence[np.minimum(index, max(len(confidence) - 1, 0))]
                                         if len(confidence) else np.nan, np.nan)
    return Measurements(columns, unit, pixel_size_nm)


def weighted_percentiles(values: np.ndarray, weights: np.ndarray, qs) -> np.ndarray:
    """Percentiles of a weighted distribution (midpoint interpolation of the cumulative weight)."""
    order = np.argsort(values)
    v, wt = np.asarray(values, float)[order], np.asarray(weights, float)[order]
    cum = (np.cumsum(wt) - 0.5 * wt) / wt.sum()
    return np.interp(np.asarray(qs) / 100.0, cum, v)


def lognormal_fit(values) -> tuple[float, float] | None:
    """The log-normal distribution of sizes fitted to the particles (not to a histogram's bins):
    (geometric mean, geometric SD) = exp of the mean and SD of ln d; None under 3 positive sizes."""
    values = np.asarray(values, float)
    logs = np.log(values[values > 0])
    return (float(np.exp(logs.mean())), float(np.exp(logs.std(ddof=1)))) if logs.size >= 3 else None


#: A log-normal fit is flagged as poor where the Shapiro-Wilk test rejects normality of ln d at this level.
LOGNORMAL_POOR_P = 0.01


def lognormal_p(values) -> float | None:
    """How well :func:`lognormal_fit` describes the sizes: the Shapiro-Wilk p-value of ln d (a test of
    normality valid with the mean and SD estimated from the same sizes); None under 8 or over 5000 sizes,
    or all equal. Under :data:`LOGNORMAL_POOR_P` the sizes depart from a log-normal (two populations, a cut-off
    tail): the fit's numbers describe them poorly. With thousands of particles slight departures count too."""
    from scipy.stats import shapiro

    values = np.asarray(values, float)
    logs = np.log(values[values > 0])
    if not 8 <= logs.size <= 5000 or np.ptp(logs) == 0:
        return None
    return float(shapiro(logs).pvalue)


def lognormal_curve(values, edges) -> tuple[np.ndarray, np.ndarray, tuple[float, float]] | None:
    """(x, expected particles per bin of ``edges`` (uniform), the fit) of :func:`lognormal_fit`, to draw over a
    histogram; None without a fit or with all sizes equal."""
    fit = lognormal_fit(values)
    if fit is None or fit[1] <= 1:
        return None
    x = np.linspace(max(edges[0], 1e-9 * edges[-1]), edges[-1], 200)
    mu, s = np.log(fit[0]), np.log(fit[1])
    density = np.exp(-((np.log(x) - mu) ** 2) / (2 * s * s)) / (x * s * np.sqrt(2 * np.pi))
    return x, np.size(values) * (edges[1] - edges[0]) * density, fit


def summarize_sizes(table: Measurements, *, column: str = "ecd", include_cut: bool = False) -> dict:
    """Count, mean, SD, D10/D50/D90 (number- and volume-weighted) and the log-normal fit
    (:func:`lognormal_fit`: ``geometric_mean``, ``geometric_sd``; how well it fits: ``lognormal_p``,
    :func:`lognormal_p`) of one length column, with the pixel size
    the lengths were converted with (``pixel_size_nm``; None in pixels, or for tables of several)."""
    key = f"{column}_{table.unit}"
    mask = np.ones(len(table), bool) if include_cut else table.included()
    d = table.columns[key][mask]
    out = {"measure": key, "unit": table.unit, "count": int(d.size), "excluded_cut": int((~mask).sum()),
           "pixel_size_nm": table.pixel_size_nm}
    if d.size == 0:
        return out
    out.update(mean=float(d.mean()), sd=float(d.std(ddof=1)) if d.size > 1 else 0.0)
    for q, v in zip((10, 50, 90), np.percentile(d, [10, 50, 90])):
        out[f"D{q}"] = float(v)
    for q, v in zip((10, 50, 90), weighted_percentiles(d, d**3, [10, 50, 90])):
        out[f"D{q}_volume"] = float(v)
    if fit := lognormal_fit(d):
        out["geometric_mean"], out["geometric_sd"] = fit
        if (p := lognormal_p(d)) is not None:
            out["lognormal_p"] = p
    if table.unit == "nm":
        out["fraction_below_100nm"] = float((d < 100).mean())
    return out


def write_table_csv(path: str | os.PathLike, tables: list[Measurements]) -> Path:
    """One CSV row per particle (all tables stacked), written atomically.

    A column some tables lack (``confidence``; the lengths of another unit, ``ecd_nm``
    against ``ecd_px``) is left empty in their rows.
    """
    from ..io.atomic import atomic_path

    path = Path(path)
    keys = list(dict.fromkeys(k for t in tables for k in t.columns)) if tables else ["image", "label"]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(keys)
            for t in tables:
                for i in range(len(t)):
                    writer.writerow([_fmt(t.columns[k][i]) if k in t.columns else "" for k in keys])
    return path


def has_confidence(table: Measurements) -> bool:
    """Whether any particle of ``table`` has a confidence (annotated masks and some models give none)."""
    return bool(np.isfinite(np.asarray(table.columns.get("confidence", ()), float)).any())


def drop_doubtful(table: Measurements, min_confidence: float) -> tuple[Measurements, int]:
    """``table`` without the particles whose ``confidence`` is under ``min_confidence``, and how many those are.

    The confidence is the probability that a particle is real (:mod:`napari_nanogan.segmentation.confidence`).
    Particles without one (an annotated mask, a model without a confidence model) are all kept.
    """
    if not min_confidence or "confidence" not in table.columns:
        return table, 0
    confidence = np.asarray(table.columns["confidence"], float)
    keep = ~(confidence < min_confidence)  # (NaN: no confidence, kept)
    return Measurements({k: v[keep] for k, v in table.columns.items()}, table.unit, table.pixel_size_nm), \
        int((~keep).sum())


def stack_tables(tables: list[Measurements]) -> Measurements:
    """The particles of several tables (one unit) as one table, with the columns they all have (and their
    pixel size where they share one)."""
    keys = [k for k in tables[0].columns if all(k in t.columns for t in tables)]
    pixels = {t.pixel_size_nm for t in tables}
    return Measurements({k: np.concatenate([t.columns[k] for t in tables]) for k in keys}, tables[0].unit,
                        pixels.pop() if len(pixels) == 1 else None)


def write_summary_csv(path: str | os.PathLike, summaries: list[tuple[str, dict]]) -> Path:
    from ..io.atomic import atomic_path

    keys = ["image", "measure", "unit", "count", "excluded_cut", "mean", "sd", "D10", "D50", "D90",
            "D10_volume", "D50_volume", "D90_volume", "fraction_below_100nm", "geometric_mean", "geometric_sd",
            "pixel_size_nm", "lognormal_p"]
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(keys)
            for name, s in summaries:
                writer.writerow([name] + [_fmt(s.get(k, "")) for k in keys[1:]])
    return path


def _fmt(v):
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (float, np.floating)):
        return "" if np.isnan(v) else f"{float(v):.6g}"
    return v


# The size distribution as a figure to publish: the "Measure particles" panel's "Save plot" and
# `nanogan measure --plot`.

PLOT_NAMES = {"ecd": "equivalent-circle diameter", "feret_max": "Feret diameter, max", "feret_min": "Feret diameter, min",
         "perimeter": "perimeter", "area": "area", "circularity": "circularity", "aspect_ratio": "aspect ratio",
         "solidity": "solidity"}
PLOT_LENGTHS = ("ecd", "feret_max", "feret_min")  # the sizes whose percentiles are called D10 / D50 / D90
PLOT_FORMATS = (".png", ".svg", ".pdf")


def bin_edges(values: np.ndarray) -> np.ndarray:
    """Histogram bins by the Freedman-Diaconis rule, kept between 5 and 60 bins."""
    edges = np.histogram_bin_edges(values, bins="fd")
    if not 6 <= len(edges) <= 61:
        edges = np.histogram_bin_edges(values, bins=int(np.clip(len(edges) - 1, 5, 60)))
    return edges


def size_figure(table: Measurements, *, column: str = "ecd", include_cut: bool = False, title: str | None = None,
                figure=None):
    """The number-weighted distribution of one ``column`` of ``table``'s particles (a key of ``PLOT_NAMES``).

    Bars: particles per bin (left axis); line: the cumulative share (right axis, %); vertical
    lines at the 10th, 50th and 90th percentiles (D10, D50 and D90 for the diameters, as in
    the summary CSV; P10 ... for the rest); for the diameters, the fitted log-normal
    (:func:`lognormal_fit`) as a curve of expected particles per bin; n, mean and SD under the title. Particles cut by
    the border or the info bar are left out unless ``include_cut``. Returns the figure (a new
    one unless ``figure`` is given); raises ``ValueError`` with no particle to plot.
    """
    if column not in PLOT_NAMES:
        raise ValueError(f"column must be one of {', '.join(PLOT_NAMES)}, got {column!r}")
    key, unit = column_and_unit(table, column)
    keep = np.ones(len(table), bool) if include_cut else table.included()
    values = np.sort(np.asarray(table.columns[key], float)[keep])
    if not values.size:
        raise ValueError("no particles to size" + (" (all are cut by the border or the info bar)"
                                                   if len(table) and not include_cut else ""))
    if figure is None:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(5.5, 4.2), dpi=100)
    figure.clear()
    ax = figure.add_subplot(111)
    edges = bin_edges(values)
    ax.hist(values, bins=edges, color="#4a7fb5", edgecolor="white", linewidth=0.5)
    if column in PLOT_LENGTHS and (curve := lognormal_curve(values, edges)):
        p = lognormal_p(values)
        poor = p is not None and p < LOGNORMAL_POOR_P
        ax.plot(*curve[:2], color="#e67e22", linewidth=1.5, linestyle="--" if poor else "-",
                label=(f"log-normal: {curve[2][0]:.3g} {unit}, σg {curve[2][1]:.2f}".replace(" ,", ",")
                       + (f"\n(a poor fit: Shapiro-Wilk p = {p:.2g} on ln d)" if poor else "")))
    ax.set_xlabel(PLOT_NAMES[column] + (f" ({unit})" if unit else ""))
    ax.set_ylabel("particles")
    share = ax.twinx()
    share.plot(values, 100 * np.arange(1, values.size + 1) / values.size, color="#333333", linewidth=1.2,
               drawstyle="steps-post")
    share.set_ylim(0, 100)
    share.set_ylabel("cumulative (%)")
    if values.size > 1:
        letter = "D" if column in PLOT_LENGTHS else "P"
        for q, style in zip((10, 50, 90), (":", "-", "--")):
            v = float(np.percentile(values, q))
            ax.axvline(v, color="#c0392b", linestyle=style, linewidth=1.2, label=f"{letter}{q} {v:.3g} {unit}".rstrip())
        figure.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8, frameon=False)
    cut = int(len(table) - keep.sum())
    sd = float(values.std(ddof=1)) if values.size > 1 else 0.0
    stats = f"n = {values.size}" + (f" ({cut} cut, left out)" if cut else "") + \
        f", mean {values.mean():.3g} ± {sd:.2g} {unit} (SD)".replace("  (SD)", " (SD)")
    ax.set_title(f"{title}\n{stats}" if title else stats, fontsize=9)
    figure.tight_layout(rect=(0, 0.1 if values.size > 1 else 0, 1, 1))  # the legend below the axes, off the bars
    return figure


def column_and_unit(table: Measurements, column: str) -> tuple[str, str]:
    """The table's key of the measure ``column`` (``ecd``, ``area`` ...) and its unit ("" for ratios)."""
    if column == "area":
        return f"area_{table.unit}2", f"{table.unit}²"
    if column in PLOT_LENGTHS or column == "perimeter":
        return f"{column}_{table.unit}", table.unit
    return column, ""


def write_size_plot(path: str | os.PathLike, table: Measurements, *, column: str = "ecd", include_cut: bool = False,
                    title: str | None = None, dpi: int = 200) -> Path:
    """:func:`size_figure` written to ``path`` (.png, .svg or .pdf), atomically."""
    from ..io.atomic import atomic_path

    path = Path(path)
    if path.suffix.lower() not in PLOT_FORMATS:
        raise ValueError(f"{path.name}: a plot is written as {', '.join(PLOT_FORMATS)}")
    figure = size_figure(table, column=column, include_cut=include_cut, title=title)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lower()[1:], dpi=dpi)
    return path

