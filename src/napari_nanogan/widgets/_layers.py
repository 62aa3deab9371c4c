"""Layers: a layer's pixels read whole, and result layers as napari draws them fastest (a layer's pixel size
in nm: :mod:`napari_nanogan._napari`, which napari's writer shares)."""

from __future__ import annotations

import math

import numpy as np

from .._napari import layer_pixel_size_nm, layer_scale_problem, length_per_pixel  # noqa: F401 (the panels' names)


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
