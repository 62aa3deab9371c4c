"""Pixel size (nm) and instrument metadata of SEM/TEM image files.

Sources, in the order tried:

1. Zeiss SmartSEM: TIFF tag 34118 (CZ_SEM) as parsed by tifffile, ``ap_pixel_size``.
2. FEI / Thermo Fisher: tags 34680/34682, ``[Scan] PixelWidth`` (or ``[EScan]``), metres.
3. Tescan: tag 50431 text, ``PixelSizeX=`` in metres.
4. OME-TIFF: ``Pixels PhysicalSizeX`` with ``PhysicalSizeXUnit`` (default µm).
5. ImageJ hyperstack TIFFs: ``unit`` in the ImageJ description and ``XResolution``.
6. A plain TIFF resolution in pixels per centimetre (as ``nanogan segment`` writes it);
   resolutions per inch are ignored: 72/96/300 dpi are screen or print settings.
7. Sidecar text files next to the image (same stem, ``.txt``):
   Hitachi (``PixelSize=`` in nm) and JEOL (``$$SM_MICRON_BAR`` pixels for
   ``$$SM_MICRON_MARKER`` length).
8. Gatan DigitalMicrograph (``.dm3``, ``.dm4``) and EMD (``.emd``: Velox, Berkeley): the
   image's x calibration (scale and unit; :func:`pixel_size_from_axes`, from the axes
   RosettaSciIO reads or Velox's ``BinaryResult``, :mod:`napari_nanogan.io.vendor`). A reciprocal unit
   (``1/nm``: a diffraction pattern or an FFT) is no pixel size.

Every conversion to nm is exact (powers of ten); the source is reported with the value.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

logger = logging.getLogger(__name__)

UNIT_TO_NM = {
    "m": 1e9, "mm": 1e6, "cm": 1e7, "um": 1e3, "µm": 1e3, "μm": 1e3, "micron": 1e3, "microns": 1e3,
    "micrometer": 1e3, "micrometre": 1e3, "nm": 1.0, "nanometer": 1.0, "nanometre": 1.0, "pm": 1e-3, "a": 0.1, "å": 0.1,
    "meter": 1e9, "metre": 1e9, "millimeter": 1e6, "millimetre": 1e6, "centimeter": 1e7, "centimetre": 1e7,
    "picometer": 1e-3, "picometre": 1e-3, "angstrom": 0.1, "ångström": 0.1,
}


def to_nm(value: float, unit: str) -> float:
    """Convert a length to nm; raises ValueError for an unknown unit."""
    key = str(unit).strip().lower().replace("\\u00b5", "µ")
    if key not in UNIT_TO_NM:
        raise ValueError(f"unknown length unit {unit!r}")
    return float(value) * UNIT_TO_NM[key]


def _zeiss(tif):
    sem = getattr(tif, "sem_metadata", None)
    if sem and "ap_pixel_size" in sem:
        _, value, unit = sem["ap_pixel_size"]
        return to_nm(value, unit), "Zeiss SmartSEM (tag 34118 ap_pixel_size)"
    return None


def _fei(tif):
    fei = getattr(tif, "fei_metadata", None)
    if fei:
        for section in ("Scan", "EScan", "Image"):
            width = (fei.get(section) or {}).get("PixelWidth")
            if width:
                return float(width) * 1e9, f"FEI/Thermo Fisher ([{section}] PixelWidth)"
    return None


def _tescan(tif):
    tag = tif.pages[0].tags.get(50431)
    if tag is None:
        return None
    text = tag.value.decode("latin-1", "ignore") if isinstance(tag.value, bytes) else str(tag.value)
    m = re.search(r"PixelSizeX\s*=\s*([0-9.eE+-]+)", text)
    if m:
        return float(m.group(1)) * 1e9, "Tescan (tag 50431 PixelSizeX)"
    return None


def _ome(tif):
    xml = getattr(tif, "ome_metadata", None)
    if not xml:
        return None
    m = re.search(r"<Pixels[^>]*>", xml)
    if not m:
        return None
    size = re.search(r'PhysicalSizeX="([0-9.eE+-]+)"', m.group(0))
    if not size:
        return None
    unit = re.search(r'PhysicalSizeXUnit="([^"]+)"', m.group(0))
    return to_nm(float(size.group(1)), unit.group(1) if unit else "µm"), "OME-TIFF (PhysicalSizeX)"


def _resolution(tif):
    page = tif.pages[0]
    res, unit_tag = page.tags.get("XResolution"), page.tags.get("ResolutionUnit")
    if res is None:
        return None
    num, den = res.value
    per_unit = num / den if den else 0.0
    if per_unit <= 0:
        return None
    if (y_res := page.tags.get("YResolution")) is not None and y_res.value[1]:
        per_unit_y = y_res.value[0] / y_res.value[1]
        if abs(per_unit_y - per_unit) > 1e-6 * per_unit:  # one pixel size would be wrong along one axis
            logger.warning("%s: pixels of %.6g x %.6g (x, y; resolution tags) are not square; the pixel size is not "
                           "used (lengths in px); give it with --pixel-size once the image is resampled square",
                           tif.filehandle.path, 1 / per_unit, 1 / per_unit_y)
            return None
    ij = getattr(tif, "imagej_metadata", None) or {}
    if ij.get("unit"):
        try:
            return to_nm(1.0 / per_unit, ij["unit"]), f"ImageJ (unit {ij['unit']}, XResolution)"
        except ValueError:
            return None
    if unit_tag is not None and int(unit_tag.value) == 3:  # centimetre
        nm = 1e7 / per_unit
        if nm < 1e5:  # finer than 0.1 mm per pixel: a microscope, not a print setting
            return nm, "TIFF resolution (pixels per cm)"
    return None


#: The pixel sizes (nm) taken from files and written into TIFFs: a finite length in this range. The lower
#: end is what a TIFF's resolution (pixels per centimetre, a ratio of 32-bit integers) can hold: 2.3 pm.
PIXEL_SIZE_RANGE_NM = (0.003, 1e9)


def _usable(value: float) -> bool:
    """A pixel size to trust: a finite length within :data:`PIXEL_SIZE_RANGE_NM` (what label TIFFs can record)."""
    return math.isfinite(value) and PIXEL_SIZE_RANGE_NM[0] <= value <= PIXEL_SIZE_RANGE_NM[1]


def _sidecar(path: Path):
    for candidate in (path.with_suffix(".txt"), path.with_suffix(".TXT")):
        if not candidate.is_file():
            continue
        with open(candidate, "rb") as fh:  # a sidecar is a few KB: never read more than 1 MB of one
            text = fh.read(1 << 20).decode("utf-8", errors="ignore")
        m = re.search(r"^\s*PixelSize\s*=\s*([0-9.eE+-]+)", text, re.MULTILINE)
        if m:
            value = float(m.group(1))
            if not _usable(value):
                logger.warning("%s: PixelSize=%s is not a positive length; ignored (pass the pixel size "
                               "explicitly)", candidate, m.group(1))
                return None
            return value, f"Hitachi sidecar {candidate.name} (PixelSize, nm)"
        bar = re.search(r"\$\$SM_MICRON_BAR\s+([0-9.]+)", text)
        marker = re.search(r"\$\$SM_MICRON_MARKER\s+([0-9.]+)\s*([a-zA-Zµμ]+)", text)
        if bar and marker and float(bar.group(1)) > 0 and _usable(float(marker.group(1))):
            return to_nm(float(marker.group(1)), marker.group(2)) / float(bar.group(1)), \
                f"JEOL sidecar {candidate.name} (SM_MICRON_MARKER / SM_MICRON_BAR)"
    return None


def pixel_size_from_tiff(tif) -> tuple[float, str] | None:
    """(pixel size in nm, where it came from) from an open ``tifffile.TiffFile``, or None."""
    for reader in (_zeiss, _fei, _tescan, _ome, _resolution):
        try:
            found = reader(tif)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            found = None
        if found is not None and _usable(found[0]):
            return found
    return None


def pixel_size_from_axes(axes, software: str) -> tuple[float, str] | None:
    """(pixel size in nm, where it came from) from a RosettaSciIO signal's axes, or None.

    The last axis not navigated is the image's x; its ``scale`` in its ``units`` is the
    pixel size. None for an uncalibrated axis (no unit, or ``pixels``), a reciprocal unit
    (``1/nm``, ``nm^-1``: diffraction or an FFT, where a pixel is no length) and any unit
    that is no length.
    """
    signal = [a for a in axes if not a.get("navigate", False)]
    if not signal:
        return None
    x = signal[-1]
    unit = str(x.get("units") or "").strip()
    try:
        scale = abs(float(x.get("scale", 0.0)))  # (a mirrored axis has a negative step)
    except (TypeError, ValueError):
        return None
    if not unit or "/" in unit or "-1" in unit:
        if unit:
            logger.info("x calibration in %s: reciprocal space, no pixel size", unit)
        return None
    try:
        value = to_nm(scale, unit)
    except ValueError:
        return None
    return (value, f"{software} (x calibration {scale:g} {unit})") if _usable(value) else None


def pixel_size_from_sidecar(path) -> tuple[float, str] | None:
    try:
        return _sidecar(Path(path))
    except (OSError, ValueError):
        return None
