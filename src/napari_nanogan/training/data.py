"""Which data trains what: images at the model's scale, the generators' data sets.

The segmenter sees particles about ``MODEL_DIAMETER_PX`` across at inference (images of
larger particles are shrunk first); :func:`at_model_scale` does the same to a training
or validation image, from its annotated median particle diameter.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..config import GENERATOR_DATASETS, MODEL_DIAMETER_PX
from ..data.datasets import Sample, load_samples, shared_splits
from ..measure import median_diameter
from ..normalize import intensity_range
from ..segmentation.scale import resize_factor

#: Smallest side (px) a bright-field sample may have at the model's scale to be kept.
MIN_TEM_SIDE = 128


def model_scale_factor(labels: np.ndarray, diameter_px: float | None = None) -> float:
    """The factor :func:`at_model_scale` shrinks an image with these annotations by (1.0: not at all).

    :func:`~napari_nanogan.segmentation.scale.resize_factor` of the labels' median
    equivalent-circle diameter: images are only made smaller, at most 8 times; 1.0 within
    5 % of ``diameter_px`` (default: the shipped models' 24 px) or without particles.
    """
    diameter = median_diameter(labels)
    if not np.isfinite(diameter):
        return 1.0
    with warnings.catch_warnings():  # particles over 8 times the model's: shrunk 8 times, as at inference
        warnings.simplefilter("ignore", UserWarning)
        return min(resize_factor(diameter, diameter_px or MODEL_DIAMETER_PX), 1.0)  # training never enlarges


def shrink_sample(sample: Sample, factor: float) -> Sample:
    """The sample resized by ``factor``.

    The image bilinearly with anti-aliasing, as at inference; the labels by nearest neighbour.
    """
    from skimage.transform import resize

    if factor == 1.0:
        return sample
    shape = (max(1, round(sample.image.shape[0] * factor)), max(1, round(sample.image.shape[1] * factor)))
    image = resize(sample.image.astype(np.float32), shape, order=1, anti_aliasing=True, preserve_range=True)
    labels = resize(sample.labels, shape, order=0, anti_aliasing=False, preserve_range=True).astype(np.int32)
    low, high = intensity_range(image)
    return Sample(sample.name, image, labels, low, high, sample.domain, sample.seed_depth)


def at_model_scale(sample: Sample, diameter_px: float | None = None) -> Sample:
    """The sample made smaller so that its particles are about the model's diameter across.

    What :func:`napari_nanogan.segmentation.segment` does with ``diameter=D`` at inference,
    done to a training or validation image with its annotated ``D`` (the median
    equivalent-circle diameter of its particles; :func:`model_scale_factor`). A sample
    within 5 % of ``diameter_px``, or without particles, is returned as it is.
    """
    return shrink_sample(sample, model_scale_factor(sample.labels, diameter_px))


def particle_contrast(sample: Sample) -> float:
    """Background minus particle median grey level, as a fraction of the robust intensity range.

    Positive for dark particles on a bright background (bright-field TEM), negative for
    bright ones on a dark background (SEM, HAADF STEM); NaN without particles or background.
    """
    fg = sample.labels > 0
    if not fg.any() or fg.all():
        return float("nan")
    spread = max(float(sample.high - sample.low), 1e-6)
    return float((np.median(sample.image[~fg]) - np.median(sample.image[fg])) / spread)


def bright_field_samples(triples, *, min_contrast: float = 0.2, min_side: int = MIN_TEM_SIDE,
                         diameter_px: float | None = None) -> list[Sample]:
    """The annotated images with dark particles on a bright background, at the model's scale.

    What the TEM generator learns from (``nanogan train-gan --dataset emps-tem``): of
    ``triples`` (EMPS, mixed TEM / SEM / STEM), the images whose particles are darker
    than their background by at least ``min_contrast`` of the intensity range
    (:func:`particle_contrast`), each shrunk so that its particles are about the
    model's diameter across (:func:`at_model_scale`), as the segmenter sees them; an
    image left with a side under ``min_side`` pixels (very large particles) is dropped.
    """
    out = []
    for sample in load_samples(triples, domain="emps-tem"):
        if not particle_contrast(sample) >= min_contrast:
            continue
        small = at_model_scale(sample, diameter_px)
        if min(small.image.shape) >= min_side:
            out.append(small)
    return out


def generator_samples(data_root, dataset: str, split: str = "train") -> list[Sample] | None:
    """The real images of ``split`` a generator of ``dataset`` learns from (None: the data set is not there).

    ``bam``: the BAM TiO2 SEM images, info bar cropped; ``emps-tem``: the EMPS images with
    dark particles (bright-field TEM), at the model's scale.
    """
    key = GENERATOR_DATASETS[dataset][0]
    splits = shared_splits(data_root)
    if key not in splits:
        return None
    if dataset == "emps-tem":
        return bright_field_samples(splits["emps"][split])
    return load_samples(splits["bam"][split], domain="bam")
