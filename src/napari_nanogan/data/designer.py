"""Mask designer: particle masks from physical parameters, or fitted to annotated particles.

Sizes are log-normal in equivalent-circle diameter (nm): ``median_nm`` and the
geometric spread ``sigma`` (standard deviation of ln d). The number of particles
is given directly or follows from an area ``coverage``. Outlines are elliptical or
faceted (polygons); a particle may lie partly behind earlier ones (``overlap``),
but labels never share a pixel and touching ones keep a 1-px gap, so 4-connected
components are the particles (the BAM annotation convention the segmenter learned).
"""

from __future__ import annotations

import numpy as np

from ..config import MaskDesign
from .procedural import particle_labels


def design_mask(design: MaskDesign) -> np.ndarray:
    """Instance labels (int32) of a field following ``design``."""
    if design.height < 16 or design.width < 16:
        raise ValueError("the designed image must be at least 16 x 16 pixels")
    if design.pixel_size_nm <= 0 or design.median_nm <= 0 or design.sigma < 0:
        raise ValueError("pixel size and median size must be positive, sigma non-negative")
    diameter_px = design.median_nm / design.pixel_size_nm
    if diameter_px < 3:
        raise ValueError(f"median size {design.median_nm} nm is {diameter_px:.1f} px: particles under 3 px cannot be drawn")
    return particle_labels((design.height, design.width), n_particles=design.expected_count(), mean_diameter=diameter_px,
                           spread=design.sigma, elongation=design.elongation, clustering=design.clustering,
                           facets=design.facets, overlap=design.overlap, seed=design.seed)


def fit_design(labels: np.ndarray, pixel_size_nm: float, *, min_area_px: int = 16, seed: int = 0) -> MaskDesign:
    """A design whose statistics follow an annotated label image (log-normal fit of its ECDs)."""
    from ..measure import measure_particles

    table = measure_particles(labels, pixel_size_nm=pixel_size_nm)
    keep = table.columns["area_nm2"] >= min_area_px * pixel_size_nm**2
    whole = keep & table.included()
    d = table.columns["ecd_nm"][whole if whole.sum() >= 3 else keep]
    if d.size < 3:
        raise ValueError("need at least 3 particles of 16 px or more to fit a size distribution")
    logd = np.log(d)
    aspect = table.columns["aspect_ratio"][keep]
    h, w = labels.shape
    return MaskDesign(height=h, width=w, pixel_size_nm=pixel_size_nm, median_nm=float(np.exp(np.median(logd))),
                      sigma=float(logd.std(ddof=1)), count=int(keep.sum()), coverage=float((labels > 0).mean()),
                      elongation=float(np.clip(1 - np.median(aspect), 0, 0.8)), seed=seed)
