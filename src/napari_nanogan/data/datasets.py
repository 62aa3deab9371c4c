"""Annotated EM image sets as lists of samples, and the shared data sets' layout.

A sample holds a grey image (specimen rows only: the info bar is cropped away), its
instance labels and its robust intensity range; patches are drawn from samples by
``data.augment``.
"""

from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ..io.images import read_image, read_mask
from ..io.infobar import detect_info_bar
from ..normalize import intensity_range
from .splits import BAM_HOLDOUT, EMPS_HOLDOUT, split_groups
from .targets import SEED_DEPTH, contact_zone, targets_from_labels

_FOUR = ndi.generate_binary_structure(2, 1)


@dataclass
class Sample:
    """One annotated image: specimen rows only."""

    name: str
    image: np.ndarray  # [M, N] as read
    labels: np.ndarray  # [M, N] int32 instance labels
    low: float
    high: float
    domain: str = "unknown"
    seed_depth: float | None = SEED_DEPTH  # the interior target's depth cap (``targets.interior_from_labels``)
    _targets: np.ndarray | None = None
    _contact: np.ndarray | None = None

    @property
    def targets(self) -> np.ndarray:
        if self._targets is None:
            self._targets = targets_from_labels(self.labels, seed_depth=self.seed_depth)
        return self._targets

    def use_seed_depth(self, seed_depth: float | None) -> None:
        """Switch the interior target's depth cap (recomputed on next use)."""
        if seed_depth != self.seed_depth:
            self.seed_depth, self._targets = seed_depth, None

    @property
    def contact(self) -> np.ndarray:
        """[M, N] bool: where touching particles meet (``targets.contact_zone``)."""
        if self._contact is None:
            self._contact = contact_zone(self.labels)
        return self._contact


