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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from .. import __version__
from .atomic import atomic_path, remove_stale_temporaries
from .images import resolution_tags


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


def check_exportable(pair: Pair) -> None:
    """A ``ValueError`` naming the pair when it cannot be exported (shape, types, labels, name, pixel size)."""
    if pair.image.ndim != 2 or pair.labels.ndim != 2:
        raise ValueError(f"{pair.name}: image and mask must be 2D")
    if pair.image.shape != pair.labels.shape:
        raise ValueError(f"{pair.name}: image {pair.image.shape} and mask {pair.labels.shape} differ in shape")
    if pair.image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{pair.name}: images are exported as uint8 or uint16, not {pair.image.dtype}")
    if pair.labels.min(initial=0) < 0:
        raise ValueError(f"{pair.name}: labels must be 0 (background) or positive, not down to {pair.labels.min()}")
    if pair.labels.max(initial=0) >= 2**16:  # masks are written as uint16
        count = len(np.unique(pair.labels)) - 1
        raise ValueError(f"{pair.name}: {count} particles, more than a mask holds (65535): split the image into tiles"
                         if count >= 2**16 else f"{pair.name}: labels numbered up to {pair.labels.max()}, past what a "
                         f"mask holds (65535): renumber them 1..{count}")
    try:
        resolution_tags(pair.pixel_size_nm)  # what the TIFF will record: checked before anything is written
    except ValueError as exc:
        raise ValueError(f"{pair.name}: {exc}") from None
    if any(c in pair.name for c in "/\\") or pair.name in ("", ".", ".."):
        raise ValueError(f"invalid pair name {pair.name!r}")


#: The journal of an export in progress: the pair names it plans, written before any pair, removed
#: when it ends. Files of those names that the manifest does not list are an interrupted export's
#: leftovers (rewritten by the next run), never a user's files.
JOURNAL = ".nanogan-export-journal.json"


