"""Images in microscope software's own formats.

- Gatan DigitalMicrograph (``.dm3``, ``.dm4``: the format of most TEM cameras), read
  through RosettaSciIO (the HyperSpy project's readers), its pixels memory-mapped.
- Thermo Fisher Velox EMD (``.emd``, HDF5), read here with h5py: a Velox file holds one
  image per detector (HAADF, DF, BF, a camera), often beside EDS spectra and element maps.
  The image of the imaging detector first in :data:`DETECTOR_ORDER` is read (else the
  largest); :func:`read` says which, of how many.
- Berkeley EMD (``.emd`` of other software), through RosettaSciIO.

One 2D image per file (:func:`read`), with the pixel size of its x calibration (none in
reciprocal units: :func:`~napari_nanogan.io.metadata.pixel_size_from_axes`). Sizes are
checked against the pixel limit before any pixel is read; stacks and series (more than one
frame) are refused by name (:class:`StackError`), and complex data (an FFT, a reconstructed
wave) too; colour comes as M x N x 3 for the caller to make grey. :func:`read_frames` reads
a stack or series whole, for viewing (napari). Every file is closed when the call returns.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .limits import ImageReadError, check_declared_size
from .metadata import pixel_size_from_axes

SUFFIXES = (".dm3", ".dm4", ".emd")
#: Velox detectors, the first found read: particle contrast from the imaging detectors, never an element map.
DETECTOR_ORDER = ("HAADF", "ADF", "DF4", "DF2", "DF", "BF", "CETA", "CAMERA")
_GATAN = "Gatan DigitalMicrograph"


class StackError(ImageReadError):
    """The file holds a stack or series of ``frames`` images of ``height`` x ``width``, not one image."""

    def __init__(self, path: Path, shape):
        self.frames, self.height, self.width = (int(v) for v in shape)
        super().__init__(f"{path}: holds a stack or series of {self.frames} images of {self.height} x {self.width}, "
                         "not one 2D image; export the frame or the sum you want as an image of its own (napari "
                         "opens the whole stack to look through)")


def read(path: Path) -> tuple[np.ndarray, tuple[float, str] | None, str | None]:
    """The file's image (colour as M x N x 3), (pixel size in nm, its source) or None, and which
    image was read where the file holds several (``"the HAADF image of 3"``), else None."""
    return _read(path, frames=False)


def read_frames(path: Path) -> tuple[np.ndarray, tuple[float, str] | None, str | None]:
    """As :func:`read`, but a stack or series comes whole, as frames x height x width (its size, all
    frames, checked against the pixel limit first); a single image comes as it is."""
    return _read(path, frames=True)


def _read(path: Path, *, frames: bool) -> tuple[np.ndarray, tuple[float, str] | None, str | None]:
    if path.suffix.lower() == ".emd":
        return _read_emd(path, pixels=True, frames=frames)
    signal = _gatan_image(path, frames=frames)
    data = np.asarray(signal["data"])
    if data.dtype.names:  # RGBA as a structured array
        data = np.stack([data[c] for c in ("R", "G", "B")], axis=-1)
    if np.iscomplexobj(data):
        raise ImageReadError(f"{path}: holds complex values (an FFT or a reconstructed wave?), not an image of "
                             f"particles; export its amplitude or the real-space image from {_GATAN}")
    return data, pixel_size_from_axes(signal["axes"], _GATAN), None


def pixel_size(path: Path) -> tuple[float, str] | None:
    """(pixel size in nm, its source) of the image :func:`read` reads, without reading its pixels (a colour DM
    image is read: its pixels cannot be mapped); None where unknown or the file is unreadable."""
    try:
        if path.suffix.lower() == ".emd":
            return _read_emd(path, pixels=False)[1]
        return pixel_size_from_axes(_gatan_image(path)["axes"], _GATAN)
    except Exception:
        return None


def _rsciio(plugin: str, path: Path, **kwargs) -> list[dict]:
    import importlib

    try:
        reader = importlib.import_module(f"rsciio.{plugin}").file_reader
    except ImportError:
        raise ImageReadError(f"{path}: reading this format needs RosettaSciIO, which napari-nanogan installs; "
                             "reinstall it (pip install rosettasciio), or export the image as TIFF") from None
    return reader(str(path), **kwargs)


def _gatan_image(path: Path, *, frames: bool = False) -> dict:
    """The DM file's image (RosettaSciIO's signal; pixels mapped, not read, unless colour), its size checked.

    Of several 2D images (GMS lists its thumbnail apart; other writers may not) the largest
    grey one. A colour image cannot be mapped: four bytes a pixel, uncompressed, so the
    file's size bounds it before it is read whole.
    """
    try:
        signals = _rsciio("digitalmicrograph", path, lazy=True)
    except ValueError as exc:
        if "RGBA" not in str(exc):
            raise
        check_declared_size(path, (path.stat().st_size // 4, 1, 4), 1)
        signals = _rsciio("digitalmicrograph", path, lazy=False)
    if not signals:
        raise ImageReadError(f"{path}: the {_GATAN} file holds no image")
    images = [s for s in signals if sum(not a.get("navigate", False) for a in s["axes"]) == 2] or signals
    signal = max(images, key=lambda s: (not s["data"].dtype.names, int(np.prod(s["data"].shape))))
    shape = signal["data"].shape
    if len(shape) == 3 and not signal["data"].dtype.names and not frames:
        raise StackError(path, shape)
    if signal["data"].dtype.names:
        check_declared_size(path, (*shape, 4), 1)
    else:
        check_declared_size(path, shape, signal["data"].dtype.itemsize)
    return signal


def _read_emd(path: Path, *, pixels: bool, frames: bool = False
              ) -> tuple[np.ndarray | None, tuple[float, str] | None, str | None]:
    try:
        import h5py
    except ImportError:
        raise ImageReadError(f"{path}: reading EMD files needs h5py, which napari-nanogan installs; reinstall it "
                             "(pip install h5py), or export the image as TIFF") from None
    with h5py.File(path, "r") as f:
        if not _is_velox(f):
            return _read_berkeley(path, f, pixels=pixels)
        found = [(group, _json_column(group["Metadata"])) for group in (f.get("Data/Image") or {}).values()
                 if isinstance(group, h5py.Group) and "Data" in group and "Metadata" in group]
        if not found:
            raise ImageReadError(f"{path}: the Velox file holds no image (spectra only?)")
        real = [item for item in found if not item[0]["Data"].dtype.names]  # not an FFT or DPC (complex)
        group, meta = min(real or found, key=lambda item: _detector_rank(item[1], item[0]["Data"].shape))
        detector = _detector_name(meta) or "image"
        which = f"the {detector} image of {len(found)}" if len(found) > 1 else None
        source = f"Velox {detector}"
        dataset = group["Data"]
        height, width, count = (*dataset.shape, 1)[:3]
        if count > 1 and not frames:
            raise StackError(path, (count, height, width))
        if dataset.dtype.names:
            raise ImageReadError(f"{path}: the Velox {detector} image holds complex values (an FFT or DPC?), not an "
                                 "image of particles; export its real-space image from Velox")
        check_declared_size(path, (count, height, width) if count > 1 else (height, width), dataset.dtype.itemsize)
        data = None
        if pixels:  # Velox stores frames last: height x width x frames
            data = np.moveaxis(dataset[()], -1, 0) if count > 1 else (dataset[:, :, 0] if dataset.ndim == 3
                                                                        else dataset[()])
    return data, _velox_pixel_size(meta, source), which


def _is_velox(f) -> bool:
    try:
        return json.loads(bytes(f["Version"][0]).decode("utf-8")).get("format") in ("Velox", "DevelopersKit")
    except Exception:
        return False


def _json_column(dataset) -> dict:
    try:
        return json.loads(np.asarray(dataset[:, 0]).tobytes().decode("utf-8").rstrip("\x00"))
    except Exception:
        return {}


def _detector_name(meta: dict) -> str | None:
    index = (meta.get("BinaryResult") or {}).get("DetectorIndex")
    detector = (meta.get("Detectors") or {}).get(f"Detector-{index}") or {}
    return detector.get("DetectorName")


def _detector_rank(meta: dict, shape) -> tuple[int, int]:
    name = (_detector_name(meta) or "").upper().replace("-", "")
    rank = next((k for k, key in enumerate(DETECTOR_ORDER) if key in name), len(DETECTOR_ORDER))
    return rank, -int(shape[0]) * int(shape[1])


def _velox_pixel_size(meta: dict, source: str) -> tuple[float, str] | None:
    """The x pixel size Velox records (``BinaryResult``: ``PixelSize`` width in ``PixelUnitX``), as an axis."""
    binary = meta.get("BinaryResult") or {}
    width = (binary.get("PixelSize") or {}).get("width")
    return pixel_size_from_axes([{"scale": width, "units": binary.get("PixelUnitX")}], source) if width else None


def _read_berkeley(path: Path, f, *, pixels: bool) -> tuple[np.ndarray | None, tuple[float, str] | None, None]:
    """A Berkeley EMD file: its largest data set's size checked here, then read (and closed) by RosettaSciIO."""
    sizes = []
    f.visititems(lambda name, item: sizes.append(item) if getattr(item, "ndim", 0) >= 2 and name.endswith("data")
                 else None)
    if not sizes:
        raise ImageReadError(f"{path}: not an EMD file of images (neither Velox nor Berkeley data sets)")
    largest = max(sizes, key=lambda d: d.size)
    if largest.ndim == 3:  # frames, or a spectrum image (EELS, EDS): not opened as frames
        raise StackError(path, largest.shape)
    check_declared_size(path, largest.shape, largest.dtype.itemsize)
    signal = _rsciio("emd", path, lazy=False)[0]
    data = np.asarray(signal["data"]) if pixels else None
    if data is not None and np.iscomplexobj(data):
        raise ImageReadError(f"{path}: holds complex values (an FFT or a reconstructed wave?), not an image of particles")
    return data, pixel_size_from_axes(signal["axes"], "EMD (Berkeley)"), None
