"""Result layers as napari draws them fastest."""

from __future__ import annotations

import numpy as np


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
