"""Image and mask I/O with explicit conversions and clear errors."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from . import vendor
from .atomic import put_in_place, temporary_path
from .limits import (  # noqa: F401  (the limits are part of this module's face)
    BYTES_PER_PIXEL,
    DEFAULT_MAX_PIXELS,
    MAX_PIXELS_ENV,
    ImageReadError,
    ImageTooLargeError,
    check_declared_size,
    check_readable_file,
    first_line,
    max_pixels,
)
from .metadata import PIXEL_SIZE_RANGE_NM, pixel_size_from_sidecar, pixel_size_from_tiff

#: Microscope software's own formats (Gatan .dm3 / .dm4, EMD .emd), read by :mod:`napari_nanogan.io.vendor`.
VENDOR_SUFFIXES = vendor.SUFFIXES
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", *VENDOR_SUFFIXES)
# ITU-R BT.601 luma weights: the usual explicit RGB -> grey conversion.
_LUMA = np.array([0.299, 0.587, 0.114])


_PIL_ITEMSIZE = {"I;16": 2, "I;16B": 2, "I;16L": 2, "I": 4, "F": 4}


def read_array(path: str | os.PathLike, *, what: str = "an image", notes: dict | None = None,
               palette: bool = False) -> tuple[np.ndarray, tuple | None]:
    """The pixel array a TIFF, PNG, JPEG, BMP, DigitalMicrograph or EMD file holds, with its pixel size (or None).

    The declared size is checked against :func:`max_pixels` before decoding; any failure is
    an :class:`ImageReadError` naming the file. ``notes`` (a dict) gets ``image_read``: which
    of a file's several images was read (a Velox file's detectors), where that is a choice.
    ``palette``: a palette (indexed-colour) TIFF or PNG gives its colours, as a viewer shows it
    (an RGB array, or grey where the palette is grey); else its indices (a mask's labels).
    """
    path = Path(path)
    check_readable_file(path)
    found = None
    try:
        if path.suffix.lower() in VENDOR_SUFFIXES:
            data, found, which = vendor.read(path)
            if which and notes is not None:
                notes["image_read"] = which
        elif path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                check_declared_size(path, series.shape, series.dtype.itemsize)
                data = tif.asarray()
                found = pixel_size_from_tiff(tif)
                page = tif.pages[0]
                if palette and page.photometric == tifffile.PHOTOMETRIC.PALETTE and page.colormap is not None:
                    data = _palette_colours(data, page.colormap)
        else:
            import warnings

            from PIL import Image

            pillow_limit = Image.MAX_IMAGE_PIXELS
            try:  # our limit replaces Pillow's (opening reads the header only; the check below is before decoding)
                Image.MAX_IMAGE_PIXELS = None
                im = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = pillow_limit
            with im, warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                width, height = im.size
                bands = len(im.getbands())
                check_declared_size(path, (height, width, bands) if bands > 1 else (height, width),
                                    _PIL_ITEMSIZE.get(im.mode, 1))
                if im.mode in ("LA", "La", "PA"):  # with alpha: as RGBA, which the readers take
                    im = im.convert("RGBA")
                data = np.asarray(im)
                if palette and im.mode == "P" and im.getpalette():
                    table = np.asarray(im.getpalette(), np.uint16).reshape(-1, 3) * 257  # (as a TIFF's colormap)
                    data = _palette_colours(data, table.T)
    except ImageReadError:
        raise
    except MemoryError:
        raise ImageReadError(f"{path}: not enough memory to decode it; lower ${MAX_PIXELS_ENV} so that such files are "
                             "refused before decoding, or use a machine with more memory") from None
    except Exception as exc:
        raise ImageReadError(f"{path}: cannot read as {what}: the file may be damaged, cut short, or stored in a way "
                             f"this reader does not support ({type(exc).__name__}: {first_line(exc)})") from None
    return data, found


def as_grey(image: np.ndarray) -> np.ndarray:
    """Return a 2D grey image, converting RGB(A) explicitly (BT.601 luma, alpha ignored).

    Parameters
    ----------
    image : ndarray of shape (M, N), (M, N, 3) or (M, N, 4)

    Raises
    ------
    ImageReadError
        For stacks, volumes, empty arrays and non-numeric data.
    """
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8)
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise ImageReadError(f"unsupported pixel type {image.dtype}; expected integers or floats")
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        if image.shape[-1] == 4:
            image = image[..., :3]
        same = np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])
        image = image[..., 0] if same else _luma(image)
    elif image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 2:
        raise ImageReadError(
            f"expected a 2D grey or RGB image, got an array of shape {image.shape} "
            "(a stack or volume: save each plane as an image of its own, e.g. with Fiji's Image > Stacks > "
            "Stack to Images, and segment those)"
        )
    if image.size == 0:
        raise ImageReadError("the image is empty (0 pixels)")
    return image


def _palette_colours(indices: np.ndarray, colormap: np.ndarray) -> np.ndarray:
    """What a palette image shows: the colours of its ``indices`` in a (3, n) 16-bit ``colormap`` (8-bit where
    it holds 8-bit values, multiples of 257; one channel where it is grey).

    A grey palette that maps nine pixels in ten or more to their own index (a microscope's 8-bit image whose
    palette holds a few overlay colours, as the BAM SEM files do) keeps its indices: they are the grey
    levels the microscope measured.
    """
    colormap = np.asarray(colormap)
    if colormap.max(initial=0) <= 0xFFFF and not (colormap % 257).any():
        colormap = (colormap // 257).astype(np.uint8)
    n = colormap.shape[1]
    own = (colormap.astype(np.int64) == np.arange(n)).all(0)  # the entries that show their own index as grey
    step = max(1, int(np.sqrt(indices.size / 1e6)))
    if colormap.dtype == np.uint8 and own[np.minimum(indices[::step, ::step], n - 1)].mean() >= 0.9:
        return indices
    table = colormap[0] if (colormap == colormap[:1]).all() else colormap.T
    return table[np.minimum(indices, n - 1)]


def _luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 grey (float32) of an RGB array, a block of rows at a time (float64 sums, little memory)."""
    out = np.empty(rgb.shape[:2], np.float32)
    step = max(1, (1 << 20) // max(rgb.shape[1], 1))
    for y in range(0, rgb.shape[0], step):
        out[y : y + step] = rgb[y : y + step].astype(np.float64) @ _LUMA
    return out


def read_image(path: str | os.PathLike, *, palette: bool = True) -> tuple[np.ndarray, dict]:
    """Read a 2D EM image and what the file says about it.

    Returns
    -------
    image : ndarray of shape (M, N)
        Grey values as stored (a palette image gives its colours, as a viewer shows
        it, but a grey palette with a few overlay colours its indices: :func:`_palette_colours`;
        RGB is converted to grey explicitly). ``palette=False``: a palette file's indices (a label
        image's labels).
    meta : dict
        ``pixel_size_nm`` (float or None), ``pixel_size_source`` (where it was read,
        see :mod:`napari_nanogan.io.metadata`), ``source`` (str), ``original_shape``, and
        ``image_read`` where the file holds several images (which one was read).
    """
    path = Path(path)
    notes: dict = {}
    data, found = read_array(path, notes=notes, palette=palette)
    found = found or pixel_size_from_sidecar(path)
    original_shape = tuple(data.shape)
    try:
        grey = as_grey(data)
    except ImageReadError as exc:
        raise ImageReadError(f"{path}: {exc}") from None
    meta = {"pixel_size_nm": found[0] if found else None, "pixel_size_source": found[1] if found else None,
            "source": str(path), "original_shape": original_shape, **notes}
    return grey, meta


def file_pixel_size(path: str | os.PathLike) -> tuple[float, str] | None:
    """(pixel size in nm, where it was read) from a file's tags or sidecar, without decoding its pixels."""
    path = Path(path)
    found = None
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                found = pixel_size_from_tiff(tif)
        except Exception:  # not a readable TIFF: no pixel size from it
            found = None
    elif path.suffix.lower() in VENDOR_SUFFIXES:
        found = vendor.pixel_size(path)
    return found or pixel_size_from_sidecar(path)


def resolution_tags(pixel_size_nm: float | None) -> dict:
    """``tifffile.imwrite`` arguments that record a pixel size (pixels per centimetre); none for None (or 0)."""
    if not pixel_size_nm:
        return {}
    low, high = PIXEL_SIZE_RANGE_NM
    if not (math.isfinite(pixel_size_nm) and low <= pixel_size_nm <= high):
        raise ValueError(f"the pixel size must be a positive number of nm ({low:g} to {high:g}), not {pixel_size_nm}")
    per_cm = 1e7 / pixel_size_nm
    return dict(resolution=(per_cm, per_cm), resolutionunit="CENTIMETER")


#: What a label TIFF of :func:`write_labels` says it holds (its description's ``content``).
LABELS_CONTENT = "instance labels (napari-nanogan)"


def write_labels(path: str | os.PathLike, labels: np.ndarray, *, pixel_size_nm: float | None = None,
                 confidence: np.ndarray | None = None, info_bar_start: int | None = None,
                 info_bar_end: int | None = None) -> Path:
    """Write an instance label image as a TIFF, atomically; pixel size into the resolution tags.

    The resolution is written in pixels per centimetre (TIFF unit 3), which generic TIFF
    readers, napari-nanogan and ImageJ/Fiji (which shows it in cm) read. With
    ``confidence`` (one value per label 1..K), the labels' table ``<stem>.csv`` is written
    beside it (columns ``label``, ``confidence``; :func:`read_label_table`): an earlier label
    image of that name goes first, then the table, then the TIFF, so a labels TIFF on disk
    always has its own table complete beside it, never another image's (without ``confidence``,
    an earlier table of that name is removed). Both are written to temporary files first, so a
    write that fails (a full disk, an interrupt, a pixel size a TIFF cannot hold) leaves the
    earlier files as they were. ``info_bar_start``:
    the first row of the source image's bottom info bar, kept in the TIFF's description
    (:func:`labels_info_bar_rows`), so that ``nanogan measure`` flags the particles it cuts
    without the source image; ``info_bar_end``: one past the last row of a top info bar, likewise. The
    description also says the TIFF holds labels (:func:`is_labels_tiff`), so that napari's reader opens it as a
    Labels layer whatever its name.
    """
    import tifffile

    path = Path(path)
    labels = np.asarray(labels)
    if labels.ndim != 2 or not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise ValueError(f"labels must be a 2D integer array, not {labels.ndim}D {labels.dtype}")
    low, top = int(labels.min(initial=0)), int(labels.max(initial=0))
    if low < 0 or top >= 2**32:
        raise ValueError(f"labels must be 0 (background) to 2**32 - 1, not {low} to {top}")
    if confidence is not None and len(confidence) != top:
        raise ValueError(f"confidence has {len(confidence)} values for labels 1..{top}: one per label")
    dtype = np.uint16 if top < 2**16 else np.uint32
    kwargs = resolution_tags(pixel_size_nm)
    kwargs["metadata"] = {"content": LABELS_CONTENT, **{key: int(row) for key, row in (
        ("info_bar_start", info_bar_start), ("info_bar_end", info_bar_end)) if row is not None}}
    table = path.with_suffix(".csv")
    table_free = not table.exists() or is_label_table(table)  # (the user's own file of that name: never replaced)
    if confidence is not None and not table_free:
        raise FileExistsError(f"{table} is not a label table, and the confidence table of {path.name} would "
                              "replace it: choose another name for the labels")
    staged = []  # both files are written beside their targets first: a failure (a full disk, an interrupt) loses
    try:         # nothing that was there; then renames alone put them in place
        if confidence is not None:
            staged.append((temporary_path(table), table))
            rows = [f"{k},{c:.4f}" for k, c in enumerate(np.asarray(confidence, float), start=1)]
            staged[-1][0].write_text("\n".join(["label,confidence", *rows]) + "\n")
        staged.append((temporary_path(path), path))
        tifffile.imwrite(staged[-1][0], labels.astype(dtype), compression="zlib", **kwargs)
        if table_free:  # an earlier label image of this name goes first, then its table (or, without a new
            if confidence is not None:  # table, any earlier image's), then the new image
                path.unlink(missing_ok=True)
            table.unlink(missing_ok=True)
        for tmp, target in staged:
            put_in_place(tmp, target)
    except OSError as exc:
        if exc.errno is None:
            raise
        raise OSError(exc.errno, f"cannot write {path}: {exc.strerror}") from None
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return path


def is_label_table(path: Path) -> bool:
    """Whether a CSV is a labels' confidence table (:func:`write_labels`'s), by its header."""
    try:
        with open(path, newline="") as fh:
            return fh.readline().strip().lower().startswith("label,confidence")
    except (OSError, UnicodeDecodeError):
        return False


def is_labels_tiff(path: str | os.PathLike) -> bool:
    """Whether a TIFF says it holds instance labels (:func:`write_labels` marks those it writes, whatever
    their name); False for any other file, or one that cannot be read."""
    import tifffile

    if Path(path).suffix.lower() not in (".tif", ".tiff"):
        return False
    try:
        with tifffile.TiffFile(path) as tif:
            meta = tif.shaped_metadata or ({},)
    except Exception:
        return False
    return meta[0].get("content") == LABELS_CONTENT


def read_label_table(path: str | os.PathLike, max_label: int) -> np.ndarray | None:
    """The confidence per label (index k - 1 for label k, k = 1 .. ``max_label``, the label image's largest
    label; NaN for a label the table lacks) from the table beside a label image, or None without one.

    A table that cannot be read as one (a label that is not a whole number from 1, a confidence that is not a
    number) raises ``ValueError`` naming it; rows of labels above ``max_label`` (repainted away) are left out.
    """
    import csv

    table = Path(path).with_suffix(".csv")
    if max_label < 1 or not table.is_file() or not is_label_table(table):  # (another CSV of that name is not
        return None                                                          # the labels')
    out = np.full(int(max_label), np.nan, np.float32)
    found = False
    with open(table, newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            if not row.get("confidence"):
                continue
            try:
                k, c = int(row["label"]), float(row["confidence"])
                if k < 1:
                    raise ValueError
            except (TypeError, ValueError):
                raise ValueError(f"{table}, line {line}: expected a label (a whole number from 1) and a confidence "
                                 f"(a number), not {row.get('label')!r}, {row.get('confidence')!r}; correct or "
                                 "remove the table") from None
            if k <= max_label:
                out[k - 1], found = c, True
    return out if found else None


def labels_pixel_size_nm(path: str | os.PathLike) -> float | None:
    """Pixel size (nm) a label TIFF carries, e.g. from :func:`write_labels`, or None."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            found = pixel_size_from_tiff(tif)
    except Exception as exc:
        raise ImageReadError(f"{path}: cannot read as a TIFF ({type(exc).__name__}: {first_line(exc)})") from None
    return found[0] if found else None


def labels_info_bar_rows(path: str | os.PathLike) -> tuple[int | None, int | None]:
    """The info bar a label TIFF carries (:func:`write_labels`): (first row of a bottom bar, one past the
    last row of a top bar), each None where it has none."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            meta = tif.shaped_metadata or ({},)
    except Exception as exc:
        raise ImageReadError(f"{path}: cannot read as a TIFF ({type(exc).__name__}: {first_line(exc)})") from None

    def row(key: str) -> int | None:
        value = meta[0].get(key)
        return int(value) if isinstance(value, int) and value >= 0 else None

    return row("info_bar_start"), row("info_bar_end")


def labels_info_bar_start(path: str | os.PathLike) -> int | None:
    """The first row of the bottom info bar a label TIFF carries (:func:`write_labels`), or None."""
    return labels_info_bar_rows(path)[0]


def list_images(paths, *, zarr: bool = False) -> list[Path]:
    """Expand files and folders (non-recursive) into a sorted list of image files.

    ``zarr``: zarr stores (``*.zarr`` folders), given or inside a given folder, are
    inputs too (images larger than memory).
    """
    from .omezarr import is_zarr

    out: list[Path] = []
    for p in map(Path, paths):
        if zarr and is_zarr(p):
            out.append(p)
        elif p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if (q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
                              or (zarr and q.suffix.lower() == ".zarr" and q.is_dir())))
        else:
            out.append(p)
    return out
