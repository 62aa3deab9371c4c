"""Layers: a layer's pixel size in nm, and result layers as napari draws them fastest."""

from __future__ import annotations

import math

import numpy as np

#: Relative difference under which a layer's y and x scales count as one square pixel.
SQUARE_PIXEL_TOLERANCE = 1e-6


def layer_data(layer) -> np.ndarray:
    """A layer's pixels, read whole: of a multiscale layer its full-resolution level (``np.asarray(layer.data)``
    gives its coarsest, napari's view of it). A ``ValueError`` says so for one over the pixel limit the
    panels read whole (:func:`~napari_nanogan.io.limits.max_pixels`)."""
    from ..io.limits import MAX_PIXELS_ENV, max_pixels

    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    shape = tuple(int(n) for n in data.shape)
    pixels = math.prod(shape[:2] if len(shape) == 3 and shape[-1] in (3, 4) else shape)
    if pixels > max_pixels():
        raise ValueError(f"{layer.name!r} is {' x '.join(map(str, shape))} pixels, more than the "
                         f"{max_pixels() / 1e6:.0f} megapixels the panels read whole (${MAX_PIXELS_ENV} raises it, "
                         "where this machine has the memory)")
    return np.asarray(data)


def layer_pixel_size_nm(layer) -> float | None:
    """Pixel size in nm of a napari layer: its scale where its units are a length (any length unit
    napari's pint knows, converted to nm) and its pixels square; else the ``pixel_size_nm`` its
    metadata holds (the plugin's reader records it; napari's *Split Stack* keeps it there).

    The scale comes first: it is what the user sees and may have corrected. None where neither says
    a length: napari's default unit ("pixel") without metadata, or unequal y and x scales
    (:func:`layer_scale_problem` says why).
    """
    per_nm = _nm_per_unit(layer)
    if per_nm is not None:
        sy, sx = _scale_yx(layer)
        return sx * per_nm if _square(sy, sx) else None
    value = (getattr(layer, "metadata", {}) or {}).get("pixel_size_nm")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def layer_scale_problem(layer) -> str | None:
    """Why a layer calibrated in a length unit gives no pixel size (its pixels are not square), or None."""
    if _nm_per_unit(layer) is None:
        return None
    sy, sx = _scale_yx(layer)
    if not _square(sy, sx):
        return f"layer {layer.name!r} has pixels of {sy:g} x {sx:g} {_units(layer)[-1]} (y x): not square"
    return None


def length_per_pixel(layer) -> float:
    """The layer's length (in its own units) of one pixel's side: for pixels that are not square, the side of
    the square of equal area, so that a circle's diameter typed in the layer's units is its equal-area diameter
    in pixels."""
    sy, sx = _scale_yx(layer)
    return sx if _square(sy, sx) else math.sqrt(sy * sx)


def _scale_yx(layer) -> tuple[float, float]:
    return tuple(abs(float(v)) for v in tuple(layer.scale)[-2:])


def _square(sy: float, sx: float) -> bool:
    return sx > 0 and abs(sy - sx) <= SQUARE_PIXEL_TOLERANCE * sx


def _units(layer) -> tuple:
    units = getattr(layer, "units", None)
    return tuple(units)[-2:] if units is not None else ("pixel", "pixel")


def _nm_per_unit(layer) -> float | None:
    """nm per unit of the layer's y and x axes, where both are the same length unit; else None."""
    from ..io.metadata import to_nm

    y, x = _units(layer)
    if str(y) != str(x):
        return None
    try:
        return to_nm(1.0, str(x))  # the usual units, exactly (a power of ten)
    except ValueError:
        pass
    if str(getattr(x, "dimensionality", "")) != "[length]":  # "pixel", time, or a unit pint does not know
        return None
    return float(x._REGISTRY.Quantity(1.0, x).to("nanometer").magnitude)  # any other length (pint)


def compact_labels(labels: np.ndarray) -> np.ndarray:
    """Labels as uint16 where they fit, else uint32: napari draws uint16 labels several times faster than
    uint32, and uint16 leaves room for particles painted by hand (uint8 would hold 255 labels in all)."""
    top = int(labels.max()) if labels.size else 0
    return labels.astype(np.uint16 if top < 2**16 else np.uint32, copy=False)


def add_labels_in_two_turns(viewer, data: np.ndarray, **kwargs):
    """``viewer.add_labels`` in two turns of the event loop: the layer is added hidden (its model and node) and
    shown in the next turn (its texture), so the window keeps answering in between."""
    from qtpy.QtCore import QTimer

    visible = kwargs.pop("visible", True)
    layer = viewer.add_labels(compact_labels(data), visible=False, **kwargs)
    if visible:
        QTimer.singleShot(0, lambda: setattr(layer, "visible", True))
    return layer
