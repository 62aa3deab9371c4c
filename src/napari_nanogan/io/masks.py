"""Particle masks: reading, validating, and turning them into instance labels (numpy only)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from .images import ImageReadError, read_array

_FOUR = ndi.generate_binary_structure(2, 1)
#: The largest label a mask may hold (labels are int32 from here on).
MAX_LABEL = 2**31 - 1


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a mask or label image as a 2D non-negative integer array (RGB masks: see :func:`mask_values`).

    The file is checked as every mask is (:func:`mask_values`); what is not a binary or
    instance-label mask is an :class:`ImageReadError` naming the file and the reason.
    """
    path = Path(path)
    data, _ = read_array(path, what="a mask")
    try:
        mask = mask_values(data)
    except ValueError as exc:
        raise ImageReadError(f"{path}: {exc}") from None
    reason = grey_image_reason(mask)
    if reason is not None:
        raise ImageReadError(
            f"{path}: this looks like a grey image, not a mask: {reason}, where each particle's label covers one "
            "region. Pass the labels `nanogan segment` writes (<stem>_labels.tif), or a binary or instance-label mask")
    return mask


#: :func:`grey_image_reason` judges masks of at least this many labels ...
GREY_MIN_LABELS = 32
#: ... and calls a mask a grey image when its values lie in at least this many separate
#: (8-connected) regions each, on average: in a label image each particle's label covers
#: one region (the shared annotations: 1.06-1.55; specks of their own labels and particles
#: packed without gaps: 1), in a grey image each grey level is scattered over the picture
#: (the 396 shared images: 98 and more; a smooth field with detector noise in 16 bits: 2.4) ...
GREY_REGIONS_PER_VALUE = 2.0
#: ... or when at least this share of its labels come in several pieces.
GREY_SCATTERED_SHARE = 0.8


def grey_image_reason(mask: np.ndarray) -> str | None:
    """Why ``mask`` looks like a grey image rather than labels (a phrase), or None when it looks like labels.

    In a label image each particle's label covers one region (a few annotated masks hold a
    label or two in pieces: at most half of a mask's labels, in the shared data sets); in a
    grey image each grey level lies in specks scattered over the picture. Masks of fewer
    than ``GREY_MIN_LABELS`` labels (binary masks too) are not judged.
    """
    from skimage.measure import label as regions

    mask = np.asarray(mask)
    if mask.ndim != 2 or int(mask.max()) < GREY_MIN_LABELS:  # too few labels to judge, without sorting the image
        return None
    pieces = regions(mask, connectivity=2, background=0)
    owner = np.zeros(int(pieces.max()) + 1, mask.dtype)  # the label each piece has
    owner[pieces.ravel()] = mask.ravel()
    _, pieces_per_label = np.unique(owner[1:], return_counts=True)
    n = len(pieces_per_label)
    if n < GREY_MIN_LABELS:  # binary masks (one value) and masks of a few labels
        return None
    per_value = float(pieces_per_label.mean())
    if per_value >= GREY_REGIONS_PER_VALUE:
        return f"its {n} values lie in {per_value:.1f} separate regions each, on average"
    share = float((pieces_per_label > 1).mean())
    if share >= GREY_SCATTERED_SHARE:
        return f"{share:.0%} of its {n} values are scattered over separate pieces"
    return None


#: A grey RGB file (equal channels) with this share of its pixels or more at 0 or at its
#: maximum is a binary mask (anti-aliased edges allowed), not grey labels nor a picture.
BINARY_RGB_SHARE = 0.9


#: A colour RGB file is a colour-coded mask when at least this share of its non-black
#: pixels lie in colours that fill regions (the rest: soft or compressed edges); a
#: picture's colours change from pixel to pixel.
COLOUR_REGION_SHARE = 0.5


def _solid_values(values: np.ndarray) -> np.ndarray:
    """The non-zero values of ``values`` that fill a 3 x 3 block somewhere (regions, not soft edges or noise)."""
    solid = (ndi.minimum_filter(values, 3) == values) & (ndi.maximum_filter(values, 3) == values) & (values > 0)
    return np.unique(values[solid])


