"""Image and mask I/O with explicit conversions and clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .metadata import pixel_size_from_sidecar, pixel_size_from_tiff

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")
# ITU-R BT.601 luma weights: the usual explicit RGB -> grey conversion.
_LUMA = np.array([0.299, 0.587, 0.114])


class ImageReadError(ValueError):
    """An input file cannot be read, or holds something that is not a 2D image."""


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
        image = image[..., 0] if same else (image.astype(np.float64) @ _LUMA).astype(np.float32)
    elif image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 2:
        raise ImageReadError(
            f"expected a 2D grey or RGB image, got an array of shape {image.shape} "
            "(stacks and volumes: segment one plane at a time)"
        )
    if image.size == 0:
        raise ImageReadError("the image is empty (0 pixels)")
    return image


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Read a 2D EM image and what the file says about it.

    Returns
    -------
    image : ndarray of shape (M, N)
        Grey values as stored (palette TIFFs give their index values, RGB is
        converted to grey explicitly).
    meta : dict
        ``pixel_size_nm`` (float or None), ``pixel_size_source`` (where it was read,
        see :mod:`napari_nanogan.io.metadata`), ``source`` (str), ``original_shape``.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    found = None
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                data = tif.asarray()
                found = pixel_size_from_tiff(tif)
        else:
            from PIL import Image

            with Image.open(path) as im:
                data = np.asarray(im)
    except ImageReadError:
        raise
    except Exception as exc:
        raise ImageReadError(f"{path}: cannot read as an image ({type(exc).__name__}: {exc})") from None
    found = found or pixel_size_from_sidecar(path)
    original_shape = tuple(data.shape)
    try:
        grey = as_grey(data)
    except ImageReadError as exc:
        raise ImageReadError(f"{path}: {exc}") from None
    meta = {"pixel_size_nm": found[0] if found else None, "pixel_size_source": found[1] if found else None,
            "source": str(path), "original_shape": original_shape}
    return grey, meta


def write_labels(path: str | os.PathLike, labels: np.ndarray, *, pixel_size_nm: float | None = None,
                 confidence: np.ndarray | None = None) -> Path:
    """Write an instance label image as a TIFF, atomically; pixel size into the resolution tags.

    The resolution is written in pixels per centimetre (TIFF unit 3) plus an ImageJ
    ``unit='nm'`` spacing, so both generic TIFF readers and ImageJ/Fiji see it. With
    ``confidence`` (one value per label 1..K), the labels' table ``<stem>.csv`` is written
    beside it (columns ``label``, ``confidence``; :func:`read_label_table`), before the
    TIFF: a labels TIFF on disk has its table complete beside it.
    """
    import tifffile

    path = Path(path)
    labels = np.asarray(labels)
    dtype = np.uint16 if labels.max(initial=0) < 2**16 else np.uint32
    kwargs = {}
    if pixel_size_nm:
        per_cm = 1e7 / pixel_size_nm
        kwargs = dict(resolution=(per_cm, per_cm), resolutionunit="CENTIMETER")
    if confidence is not None:
        with atomic_path(path.with_suffix(".csv")) as tmp:
            rows = [f"{k},{c:.4f}" for k, c in enumerate(np.asarray(confidence, float), start=1)]
            tmp.write_text("\n".join(["label,confidence", *rows]) + "\n")
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, labels.astype(dtype), compression="zlib", **kwargs)
    return path


def read_label_table(path: str | os.PathLike) -> np.ndarray | None:
    """The confidence per label (index k - 1 for label k) from the table beside a label image, or None."""
    import csv

    table = Path(path).with_suffix(".csv")
    if not table.is_file():
        return None
    with open(table, newline="") as fh:
        rows = [(int(r["label"]), float(r["confidence"])) for r in csv.DictReader(fh) if r.get("confidence")]
    if not rows:
        return None
    out = np.full(max(k for k, _ in rows), np.nan, np.float32)
    for k, c in rows:
        out[k - 1] = c
    return out


def labels_pixel_size_nm(path: str | os.PathLike) -> float | None:
    """Pixel size (nm) a label TIFF carries, e.g. from :func:`write_labels`, or None."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        found = pixel_size_from_tiff(tif)
    return found[0] if found else None


def list_inputs(paths) -> list[Path]:
    """:func:`list_images`, plus zarr stores (``*.zarr`` folders), given or inside a given folder."""
    from .omezarr import is_zarr

    out: list[Path] = []
    for p in map(Path, paths):
        if is_zarr(p):
            out.append(p)
        elif p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if (q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
                              or (q.suffix.lower() == ".zarr" and q.is_dir())))
        else:
            out.append(p)
    return out


def list_images(paths) -> list[Path]:
    """Expand files and folders (non-recursive) into a sorted list of image files."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file()))
        else:
            out.append(p)
    return out
