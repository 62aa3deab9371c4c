"""Images in microscope software's own formats, read through RosettaSciIO (the HyperSpy project's readers).

- Gatan DigitalMicrograph (``.dm3``, ``.dm4``): the format of most TEM cameras.
- EMD (``.emd``, HDF5): Thermo Fisher Velox, and the Berkeley (NCEM) variant.

The first 2D image of a file is read, with the pixel size of its x calibration
(:func:`~napari_nanogan.io.metadata.pixel_size_from_axes`: none in reciprocal units). Pixels
are mapped lazily first, so the size is checked against the pixel limit before any is
read. Colour becomes grey as for other files (by the caller); stacks and series (more
than one frame) and complex data (an FFT, a reconstructed wave) are refused, by name.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from .limits import ImageReadError, check_declared_size
from .metadata import pixel_size_from_axes

#: suffix -> (RosettaSciIO plugin, the software's name in messages and pixel-size sources)
FORMATS = {".dm3": ("digitalmicrograph", "Gatan DigitalMicrograph"),
           ".dm4": ("digitalmicrograph", "Gatan DigitalMicrograph"),
           ".emd": ("emd", "EMD (Velox)")}
SUFFIXES = tuple(FORMATS)


def signals(path: Path, *, lazy: bool) -> list[dict]:
    """RosettaSciIO's signals of a file (thumbnails and spectra left out), pixels mapped, not read, when ``lazy``.

    A DigitalMicrograph colour image cannot be mapped: ``[]`` then, where ``lazy``.
    """
    plugin, software = FORMATS[path.suffix.lower()]
    try:
        reader = importlib.import_module(f"rsciio.{plugin}").file_reader
        if plugin == "emd":
            import h5py  # noqa: F401  (RosettaSciIO's EMD reader needs it, and says so less clearly)
    except ImportError as exc:
        raise ImageReadError(f"{path}: reading {software} files needs {exc.name or 'RosettaSciIO'}, which "
                             "napari-nanogan installs; reinstall it (pip install rosettasciio h5py), or export the "
                             "image as TIFF") from None
    kwargs = {"select_type": "images"} if plugin == "emd" else {}
    try:
        return reader(str(path), lazy=lazy, **kwargs)
    except ValueError as exc:
        if lazy and "RGBA" in str(exc):
            return []
        raise


def read(path: Path) -> tuple[np.ndarray, tuple[float, str] | None]:
    """The first image of the file (colour as M x N x 3) and (pixel size in nm, its source) or None."""
    software = FORMATS[path.suffix.lower()][1]
    found = signals(path, lazy=True)
    if not found:  # a colour DM image: four bytes a pixel, uncompressed, so the file's size bounds it
        check_declared_size(path, (path.stat().st_size // 4, 1, 4), 1)
        found = signals(path, lazy=False)
    if not found:
        raise ImageReadError(f"{path}: the {software} file holds no image")
    images = [s for s in found if sum(not a.get("navigate", False) for a in s["axes"]) == 2]
    signal = (images or found)[0]
    data = signal["data"]
    if data.dtype.names:  # RGBA as a structured array
        check_declared_size(path, (*data.shape, 4), 1)
        data = np.asarray(data)
        data = np.stack([data[c] for c in ("R", "G", "B")], axis=-1)
    else:
        check_declared_size(path, data.shape, data.dtype.itemsize)
        data = np.asarray(data)
    if np.iscomplexobj(data):
        raise ImageReadError(f"{path}: holds complex values (an FFT or a reconstructed wave?), not an image of "
                             f"particles; export its amplitude or the real-space image from {software}")
    return data, pixel_size_from_axes(signal["axes"], software)


def pixel_size(path: Path) -> tuple[float, str] | None:
    """(pixel size in nm, its source) of the file's first image, without reading its pixels; None if unknown
    or the file is unreadable (a DigitalMicrograph colour image gives none: its pixels cannot be mapped)."""
    try:
        found = signals(path, lazy=True)
        images = [s for s in found if sum(not a.get("navigate", False) for a in s["axes"]) == 2]
        return pixel_size_from_axes((images or found)[0]["axes"], FORMATS[path.suffix.lower()][1]) if found else None
    except Exception:
        return None
