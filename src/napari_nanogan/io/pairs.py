"""Image-mask pairs on disk: the export layout (TIFFs, optional PNGs, a manifest) and folders of pairs.

Layout of an export folder::

    images/<name>.tif     uint8 or uint16 grey, pixel size in the TIFF resolution tags
    masks/<name>.tif      uint16 instance labels (0 = background)
    png/<name>.png        optional previews of the images
    manifest.json         one entry per pair: files, source, seed, model name and sha256,
    manifest.csv          pixel size, software version (same content as a table)

Every file is written to a temporary name and renamed when complete, so an
interrupted export leaves no half-written file; an existing file is never
overwritten unless asked.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from .. import __version__
from .atomic import atomic_path


@dataclass
class Pair:
    """One image with its instance labels and where it came from."""

    name: str
    image: np.ndarray
    labels: np.ndarray
    source: str = "synthetic"
    seed: int | None = None
    model: str | None = None
    model_sha256: str | None = None
    pixel_size_nm: float | None = None
    extra: dict = field(default_factory=dict)


def safe_name(name: str) -> str:
    """A file stem from a layer or file name: letters, digits, '.', '_' and '-' only."""
    import re

    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._") or "pair"
    return stem[:120]


def as_export_image(image: np.ndarray) -> np.ndarray:
    """uint8/uint16 kept; other integer images that fit are narrowed; floats are scaled to
    the full uint16 range (min -> 0, max -> 65535). RGB and non-2D images are refused."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"images are exported as 2D grey, got shape {image.shape}")
    if image.dtype in (np.uint8, np.uint16):
        return image
    if image.dtype == bool:
        return image.astype(np.uint8) * 255
    if np.issubdtype(image.dtype, np.integer):
        lo, hi = int(image.min(initial=0)), int(image.max(initial=0))
        if lo >= 0 and hi < 256:
            return image.astype(np.uint8)
        if lo >= 0 and hi < 65536:
            return image.astype(np.uint16)
    data = image.astype(np.float64)
    if not np.isfinite(data).all():
        raise ValueError("the image holds NaN or infinite values")
    lo, hi = float(data.min()), float(data.max())
    scaled = (data - lo) / (hi - lo) if hi > lo else np.zeros_like(data)
    return np.round(scaled * 65535).astype(np.uint16)


def target_paths(out_dir, name: str, *, png: bool = False) -> dict[str, Path]:
    """Where a pair called ``name`` is written: ``image``, ``mask`` and (optionally) ``png``."""
    out_dir = Path(out_dir)
    targets = {"image": out_dir / "images" / f"{name}.tif", "mask": out_dir / "masks" / f"{name}.tif"}
    if png:
        targets["png"] = out_dir / "png" / f"{name}.png"
    return targets


def existing_files(names: Iterable[str], out_dir, *, png: bool = False) -> list[Path]:
    """Files an export of ``names`` into ``out_dir`` would overwrite (check before any work)."""
    return [p for name in names for p in target_paths(out_dir, name, png=png).values() if p.exists()]


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check(pair: Pair) -> None:
    if pair.image.ndim != 2 or pair.labels.ndim != 2:
        raise ValueError(f"{pair.name}: image and mask must be 2D")
    if pair.image.shape != pair.labels.shape:
        raise ValueError(f"{pair.name}: image {pair.image.shape} and mask {pair.labels.shape} differ in shape")
    if pair.image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{pair.name}: images are exported as uint8 or uint16, not {pair.image.dtype}")
    if pair.labels.max(initial=0) >= 2**16 or pair.labels.min(initial=0) < 0:
        raise ValueError(f"{pair.name}: labels must fit uint16")
    if any(c in pair.name for c in "/\\") or pair.name in ("", ".", ".."):
        raise ValueError(f"invalid pair name {pair.name!r}")


