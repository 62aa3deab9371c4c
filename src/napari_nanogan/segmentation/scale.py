"""The scale a segmenter works at: how much an image of particles ``diameter`` px across is resized.

The shipped networks work best with particles about ``MODEL_DIAMETER_PX`` (24 px)
across. Images of much larger particles are made smaller for the network; images of
particles under half of it, when the diameter is given, are made twice as large; the post-processing's distances follow.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from .. import config as _config
from ..config import MIN_RESIZE, MODEL_DIAMETER_PX, PostprocessConfig


def resize_factor(diameter: float | None, model_diameter: float = MODEL_DIAMETER_PX, *,
                  warn_small: bool = True) -> float:
    """How much :func:`~napari_nanogan.segmentation.segment_steps` resizes an image whose particles are ``diameter`` px across.

    1.0 for ``None`` and for a diameter from the model's / ``ENLARGE_BELOW`` to 5 % above
    the model's. Larger diameters make the image smaller (factors under ``MIN_RESIZE`` are
    raised to it, with a warning); smaller ones make it larger, by at most ``MAX_ENLARGE``
    (:mod:`napari_nanogan.config`; with a warning where the particles stay under the model's /
    ``ENLARGE_BELOW`` even so, unless not ``warn_small``: an estimate's enlargement may be
    undone). A diameter that is not a positive number raises ``ValueError``.
    """
    if diameter is None:
        return 1.0
    try:
        diameter = float(diameter)
    except (TypeError, ValueError):
        raise ValueError(f"particle diameter must be a number of pixels, not {diameter!r}") from None
    if not np.isfinite(diameter) or diameter <= 0:
        raise ValueError(f"particle diameter must be a positive number of pixels, not {diameter}")
    factor = model_diameter / diameter
    if factor > 1.0:  # read at call time: bench.small_particles compares settings
        if factor > _config.ENLARGE_BELOW * _config.MAX_ENLARGE and warn_small:
            smallest = model_diameter / _config.ENLARGE_BELOW
            warnings.warn(
                f"a particle diameter of {diameter:g} px is under {smallest / _config.MAX_ENLARGE:g} px: the image is "
                f"enlarged at most {_config.MAX_ENLARGE:g} times, and particles still under {smallest:g} px then are "
                "mostly missed (an image at a higher magnification serves better)", stacklevel=3)
        return min(factor, _config.MAX_ENLARGE) if factor > _config.ENLARGE_BELOW else 1.0
    if factor < MIN_RESIZE:
        warnings.warn(
            f"a particle diameter of {diameter:g} px is more than {1 / MIN_RESIZE:g} times this model's "
            f"{model_diameter:g} px; the image is made {1 / MIN_RESIZE:g} times smaller, no more",
            stacklevel=3)
        factor = MIN_RESIZE
    return 1.0 if abs(factor - 1.0) < 0.05 else factor


def scale_postprocess(config: PostprocessConfig, scale: float) -> PostprocessConfig:
    """The post-processing distances and areas of ``config`` for an image ``scale`` times larger."""
    return dataclasses.replace(
        config,
        min_distance=max(1, round(config.min_distance * scale)),
        smooth_sigma=config.smooth_sigma * scale,
        min_area=max(1, round(config.min_area * scale**2)),
        min_seed_area=max(1, round(config.min_seed_area * scale**2)),
    )


def within_pixel_budget(factor: float, shape: tuple[int, int]) -> float:
    """``factor``, lowered (with a warning) so that an enlarged image of ``shape`` stays within
    ``MAX_ENLARGED_PIXELS``; factors up to 1 are returned as they are."""
    if factor <= 1.0:
        return factor
    pixels = float(shape[0]) * float(shape[1])
    limit = _config.MAX_ENLARGED_PIXELS
    if pixels * factor**2 <= limit:
        return factor
    fitted = max(1.0, float(np.sqrt(limit / pixels)))
    warnings.warn(f"enlarging this {shape[0]} x {shape[1]} image {factor:.2f} times for its small particles "
                  f"would exceed {limit / 1e6:g} MP; enlarged {fitted:.2f} times instead "
                  "(`nanogan segment image.zarr` segments block by block at any enlargement)", stacklevel=3)
    return 1.0 if fitted < 1.05 else fitted
