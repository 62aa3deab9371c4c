"""Annotated EM image sets as lists of samples, and the shared data sets' layout.

A sample holds a grey image (specimen rows only: the info bar is cropped away), its
instance labels and its robust intensity range; patches are drawn from samples by
``data.augment``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.images import read_image
from ..io.infobar import detect_info_bar
from ..io.masks import check_mask, read_mask
from ..io.pairs import export_folder_pairs
from ..normalize import intensity_range
from .splits import BAM_HOLDOUT, EMPS_HOLDOUT, split_groups
from .targets import SEED_DEPTH, contact_zone, targets_from_labels


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


def sample_from_arrays(name: str, image: np.ndarray, mask: np.ndarray | None, *, domain: str = "unknown",
                       crop_info_bar: bool = True) -> Sample:
    """A sample from an image and its mask (None: an image without annotation, all background).

    The info bar (when ``crop_info_bar`` and one is found) is cropped from both; a binary
    mask is split into its 4-connected particles.
    """
    image = np.asarray(image)
    mask = np.zeros(image.shape, np.int32) if mask is None else np.asarray(mask)
    try:
        labels = check_mask(mask)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if labels.shape != image.shape:
        raise ValueError(f"{name}: mask shape {mask.shape} differs from image shape {image.shape}")
    bar = detect_info_bar(image) if crop_info_bar else None
    rows = bar.specimen_rows if bar is not None else slice(None)
    annotated = bool(labels.max())
    image, labels = image[rows], labels[rows]
    if annotated and not labels.max():
        raise ValueError(f"{name}: every annotated particle lies in the info bar (rows {bar.start}-{bar.stop - 1}), "
                         "which is left out of training; annotate particles of the specimen")
    try:
        low, high = intensity_range(image)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    return Sample(name, image, labels, low, high, domain)


def load_sample(image_path, mask_path, *, domain: str = "unknown", crop_info_bar: bool = True) -> Sample:
    """Read an image and its mask; crop the info bar (when found) from both."""
    image, _ = read_image(image_path)
    mask = read_mask(mask_path)
    if mask.shape != image.shape:
        raise ValueError(f"{mask_path}: mask shape {mask.shape} differs from image shape {image.shape}")
    stem = Path(image_path).stem
    try:
        return sample_from_arrays(stem, image, mask, domain=domain, crop_info_bar=crop_info_bar)
    except ValueError as exc:  # named by the file, not by the stem
        raise ValueError(f"{image_path}: {str(exc).removeprefix(f'{stem}: ')}") from None


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


def load_export_folder(folder, *, domain: str = "synthetic") -> list[Sample]:
    """Samples from a ``nanogan export`` folder; synthetic images have no info bar to crop."""
    return [load_sample(img, msk, domain=domain, crop_info_bar=False) for _, img, msk in export_folder_pairs(folder)]