class ExportFolder:
    """An export folder being written: the manifest read first, the plan journaled, pairs streamed.

    Use :meth:`plan` before writing (it refuses files the export would clobber, before any
    work), :meth:`write` per pair, and :meth:`close` (or the ``with`` block) at the end. The
    manifest lists exactly the complete pairs: it is rewritten every ``flush_seconds`` while
    pairs are written and when the export ends, also when it ends by an exception
    (Ctrl-C, SIGTERM); a pair whose writing fails leaves none of its files. After
    ``kill -9`` the journal tells the next run which files are leftovers to rewrite.
    """

    def __init__(self, out_dir, *, png: bool = False, overwrite: bool = False, flush_seconds: float = 5.0):
        self.out = Path(out_dir)
        if self.out.exists() and not self.out.is_dir():
            raise NotADirectoryError(f"{self.out} exists and is not a folder; choose a folder to export to")
        self.png, self.overwrite, self.flush_seconds = png, overwrite, flush_seconds
        self.manifest = self.out / "manifest.json"
        self.entries = self._read_manifest()
        self.journal = self._read_journal()
        self.written, self.flushes = 0, 0
        self._dirty, self._last_flush = False, time.monotonic()

    # ------------------------------------------------------------------ reading
    def _read_manifest(self) -> dict[str, dict]:
        if not self.manifest.exists():
            return {}
        try:
            data = json.loads(self.manifest.read_text())
            pairs = data["pairs"]
            entries = {e["name"]: e for e in pairs if isinstance(e, dict)}
            if len(entries) != len(pairs):
                raise ValueError("an entry is not a pair")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.manifest} is not a readable export manifest ({type(exc).__name__}: {exc}); "
                             "move it away or choose another folder") from None
        return entries

    def _read_journal(self) -> dict:
        path = self.out / JOURNAL
        try:
            data = json.loads(path.read_text())
            return {"names": set(data.get("names", [])), "series": {str(k): int(v) for k, v in data.get("series", {}).items()}}
        except (OSError, ValueError, TypeError, AttributeError):
            return {"names": set(), "series": {}}

    @staticmethod
    def _in(name: str, names, series) -> bool:
        if name in names:
            return True
        stem, _, k = name.rpartition("_")
        return bool(stem) and k.isdigit() and int(k) < series.get(stem, 0)

    def _files(self, name: str) -> list[Path]:
        return list(target_paths(self.out, name, png=self.png).values())

    # ------------------------------------------------------------------ planning
    def plan(self, names: Iterable[str] = (), *, series: dict[str, int] | None = None, recipe=None) -> set[str]:
        """Check the planned pairs against the folder before any is written; journal them.

        ``names`` and ``series`` (``{stem: n}``: the pairs ``stem_0`` .. ``stem_{n-1}``) are
        the pairs this export will write. With ``recipe(name)`` (the manifest fields that
        make a pair: seed, source, model ...), a pair the manifest lists with the same
        recipe and whose files exist is complete: it is returned, to be skipped, so the
        same export run again completes an interrupted one. Any other existing file of a
        planned pair is refused (``FileExistsError``) unless ``overwrite``, or unless it is
        a leftover of an interrupted export (the journal names it).
        """
        names, series = set(names), dict(series or {})
        done, conflicts = set(), []
        for name, entry in self.entries.items():
            if not self._in(name, names, series):
                continue
            files = [self.out / str(entry[k]) for k in ("image", "mask", "png") if entry.get(k)]
            existing = [str(p) for p in files if p.exists()]
            complete = len(existing) == len(files) and (not self.png or "png" in entry)
            if recipe is not None and complete and all(entry.get(k) == v for k, v in recipe(name).items()):
                done.add(name)
            elif not self.overwrite and existing and (recipe is None or complete):
                conflicts += existing  # an incomplete listed pair is rewritten: the export made it
        if not self.overwrite:
            for kind, suffix in (("images", ".tif"), ("masks", ".tif"), ("png", ".png")):
                folder = self.out / kind
                if not folder.is_dir():
                    continue
                for path in folder.iterdir():
                    name = path.name[: -len(suffix)] if path.name.endswith(suffix) else None
                    if name and name not in self.entries and self._in(name, names, series) \
                            and not self._in(name, self.journal["names"], self.journal["series"]):
                        conflicts.append(str(path))
        if conflicts:
            more = f" and {len(conflicts) - 3} more" if len(conflicts) > 3 else ""
            raise FileExistsError(f"not overwriting existing files: {', '.join(conflicts[:3])}{more} "
                                  "(choose another folder, or overwrite them: `--overwrite`, or the panel's "
                                  "\"overwrite existing files\")")
        self.journal["names"] |= names
        for stem, n in series.items():
            self.journal["series"][stem] = max(n, self.journal["series"].get(stem, 0))
        with atomic_path(self.out / JOURNAL) as tmp:
            tmp.write_text(json.dumps({"software": f"napari-nanogan {__version__}",
                                       "names": sorted(self.journal["names"]), "series": self.journal["series"]}) + "\n")
        return done

    # ------------------------------------------------------------------ writing
    def write(self, pair: Pair) -> None:
        """Write one pair's files (each atomically); on any failure none of its files is left."""
        check_exportable(pair)
        if not self._in(pair.name, self.journal["names"], self.journal["series"]):
            raise ValueError(f"{pair.name}: not in the export's plan")
        self.entries.pop(pair.name, None)  # replaced below once complete; never listed while incomplete
        try:
            self.entries[pair.name] = write_pair(pair, self.out, png=self.png, overwrite=True)
        finally:
            self._dirty = True
        self.written += 1
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def record(self, entry: dict) -> None:
        """List a pair another process wrote completely (its :func:`write_pair` entry) in this export."""
        if not self._in(entry["name"], self.journal["names"], self.journal["series"]):
            raise ValueError(f"{entry['name']}: not in the export's plan")
        self.entries[entry["name"]] = entry
        self.written += 1
        self._dirty = True

    @property
    def changed(self) -> bool:
        """Whether the manifest on disk is behind the pairs written."""
        return self._dirty

    def flush(self) -> Path:
        """Rewrite manifest.json and manifest.csv from the complete pairs."""
        _write_manifest_files(self.out, list(self.entries.values()))
        self._dirty, self._last_flush = False, time.monotonic()
        self.flushes += 1
        return self.manifest

    def close(self, *, finished: bool = True) -> bool:
        """Write the manifest if anything changed; a finished export also drops its journal. True if written."""
        wrote = False
        if self._dirty:
            self.flush()
            wrote = True
        if finished:
            (self.out / JOURNAL).unlink(missing_ok=True)
        return wrote

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        self.close(finished=kind is None)


def export_pairs(pairs: Iterable[Pair], out_dir, *, png: bool = False, overwrite: bool = False) -> Path:
    """Write pairs and a manifest; returns the manifest path (JSON).

    Existing files of the same names are refused before any is written, unless
    ``overwrite``; the manifest keeps the pairs it listed and replaces the entries of
    pairs written again. Interrupted, it lists the complete pairs (see :class:`ExportFolder`).
    """
    pairs = list(pairs)
    for pair in pairs:
        check_exportable(pair)
    names = [p.name for p in pairs]
    if len(set(names)) != len(names):
        raise ValueError("two pairs have the same name")
    with ExportFolder(out_dir, png=png, overwrite=overwrite) as folder:
        folder.plan(names)
        for pair in pairs:
            folder.write(pair)
        folder.flush()
    return folder.manifest