def write_pair(pair: Pair, out_dir, *, png: bool = False, overwrite: bool = False) -> dict:
    """Write one pair's files atomically (refusing to overwrite unless asked); returns its manifest entry."""
    import tifffile

    out_dir = Path(out_dir)
    _check(pair)
    targets = target_paths(out_dir, pair.name, png=png)
    if not overwrite:
        existing = [str(p) for p in targets.values() if p.exists()]
        if existing:
            raise FileExistsError(f"not overwriting existing files: {', '.join(existing)} (choose another folder)")
    kwargs = {}
    if pair.pixel_size_nm:
        per_cm = 1e7 / pair.pixel_size_nm
        kwargs = dict(resolution=(per_cm, per_cm), resolutionunit="CENTIMETER")
    with atomic_path(targets["image"]) as tmp:
        tifffile.imwrite(tmp, pair.image, **kwargs)
    with atomic_path(targets["mask"]) as tmp:
        tifffile.imwrite(tmp, pair.labels.astype(np.uint16), compression="zlib", **kwargs)
    if png:
        from PIL import Image

        img = pair.image if pair.image.dtype == np.uint8 else (pair.image // 257).astype(np.uint8)
        with atomic_path(targets["png"]) as tmp:
            Image.fromarray(img).save(tmp, format="PNG")
    return pair_entry(pair, out_dir, png=png)


def pair_entry(pair: Pair, out_dir, *, png: bool = False, from_files: bool = False) -> dict:
    """The manifest entry of a pair; ``from_files``: its image's size and type read from the file written before."""
    out_dir = Path(out_dir)
    targets = target_paths(out_dir, pair.name, png=png)
    if from_files:
        import tifffile

        with tifffile.TiffFile(targets["image"]) as tif:
            shape, dtype = tif.pages[0].shape, tif.pages[0].dtype
    else:
        shape, dtype = pair.image.shape, pair.image.dtype
    return {"name": pair.name, **{k: str(v.relative_to(out_dir)) for k, v in targets.items()},
            "height": int(shape[0]), "width": int(shape[1]), "dtype": str(np.dtype(dtype)),
            "particles": int(len(np.unique(pair.labels)) - (1 if (pair.labels == 0).any() else 0)),
            "source": pair.source, "seed": pair.seed, "model": pair.model, "model_sha256": pair.model_sha256,
            "pixel_size_nm": pair.pixel_size_nm, "software": f"napari-nanogan {__version__}", **pair.extra}


def write_manifest(out_dir, entries: list[dict], *, replace: bool = False) -> Path:
    """Add ``entries`` to the folder's manifest (JSON and CSV), atomically; returns the JSON's path.

    The entries of an existing manifest come first. ``replace``: an existing entry of
    the same name as a new one is dropped (a rerun that completed an export).
    """
    out_dir = Path(out_dir)
    manifest = out_dir / "manifest.json"
    previous = []
    if manifest.exists():
        previous = json.loads(manifest.read_text()).get("pairs", [])
    if replace:
        names = {e["name"] for e in entries}
        previous = [e for e in previous if e.get("name") not in names]
    merged = previous + entries
    with atomic_path(manifest) as tmp:
        tmp.write_text(json.dumps({"software": f"napari-nanogan {__version__}", "pairs": merged}, indent=2) + "\n")
    keys = list(dict.fromkeys(k for e in merged for k in e))
    with atomic_path(out_dir / "manifest.csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(merged)
    return manifest


def export_pairs(pairs: Iterable[Pair], out_dir, *, png: bool = False, overwrite: bool = False) -> Path:
    """Write pairs and a manifest; returns the manifest path (JSON)."""
    entries = [write_pair(pair, out_dir, png=png, overwrite=overwrite) for pair in pairs]
    return write_manifest(out_dir, entries)


def export_folder_pairs(folder) -> list[tuple[str, Path, Path]]:
    """(name, image, mask) of a ``nanogan export`` folder (``images/``, ``masks/``, ``manifest.json``).

    The manifest lists the pairs; without one, every ``images/<name>.tif`` with a
    ``masks/<name>.tif`` is a pair. Raises ``ValueError`` for a folder with no pairs.
    """
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


def pair_folders(images_dir, masks_dir) -> list[tuple[str, Path, Path]]:
    """(stem, image, mask) from two folders: the mask's stem is the image's, or the image's + ``_...``."""
    from .images import list_images

    masks = list_images([masks_dir])
    pairs = []
    for img in list_images([images_dir]):
        match = [m for m in masks if m.stem == img.stem or m.stem.startswith(img.stem + "_")]
        if match:
            pairs.append((img.stem, img, sorted(match, key=lambda m: len(m.stem))[0]))
    return pairs
