"""The scale a segmenter works at: how much an image of particles ``diameter`` px across is resized.

The shipped networks work best with particles about ``MODEL_DIAMETER_PX`` (24 px)
across. Images of much larger particles are made smaller for the network (never larger),
and the post-processing's distances follow.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from ..config import MIN_RESIZE, MODEL_DIAMETER_PX, PostprocessConfig


def resize_factor(diameter: float | None, model_diameter: float = MODEL_DIAMETER_PX) -> float:
    """How much :func:`~napari_nanogan.segmentation.segment_steps` resizes an image whose particles are ``diameter`` px across.

    Images are only made smaller: 1.0 for ``None``, for a diameter at most 5 % above the
    model's, and for any smaller diameter. Factors under ``MIN_RESIZE`` are raised to it,
    with a warning; a diameter that is not a positive number raises ``ValueError``.
    """
    if diameter is None:
        return 1.0
    try:
        diameter = float(diameter)
    except (TypeError, ValueError):
        raise ValueError(f"particle diameter must be a number of pixels, not {diameter!r}") from None
    if not np.isfinite(diameter) or diameter <= 0:
        raise ValueError(f"particle diameter must be a positive number of pixels, not {diameter}")
    factor = min(model_diameter / diameter, 1.0)
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
