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
    instance-label mask is an :class:`ImageReadError` naming the file and the reason. A
    JPEG file cannot hold labels (compression changes its values): it is read as a binary
    mask (:func:`lossy_binary`), or refused.
    """
    path = Path(path)
    data, _ = read_array(path, what="a mask")
    if path.suffix.lower() in LOSSY_SUFFIXES:
        return lossy_binary(data, path)
    try:
        mask = mask_values(data)
    except ValueError as exc:
        raise ImageReadError(f"{path}: {exc}") from None
    reason = grey_image_reason(mask)
    if reason is not None:
        raise ImageReadError(
            f"{path}: this looks like a grey image, not a mask: {reason}, whereas in a mask each particle's label is "
            "one connected region. Pass the labels `nanogan segment` writes (<stem>_labels.tif), or a binary or "
            "instance-label mask")
    return mask


#: Files whose compression changes pixel values: masks in them can only be binary.
LOSSY_SUFFIXES = (".jpg", ".jpeg")
#: A lossy mask is binary when it has one colour and at least this share of its pixels lie
#: within 20 % of its grey range from black or from its brightest level (compression rings
#: and, in colour, chroma subsampling blur the edges).
LOSSY_BINARY_SHARE = 0.9


def lossy_binary(data: np.ndarray, path: Path) -> np.ndarray:
    """A mask saved with lossy compression (JPEG) as a binary mask (uint8 0/1), or an :class:`ImageReadError`.

    The brightest channel of each pixel is thresholded at half the file's maximum, where
    nearly every pixel sits near black or near that maximum and the bright pixels share one
    colour (a binary mask); anything else (labels, a colour-coded mask, a picture) cannot
    be read from a lossy file.
    """
    data = np.asarray(data)
    colour = data.ndim == 3 and data.shape[-1] in (3, 4)
    grey = data[..., :3].max(-1) if colour else data
    if grey.ndim != 2 or grey.size == 0:
        raise ImageReadError(f"{path}: a mask must be 2D (binary or instance labels), got shape {data.shape}")
    grey = grey.astype(np.float32)
    top = float(grey.max())
    near = ((grey <= 0.2 * top) | (grey >= 0.8 * top)).mean() if top > 0 else 1.0
    if colour and top > 0:  # particles of several colours: a colour-coded mask, whose colours blur into each other
        bright = grey >= 0.8 * top  # (holds the brightest pixel, so never empty)
        counts = np.unique(data[..., :3][bright] // 64, axis=0, return_counts=True)[1]
        if (counts >= 0.02 * bright.sum()).sum() > 1:
            near = 0.0
    if near < LOSSY_BINARY_SHARE:
        raise ImageReadError(
            f"{path}: a JPEG mask can only be read as binary, and {1 - near:.0%} of its pixels are neither near black "
            "nor near its brightest level (labels, colours or a picture): save masks as PNG or TIFF, which keep "
            "their values")
    return (grey > 0.5 * top).astype(np.uint8)


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
#: Masks of 2 to ``GREY_MIN_LABELS`` - 1 values are a grey image when each value lies in this many
#: pieces on average and the median piece has at most ``GREY_SPECK_PIXELS`` pixels: detector noise
#: of a dark 16-bit frame or a posterised picture; a label reused for particles apart (colour-coded
#: labels) lies in pieces of a particle's size.
GREY_FEW_SPECKS_PER_VALUE = 10.0
GREY_SPECK_PIXELS = 4


def grey_image_reason(mask: np.ndarray) -> str | None:
    """Why ``mask`` looks like a grey image rather than labels (a phrase), or None when it looks like labels.

    In a label image each particle's label covers one region (a few annotated masks hold a
    label or two in pieces: at most half of a mask's labels, in the shared data sets); in a
    grey image each grey level lies in specks scattered over the picture. Masks of fewer
    than ``GREY_MIN_LABELS`` labels are judged by the size of their pieces; binary masks are not judged.
    """
    from skimage.measure import label as regions

    mask = np.asarray(mask)
    if mask.ndim != 2 or int(mask.max()) < 2:  # binary (0 and 1): nothing to judge, without sorting the image
        return None
    pieces = regions(mask, connectivity=2, background=0)
    owner = np.zeros(int(pieces.max()) + 1, mask.dtype)  # the label each piece has
    owner[pieces.ravel()] = mask.ravel()
    _, pieces_per_label = np.unique(owner[1:], return_counts=True)
    n = len(pieces_per_label)
    if n < 2:  # a binary mask (0 and 255)
        return None
    per_value = float(pieces_per_label.mean())
    if n < GREY_MIN_LABELS:  # a few values: a dark or posterised grey image if they lie in specks, else labels
        speck = float(np.median(np.bincount(pieces.ravel())[1:]))  # (a label reused for particles apart, too)
        if per_value >= GREY_FEW_SPECKS_PER_VALUE and speck <= GREY_SPECK_PIXELS:
            return f"each of its {n} values appears in {per_value:.0f} separate specks of {speck:.0f} pixel(s)"
        return None
    if per_value >= GREY_REGIONS_PER_VALUE:
        return f"each of its {n} values appears in {per_value:.0f} separate specks on average"
    share = float((pieces_per_label > 1).mean())
    if share >= GREY_SCATTERED_SHARE:
        return f"{share:.0%} of its {n} values appear in several separate specks"
    return None


#: A grey RGB file (equal channels) with this share of its pixels or more at 0 or at its
#: maximum is a binary mask (anti-aliased edges allowed), not grey labels nor a picture.
BINARY_RGB_SHARE = 0.9


#: A colour RGB file is a colour-coded mask when at least this share of its particle
#: pixels lie in colours that fill regions (the rest: anti-aliased edges); a picture's
#: colours change from pixel to pixel.
COLOUR_REGION_SHARE = 0.5


def _colour_codes(rgb: np.ndarray) -> np.ndarray:
    """One integer per pixel, equal where the colours are (0 for black)."""
    if rgb.dtype == np.uint8:
        rgb = rgb.astype(np.uint32)
        return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    colours, codes = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
    codes = codes.reshape(rgb.shape[:2]).astype(np.int64)
    return codes if (colours[0] == 0).all() else codes + 1


def _background_code(codes: np.ndarray) -> int:
    """Black where the mask has black, else the colour most of its border has (a white background)."""
    if (codes == 0).any():
        return 0
    border = np.concatenate([codes[0], codes[-1], codes[:, 0], codes[:, -1]])
    values, counts = np.unique(border, return_counts=True)
    return int(values[np.argmax(counts)])


def _solid(codes: np.ndarray) -> np.ndarray:
    """Pixels in a 3 x 3 block of one colour (regions, not anti-aliased edges or noise)."""
    return (ndi.minimum_filter(codes, 3) == codes) & (ndi.maximum_filter(codes, 3) == codes)


def _binary_grey(grey: np.ndarray) -> bool:
    """Whether grey levels stored as RGB are a binary mask, maybe anti-aliased: black and one level on nine
    pixels in ten, every patch of the levels between them lying between the two (an edge, even a zoomed one),
    where grey labels have patches (particles) that touch black or each other but not the top level's."""
    top = grey.max(initial=0)
    between = (grey != 0) & (grey != top)
    if (~between).mean() < BINARY_RGB_SHARE:
        return False
    if not between.any():
        return True
    patches, n = ndi.label(between, structure=np.ones((3, 3), bool))
    index = np.arange(1, n + 1)
    near_black = ndi.maximum(ndi.binary_dilation(grey == 0, np.ones((3, 3), bool)), patches, index)
    near_top = ndi.maximum(ndi.binary_dilation(grey == top, np.ones((3, 3), bool)), patches, index)
    return bool(np.all(near_black) and np.all(near_top))


