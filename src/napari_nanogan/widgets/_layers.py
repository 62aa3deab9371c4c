"""Layers: a layer's pixel size in nm, and result layers as napari draws them fastest."""

from __future__ import annotations

import numpy as np

#: Relative difference under which a layer's y and x scales count as one square pixel.
SQUARE_PIXEL_TOLERANCE = 1e-6


def layer_pixel_size_nm(layer) -> float | None:
    """Pixel size in nm of a napari layer: its metadata's ``pixel_size_nm``, else its scale when its
    units are lengths (nm, µm, Å, ...: napari's units, converted exactly) and its pixels square.

    None where it says no length: napari's default unit ("pixel"), or unequal y and x scales
    (:func:`layer_scale_problem` says why).
    """
    meta = getattr(layer, "metadata", {}) or {}
    if meta.get("pixel_size_nm"):
        return float(meta["pixel_size_nm"])
    per_nm = _nm_per_unit(layer)
    if per_nm is None:
        return None
    sy, sx = (abs(float(v)) for v in tuple(layer.scale)[-2:])
    if sx <= 0 or abs(sy - sx) > SQUARE_PIXEL_TOLERANCE * sx:
        return None
    return sx * per_nm


def layer_scale_problem(layer) -> str | None:
    """Why a layer calibrated in a length unit gives no pixel size (its pixels are not square), or None."""
    if getattr(layer, "metadata", {}).get("pixel_size_nm") or _nm_per_unit(layer) is None:
        return None
    sy, sx = (abs(float(v)) for v in tuple(layer.scale)[-2:])
    if sx <= 0 or abs(sy - sx) > SQUARE_PIXEL_TOLERANCE * sx:
        return f"layer {layer.name!r} has pixels of {sy:g} x {sx:g} {_unit_names(layer)[-1]} (y x): not square"
    return None


def _unit_names(layer) -> tuple[str, ...]:
    units = getattr(layer, "units", None)
    return tuple(str(u) for u in tuple(units)[-2:]) if units is not None else ("pixel", "pixel")


def _nm_per_unit(layer) -> float | None:
    """nm per unit of the layer's y and x axes, where both are the same length unit; else None."""
    from ..io.metadata import to_nm

    y, x = _unit_names(layer)
    if y != x:
        return None
    try:
        return to_nm(1.0, x)
    except ValueError:  # "pixel", or a unit that is not a length
        return None


def compact_labels(labels: np.ndarray) -> np.ndarray:
    """Labels in the smallest unsigned type that holds them: napari draws uint8/uint16 labels several times faster."""
    top = int(labels.max()) if labels.size else 0
    dtype = np.uint8 if top < 2**8 else np.uint16 if top < 2**16 else np.uint32
    return labels.astype(dtype, copy=False)


def add_labels_in_two_turns(viewer, data: np.ndarray, **kwargs):
    """``viewer.add_labels`` in two turns of the event loop: the layer is added hidden (its model and node) and
    shown in the next turn (its texture), so the window keeps answering in between."""
    from qtpy.QtCore import QTimer

    visible = kwargs.pop("visible", True)
    layer = viewer.add_labels(compact_labels(data), visible=False, **kwargs)
    if visible:
        QTimer.singleShot(0, lambda: setattr(layer, "visible", True))
    return layer