def _from_rgb(rgb: np.ndarray) -> np.ndarray:
    """A 2D mask from an RGB one.

    - Binary masks (black and one grey level or colour, whatever their anti-aliased or
      compressed edges hold): any non-zero channel is particle.
    - Grey labels stored as RGB (equal channels): the grey values are the labels.
    - Colour-coded instance masks (each particle a colour, as annotation tools export them):
      each colour is a label, and separate regions of one colour (a palette reused) are
      separate particles, so touching particles of different colours stay apart.

    A grey picture comes back as its values, scattered over the picture, for
    :func:`grey_image_reason` to refuse; a colour picture is a ``ValueError``.
    """
    particle = (rgb > 0).any(-1)
    if (rgb == rgb[..., :1]).all():
        grey = rgb[..., 0]
        if ((grey == 0) | (grey == grey.max(initial=0))).mean() >= BINARY_RGB_SHARE:  # binary, maybe anti-aliased
            return particle
        return grey
    rgb = rgb.astype(np.uint32)
    values = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    solid = _solid_values(values)
    in_regions = np.isin(values, solid)
    share = in_regions.sum() / max(particle.sum(), 1)
    if share < COLOUR_REGION_SHARE:
        raise ValueError(f"this looks like a colour picture, not a mask: {share:.0%} of its non-black pixels lie in "
                         "regions of one colour, where a colour-coded mask gives each particle one colour")
    if len(solid) == 1:  # one colour fills regions: binary, whatever its edges hold
        return particle
    ids = np.unique(values, return_inverse=True)[1].reshape(values.shape) + int(not (values == 0).any())
    from skimage.measure import label as regions

    labels = regions(np.where(in_regions, ids, 0), connectivity=1, background=0)
    edge = particle & (labels == 0)  # soft or compressed edges (within 2 px of a region): the nearest one's
    if edge.any() and labels.any():
        distance, (iy, ix) = ndi.distance_transform_edt(labels == 0, return_indices=True)
        edge &= distance <= 2
        labels[edge] = labels[iy[edge], ix[edge]]
    return labels.astype(np.int64)


def mask_values(mask: np.ndarray) -> np.ndarray:
    """A binary or instance-label mask as a 2D array of non-negative integers, or a ``ValueError`` saying why not.

    RGB(A) masks: binary ones count any non-zero channel as particle; grey labels stored as
    RGB keep their values; colour-coded instance masks give each colour region a label
    (:func:`_from_rgb`); :func:`read_mask` tells a picture from labels. Booleans and whole-number floats
    are accepted; negative labels, fractions, NaN, labels beyond 2**31 - 1 and non-numeric
    types are refused. Integer masks keep their dtype.
    """
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] in (3, 4):
        mask = _from_rgb(mask[..., :3])
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.ndim != 2:
        raise ValueError(f"a mask must be 2D (binary or instance labels), got shape {mask.shape}")
    if mask.size == 0:
        raise ValueError("the mask is empty (0 pixels)")
    if mask.dtype == bool:
        mask = mask.astype(np.uint8)
    if np.issubdtype(mask.dtype, np.floating):
        if not np.isfinite(mask).all() or not np.array_equal(mask, np.round(mask)):
            raise ValueError("a float mask must hold whole numbers (0 = background, labels or 1 = particle)")
        if mask.min() < 0:
            raise ValueError("mask labels must be >= 0 (0 = background); this mask has negative values")
        if mask.max() > MAX_LABEL:
            raise ValueError(f"mask labels must be at most {MAX_LABEL}")
        mask = mask.astype(np.int64)
    if not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(f"unsupported mask type {mask.dtype}; expected integers (labels) or a binary mask")
    if mask.min() < 0:
        raise ValueError("mask labels must be >= 0 (0 = background); this mask has negative values")
    if int(mask.max()) > MAX_LABEL:
        raise ValueError(f"mask labels must be at most {MAX_LABEL}; this mask has {int(mask.max())}")
    return mask


def instance_labels(mask: np.ndarray) -> np.ndarray:
    """Instance labels (int32) from a mask: label images are kept, binary masks split into 4-connected parts.

    A mask with at most two distinct values is binary; its 4-connected foreground
    components are the particles (touching particles annotated with 1-px gaps come apart).
    Labels larger than the mask's pixel count (so sparse that per-label tables would dwarf
    the mask) are renumbered 1..K in their order.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2D mask, got shape {mask.shape}")
    values = np.unique(mask)
    if len(values) <= 2:
        return ndi.label(mask > 0, structure=_FOUR)[0].astype(np.int32)
    if values[-1] > mask.size:
        labels = values[values > 0]
        return np.where(mask > 0, np.searchsorted(labels, mask) + 1, 0).astype(np.int32)
    return mask.astype(np.int32)


def check_mask(mask: np.ndarray) -> np.ndarray:
    """A binary or instance-label mask as instance labels, or a ``ValueError`` saying why it is not one.

    The one validator for every mask that comes in (files, layers, designed masks):
    :func:`mask_values`, then :func:`instance_labels`.
    """
    return instance_labels(mask_values(mask))