def instance_labels(mask: np.ndarray) -> np.ndarray:
    """Instance labels from a mask: label images are kept, binary masks split into 4-connected parts."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2D mask, got shape {mask.shape}")
    values = np.unique(mask)
    if len(values) <= 2:
        return ndi.label(mask > 0, structure=_FOUR)[0].astype(np.int32)
    return mask.astype(np.int32)


def load_sample(image_path, mask_path, *, domain: str = "unknown", crop_info_bar: bool = True) -> Sample:
    """Read an image and its mask; crop the info bar (when found) from both."""
    image, _ = read_image(image_path)
    mask = read_mask(mask_path)
    if mask.shape != image.shape:
        raise ValueError(f"{mask_path}: mask shape {mask.shape} differs from image shape {image.shape}")
    rows = slice(None)
    if crop_info_bar:
        bar = detect_info_bar(image)
        if bar is not None:
            rows = bar.specimen_rows
    image, mask = image[rows], mask[rows]
    labels = instance_labels(mask)
    low, high = intensity_range(image)
    return Sample(Path(image_path).stem, image, labels, low, high, domain)


def model_scale_factor(labels: np.ndarray, diameter_px: float | None = None) -> float:
    """The factor :func:`at_model_scale` shrinks an image with these annotations by (1.0: not at all).

    :func:`~napari_nanogan.inference.resize_factor` of the labels' median
    equivalent-circle diameter: images are only made smaller, at most 8 times; 1.0 within
    5 % of ``diameter_px`` (default: the shipped models' 24 px) or without particles.
    """
    from ..inference import MODEL_DIAMETER_PX, resize_factor
    from ..measure import median_diameter

    diameter = median_diameter(labels)
    if not np.isfinite(diameter):
        return 1.0
    with warnings.catch_warnings():  # particles over 8 times the model's: shrunk 8 times, as at inference
        warnings.simplefilter("ignore", UserWarning)
        return resize_factor(diameter, diameter_px or MODEL_DIAMETER_PX)


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

    What :func:`napari_nanogan.inference.segment` does with ``diameter=D`` at inference,
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


#: Smallest side (px) a bright-field sample may have at the model's scale to be kept.
MIN_TEM_SIDE = 128


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


def bam_pairs(root) -> list[tuple[str, Path, Path]]:
    """(stem, image, mask) of the BAM TiO2 SEM set (``pairs.csv``)."""
    root = Path(root)
    with open(root / "pairs.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [(Path(r["image"]).stem, root / r["image"], root / r["mask"]) for r in rows]


def emps_pairs(root) -> list[tuple[str, Path, Path]]:
    """(stem, image, mask) of the EMPS set (``ids.txt``)."""
    root = Path(root)
    stems = (root / "ids.txt").read_text().split()
    return [(s, root / "images" / f"{s}.png", root / "masks" / f"{s}.png") for s in stems]


def emps_sources(root) -> dict[str, str]:
    """Image stem -> source paper (DOI) of the EMPS set, from ``metadata.csv`` ({} without one)."""
    path = Path(root) / "metadata.csv"
    if not path.is_file():
        return {}
    csv.field_size_limit(1 << 24)  # the polygon column of one row can be long
    with open(path, newline="") as fh:
        return {Path(r["filename"]).stem: r["doi"] for r in csv.DictReader(fh) if r.get("doi")}


def shared_splits(data_root) -> dict[str, dict[str, list[tuple[str, Path, Path]]]]:
    """The project's fixed splits of ``<data_root>/bam_tio2_sem`` and ``<data_root>/emps``.

    Returns ``{"bam": {"train": [...], "val": [...], "test": [...]}, "emps": {...}}``
    with (stem, image path, mask path) triples; a data set missing on disk is skipped.
    EMPS is split by source paper (:func:`emps_sources`): the figures of one paper are
    all in train, all in val or all in test (:func:`~napari_nanogan.data.splits.split_groups`).
    """
    data_root = Path(data_root)
    out = {}
    for key, folder, lister, sources, holdout in (
        ("bam", "bam_tio2_sem", bam_pairs, lambda root: {}, BAM_HOLDOUT),
        ("emps", "emps", emps_pairs, emps_sources, EMPS_HOLDOUT),
    ):
        if not (data_root / folder).is_dir():
            continue
        triples = lister(data_root / folder)
        by_stem = {t[0]: t for t in triples}
        source = sources(data_root / folder)
        split = split_groups({stem: source.get(stem) for stem in by_stem}, **holdout)
        out[key] = {part: [by_stem[s] for s in stems] for part, stems in split.items()}
    return out


def load_samples(triples, *, domain: str) -> list[Sample]:
    return [load_sample(img, msk, domain=domain) for _, img, msk in triples]


def export_folder_pairs(folder) -> list[tuple[str, Path, Path]]:
    """(name, image, mask) of a ``nanogan export`` folder (``images/``, ``masks/``, ``manifest.json``).

    The manifest lists the pairs; without one, every ``images/<name>.tif`` with a
    ``masks/<name>.tif`` is a pair. Raises ``ValueError`` for a folder with no pairs.
    """
    import json

    folder = Path(folder)
    manifest = folder / "manifest.json"
    if manifest.exists():
        entries = json.loads(manifest.read_text()).get("pairs", [])
        triples = [(e["name"], folder / e["image"], folder / e["mask"]) for e in entries]
    else:
        triples = [(p.stem, p, folder / "masks" / p.name) for p in sorted((folder / "images").glob("*.tif"))
                   if (folder / "masks" / p.name).exists()]
    if not triples:
        raise ValueError(f"{folder}: no image-mask pairs (expected a `nanogan export` folder with images/ and masks/)")
    missing = [str(p) for t in triples for p in t[1:] if not p.exists()]
    if missing:
        raise ValueError(f"{folder}: files listed in manifest.json are missing: {', '.join(missing[:3])}")
    return triples


def load_export_folder(folder, *, domain: str = "synthetic") -> list[Sample]:
    """Samples from a ``nanogan export`` folder; synthetic images have no info bar to crop."""
    return [load_sample(img, msk, domain=domain, crop_info_bar=False) for _, img, msk in export_folder_pairs(folder)]