def _from_rgb(rgb: np.ndarray) -> np.ndarray:
    """A 2D mask from an RGB one.

    - Binary masks (a background and one grey level or colour, with anti-aliased edges
      or not): any non-background pixel is particle.
    - Grey labels stored as RGB (equal channels): the grey values are the labels.
    - Colour-coded instance masks (each particle a colour, as annotation tools export them):
      each connected region of one colour is a particle, so touching particles of different
      colours stay apart and a palette reused for separate particles gives separate labels.
      Pixels of colours that fill no 3 x 3 block anywhere (anti-aliased edges) join the
      region they touch (up to 2 px deep); the others are particles of their own (specks, thin lines).

    The background is black, or, in a mask without black, the colour most of its border has.
    A grey picture comes back as its values, scattered over the picture, for
    :func:`grey_image_reason` to refuse; a colour picture (or a colour mask saved with lossy
    compression) is a ``ValueError``.
    """
    if (rgb == rgb[..., :1]).all():
        grey = rgb[..., 0]
        if _binary_grey(grey):
            return grey > 0
        return grey
    codes = _colour_codes(rgb)
    background = _background_code(codes)
    particle = codes != background
    solid = _solid(codes) & particle
    region_colours = np.unique(codes[solid])
    in_regions = np.isin(codes, region_colours) & particle
    share = in_regions.sum() / max(int(particle.sum()), 1)
    if share < COLOUR_REGION_SHARE:
        raise ValueError(f"this looks like a colour picture, not a mask: {share:.0%} of its particle pixels lie in "
                         "regions of one colour, where a colour-coded mask gives each particle one colour (a mask "
                         "saved as JPEG blurs its colours too: save masks as PNG or TIFF)")
    if len(region_colours) <= 1:  # one colour fills regions: binary, whatever its edges hold
        return particle
    from skimage.measure import label as regions

    labels = regions(np.where(in_regions, codes, background), connectivity=1, background=background)
    edge = particle & ~in_regions
    for _ in range(2):  # anti-aliased pixels (up to 2 deep) join the region they touch
        if not edge.any():
            break
        reach = ndi.grey_dilation(labels, size=3)
        joined = edge & (reach > 0)
        labels[joined] = reach[joined]
        edge &= ~joined
    if edge.any():  # specks and thin lines of their own
        own = regions(np.where(edge, codes, background), connectivity=1, background=background)
        labels[edge] = own[edge] + labels.max()
    return labels.astype(np.int64)


