"""Choosing (Image layer, Labels layer) pairs the user annotated: shared by the
fine-tune and export panels."""

from __future__ import annotations

from typing import Callable

import numpy as np
from magicgui.widgets import Container, PushButton, create_widget
from qtpy.QtWidgets import QListWidget, QVBoxLayout, QWidget

from ._pickers import LayerChoice, image_follows_labels, is_2d, is_image_of


def check_pair(image_layer, labels_layer) -> None:
    """Raise ValueError with a clear message when a pair cannot be used."""
    from ._layers import layer_data

    image = layer_data(image_layer)
    labels = layer_data(labels_layer)
    if image_layer.rgb:
        raise ValueError(f"{image_layer.name!r} is RGB: convert it to grey first (Image > Convert, or open the grey original)")
    if image.ndim != 2:
        raise ValueError(f"{image_layer.name!r} has {image.ndim} dimensions; use 2D images")
    if labels.ndim != 2:
        raise ValueError(f"{labels_layer.name!r} has {labels.ndim} dimensions; use 2D masks")
    if image.shape != labels.shape:
        raise ValueError(f"{image_layer.name!r} {image.shape} and {labels_layer.name!r} {labels.shape} differ in shape")
    if np.issubdtype(image.dtype, np.inexact) and not np.isfinite(image).all():
        raise ValueError(f"{image_layer.name!r} holds NaN or infinite values; replace them with grey levels first")
    if labels.max() == 0:
        raise ValueError(f"{labels_layer.name!r} is empty: paint some particles first")
    source = (labels_layer.metadata or {}).get("source_layer")
    if source and source != image_layer.name:  # segmented from, or named for, another image: a pair of two fields
        raise ValueError(f"{labels_layer.name!r} belongs to the image {source!r} (it was segmented from it, or is "
                         f"named for its file), not to {image_layer.name!r}: choose or open {source!r} (renamed? "
                         "give it that name back)")


def samples_from_pairs(pairs, *, crop_info_bar: bool = True):
    """Training samples (info bar cropped when found) from (Image layer, Labels layer) pairs."""
    from ..data.datasets import sample_from_arrays
    from ._layers import layer_data

    return [sample_from_arrays(image_layer.name, layer_data(image_layer), layer_data(labels_layer),
                               domain="user", crop_info_bar=crop_info_bar) for image_layer, labels_layer in pairs]


class PairPicker(QWidget):
    """Two layer choosers, Add / Remove buttons and the list of chosen pairs.

    ``pairs`` holds the (Image layer, Labels layer) tuples; ``on_error(message)``
    receives the reason a pair was refused.
    """

    def __init__(self, viewer, on_error: Callable[[str], None]):
        super().__init__()
        self.viewer = viewer
        self.on_error = on_error
        self.image_layer = create_widget(annotation="napari.layers.Image", label="image")
        self.labels_layer = create_widget(annotation="napari.layers.Labels", label="its labels")
        self.add_button = PushButton(text="Add pair")
        self.remove_button = PushButton(text="Remove selected pair")
        self.pair_list = QListWidget()
        self.pair_list.setMaximumHeight(90)
        self.pairs: list[tuple] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(Container(widgets=[self.image_layer, self.labels_layer, self.add_button, self.remove_button]).native)
        layout.addWidget(self.pair_list)
        self.add_button.changed.connect(self.add_pair)
        self.remove_button.changed.connect(self.remove_pair)
        # the choices kept current; until the user chooses, the newest 2D labels and their image
        self.labels_choice = LayerChoice(viewer, self.labels_layer, fits=is_2d)
        self.image_choice = LayerChoice(viewer, self.image_layer, fits=self._image_fits)
        image_follows_labels(viewer, self.labels_layer, self.image_choice)
        viewer.layers.events.removed.connect(self._forget_removed)

    def _image_fits(self, image) -> bool:
        """Whether the image picker starts on ``image`` for the chosen labels: their source, or the only 2D
        grey image of their size (:func:`is_image_of`)."""
        return is_image_of(image, self.labels_layer.value, self.viewer, fits=lambda layer: is_2d(layer) and not layer.rgb)

    def add_pair(self, *_) -> bool:
        image, labels = self.image_layer.value, self.labels_layer.value
        if image is None or labels is None:
            self.on_error("choose an image and its labels layer.")
            return False
        try:
            check_pair(image, labels)
        except ValueError as exc:
            self.on_error(str(exc))
            return False
        if any(p[0] is image and p[1] is labels for p in self.pairs):
            return False
        self.pairs.append((image, labels))
        self.pair_list.addItem(f"{image.name}  ↔  {labels.name}")
        return True

    def remove_pair(self, *_):
        row = self.pair_list.currentRow()
        if 0 <= row < len(self.pairs):
            self.pairs.pop(row)
            self.pair_list.takeItem(row)

    def _forget_removed(self, event):
        """A pair whose layer left the viewer leaves the list too."""
        for row in reversed(range(len(self.pairs))):
            if event.value in self.pairs[row]:
                self.pairs.pop(row)
                self.pair_list.takeItem(row)