def write_pair(pair: Pair, out_dir, *, png: bool = False, overwrite: bool = False) -> dict:
    """Write one pair's files, each atomically; returns its manifest entry.

    Existing files are refused unless ``overwrite``. If any file fails, the pair's files
    written before it are removed: a pair is complete or absent.
    """
    import tifffile

    out_dir = Path(out_dir)
    check_exportable(pair)
    targets = target_paths(out_dir, pair.name, png=png)
    if not overwrite:
        existing = [str(p) for p in targets.values() if p.exists()]
        if existing:
            raise FileExistsError(f"not overwriting existing files: {', '.join(existing)} (choose another folder)")
    kwargs = resolution_tags(pair.pixel_size_nm)
    written = []
    try:
        for path in targets.values():
            remove_stale_temporaries(path)
        with atomic_path(targets["image"]) as tmp:
            tifffile.imwrite(tmp, pair.image, **kwargs)
        written.append(targets["image"])
        with atomic_path(targets["mask"]) as tmp:
            tifffile.imwrite(tmp, pair.labels.astype(np.uint16), compression="zlib", **kwargs)
        written.append(targets["mask"])
        if png:
            from PIL import Image

            img = pair.image if pair.image.dtype == np.uint8 else (pair.image // 257).astype(np.uint8)
            with atomic_path(targets["png"]) as tmp:
                Image.fromarray(img).save(tmp, format="PNG")
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
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
    return {"name": pair.name, **{k: v.relative_to(out_dir).as_posix() for k, v in targets.items()},
            "height": int(shape[0]), "width": int(shape[1]), "dtype": str(np.dtype(dtype)),
            "particles": int(len(np.unique(pair.labels)) - (1 if (pair.labels == 0).any() else 0)),
            "source": pair.source, "seed": pair.seed, "model": pair.model, "model_sha256": pair.model_sha256,
            "pixel_size_nm": pair.pixel_size_nm, "software": f"napari-nanogan {__version__}", **pair.extra}


def _write_manifest_files(out_dir: Path, entries: list[dict]) -> None:
    """Write manifest.json and manifest.csv listing ``entries``, each atomically."""
    for path in (out_dir / "manifest.json", out_dir / "manifest.csv"):
        remove_stale_temporaries(path)
    with atomic_path(out_dir / "manifest.json") as tmp:
        tmp.write_text(json.dumps({"software": f"napari-nanogan {__version__}", "pairs": entries}, indent=2) + "\n")
    keys = list(dict.fromkeys(k for e in entries for k in e))
    with atomic_path(out_dir / "manifest.csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys, lineterminator="\n")
            writer.writeheader()
            writer.writerows(entries)


def export_folder_pairs(folder, *, missing_ok: bool = False) -> list[tuple[str, Path, Path]]:
    """(name, image, mask) of a ``nanogan export`` folder (``images/``, ``masks/``, ``manifest.json``).

    The manifest lists the pairs; without one, every ``images/<name>.tif`` with a
    ``masks/<name>.tif`` is a pair. Raises ``ValueError`` for a folder with no pairs, and for
    files the manifest lists that are missing unless ``missing_ok`` (their pairs are then listed
    all the same: reading them fails, for the caller to say).
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
    if missing and not missing_ok:
        raise ValueError(f"{folder}: files listed in manifest.json are missing: {', '.join(missing[:3])}")
    return triples


def pair_folders(images_dir, masks_dir) -> list[tuple[str, Path, Path]]:
    """(stem, image, mask) from two folders: the mask's stem is the image's, or the image's + ``_...``.

    A mask belongs to the image of the longest stem it fits (``a_2_mask`` is ``a_2``'s, not
    ``a``'s); an image with several masks takes the one of the shortest stem.
    """
    from .images import list_images

    images = list_images([images_dir])
    stems = {img.stem for img in images}

    def owner(mask: Path) -> str | None:
        fits = [s for s in stems if mask.stem == s or mask.stem.startswith(s + "_")]
        return max(fits, key=len) if fits else None

    owners = {m: owner(m) for m in list_images([masks_dir])}
    pairs = []
    for img in images:
        match = [m for m, stem in owners.items() if stem == img.stem]
        if match:
            pairs.append((img.stem, img, sorted(match, key=lambda m: (len(m.stem), m.name))[0]))
    return pairs