def mask_values(mask: np.ndarray) -> np.ndarray:
    """A binary or instance-label mask as a 2D array of non-negative integers, or a ``ValueError`` saying why not.

    RGB(A) masks (transparent pixels are background): binary ones count any pixel off the
    background as particle; grey labels stored as RGB keep their values; colour-coded
    instance masks give each colour region a label (:func:`_from_rgb`); :func:`read_mask`
    tells a picture from labels. Booleans and whole-number floats are accepted; negative
    labels, fractions, NaN, labels beyond 2**31 - 1 and non-numeric types are refused.
    Integer masks keep their dtype.
    """
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] == 4:  # transparent pixels are background
        mask = np.where(mask[..., 3:] > 0, mask[..., :3], 0)
    if mask.ndim == 3 and mask.shape[-1] == 3:
        mask = _from_rgb(mask)
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

    A mask of one value, or of 0 and one other, is binary; its 4-connected foreground
    components are the particles (touching particles annotated with 1-px gaps come apart).
    Labels larger than the mask's pixel count (so sparse that per-label tables would dwarf
    the mask) are renumbered 1..K in their order.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2D mask, got shape {mask.shape}")
    values = np.unique(mask)
    if len(values) == 1 or len(values) == 2 and values[0] == 0:  # (two labels and no background: labels)
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


#: A label file's name less its last word, when one of these, is its image's (``field_m.tif`` of ``field.tif``).
MASK_WORDS = ("m", "mask", "masks", "gt", "seg", "label", "labels", "annotation", "annotations")


def image_stem(path) -> str:
    """The file stem of the image a label file belongs to: its own less a last word of :data:`MASK_WORDS`
    (``_m``, ``_mask``, ``nanogan segment``'s ``_labels`` ...); napari names the image's layer so."""
    import re

    return re.sub(rf"[-_. ]+(?:{'|'.join(MASK_WORDS)})$", "", Path(path).stem, flags=re.IGNORECASE)


def pixel_size_of_its_image(path) -> dict:
    """The pixel size of the image a mask annotates, for a mask file that gives none: the file of
    the mask's :func:`image_stem` in an ``images`` folder beside the mask's folder (the shared data
    sets' and ``nanogan export``'s layout), or in the mask's own folder. ``{"pixel_size_nm",
    "pixel_size_source"}``, empty when there is none."""
    from .images import file_pixel_size

    for candidate in _its_images(path):
        found = file_pixel_size(candidate)
        if found:
            return {"pixel_size_nm": found[0], "pixel_size_source": f"{found[1]}, of its image {candidate.name}"}
    return {}


def mask_pixel_size_nm(path, given: float | None = None) -> float | None:
    """The pixel size for images drawn from the mask file ``path``: ``given``, else the one a labels TIFF
    records (:func:`~napari_nanogan.io.images.labels_pixel_size_nm`), else its image's
    (:func:`pixel_size_of_its_image`, as ``nanogan measure`` takes it), else None."""
    from .images import labels_pixel_size_nm

    if given:
        return given
    own = labels_pixel_size_nm(path) if Path(path).suffix.lower() in (".tif", ".tiff") else None
    return own or pixel_size_of_its_image(path).get("pixel_size_nm")


def its_image(path) -> Path | None:
    """The image file a mask or label file annotates, found by name as :func:`pixel_size_of_its_image` finds
    it (the first of its stem), or None."""
    return next(_its_images(path), None)


def _its_images(path):
    from .images import IMAGE_SUFFIXES

    path = Path(path)
    stem = image_stem(path)
    for folder in (path.parent.parent / "images", path.parent):
        for candidate in sorted(folder.iterdir()) if folder.is_dir() else []:
            if candidate.stem == stem and candidate != path and candidate.suffix.lower() in IMAGE_SUFFIXES:
                yield candidate


def label_areas(labels: np.ndarray, count: int) -> list[list[int]]:
    """Each label 1..``count``'s pixel count and the sum of its pixels' flat indices (labels above ``count``
    ignored): kept with a segmentation's confidence, so that a particle repainted since (erased and drawn
    anew under its number, moved or edited) is known not to be the one scored."""
    values = np.asarray(labels).ravel()
    where = np.flatnonzero((values > 0) & (values <= count))
    chosen = values[where].astype(np.int64)
    areas = np.bincount(chosen, minlength=count + 1)[1 : count + 1]
    places = np.bincount(chosen, weights=where.astype(np.float64), minlength=count + 1)[1 : count + 1]
    return np.stack([areas, places.astype(np.int64)], 1).tolist()


def still_scored(confidence: np.ndarray | None, labels: np.ndarray, scored: list | None) -> np.ndarray | None:
    """``confidence`` less that of the labels whose pixels differ from those the segmentation scored
    (``scored``: the layer's ``metadata["label_areas"]``; a particle erased and painted anew under its
    number, moved or edited has none: NaN)."""
    if confidence is None or scored is None:
        return confidence
    out = np.array(confidence, np.float32)
    n = min(len(out), len(scored))
    out[:n][(np.asarray(label_areas(labels, n)) != np.asarray(scored[:n])).any(1)] = np.nan
    return out


def looks_inverted(labels: np.ndarray) -> bool:
    """Whether a binary mask's particles look like background: one covers over half the image and reaches
    every edge (the background of particles drawn 0 on 1)."""
    particle = labels > 0
    if particle.mean() <= 0.5:  # (before any count: labels of any values, of any size)
        return False
    values, counts = np.unique(labels[particle], return_counts=True)
    region = labels == values[counts.argmax()]
    edges = (region[0].any(), region[-1].any(), region[:, 0].any(), region[:, -1].any())
    return bool(region.mean() > 0.5 and all(edges))
