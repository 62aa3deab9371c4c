"""Layer pickers that follow the viewer's layers and start on the newest layer that fits."""

from __future__ import annotations

from typing import Callable


def layer_shape(layer) -> tuple[int, ...]:
    """A layer's shape in pixels (its largest level's; colour channels left out), read without loading the pixels."""
    return tuple(int(n) for n in layer.level_shapes[0])


def is_2d(layer) -> bool:
    """Whether a layer is one 2D picture (grey, labels, or RGB), not a stack."""
    return layer.ndim == 2


def is_image_of(image, labels, viewer, fits: Callable[[object], bool] = is_2d) -> bool:
    """Whether ``image`` is the image of ``labels`` for a picker to start on: the layer they were segmented
    from (their ``source_layer``) when it is open, else the only open image that ``fits`` and has their size
    (with two or more, none: a wrong guess would pair or calibrate them silently)."""
    if labels is None or not fits(image):
        return False
    source = (labels.metadata or {}).get("source_layer")
    if source and source in viewer.layers:
        return image.name == source
    same = [layer for layer in viewer.layers if getattr(layer, "_type_string", "") == "image" and fits(layer)
            and layer_shape(layer) == layer_shape(labels)]
    return len(same) == 1 and same[0] is image


class LayerChoice:
    """Keeps a magicgui layer picker's choices in step with the viewer, and a fitting layer chosen while
    the user has chosen none.

    A picker nobody has chosen in shows the top-most layer that ``fits`` (the most recently added,
    unless the layers were reordered): when the panel opens, when a layer is added (the image just
    opened, the labels just segmented: what a user goes on to work on; not a synthetic image or mask
    a panel made), when the layer it showed
    leaves the viewer, and when it is empty, or shows a layer that no longer fits, and
    :meth:`refresh` is called (a panel calls it when what fits changes). A layer the user chose
    stays chosen, whatever is added; so does "nothing" chosen in an optional picker.
    """

    def __init__(self, viewer, picker, fits: Callable[[object], bool] | None = None):
        self.viewer, self.picker = viewer, picker
        self.fits = fits or (lambda layer: True)
        self.user_chose = False
        self._updating = False
        picker.changed.connect(self._changed)
        # a choice of the layer already shown is a choice too (Qt's "activated": every choice the user makes)
        picker.native.activated.connect(self._chosen)
        viewer.layers.events.inserted.connect(self._inserted)
        viewer.layers.events.removed.connect(self.refresh)
        self.refresh(fresh=True)

    def _chosen(self, *_):
        self.user_chose = True

    def forget_choice(self) -> None:
        """Follow the newest fitting layer again, as if the user had chosen none."""
        self.user_chose = False
        self.refresh(fresh=True)

    def _inserted(self, event):
        """A layer added: shown where it fits and nobody has chosen; a panel's own output (a synthetic image or
        its mask, ``metadata["generator"]``) is offered, not shown: it is no layer the user opened or made."""
        self.refresh(fresh=not _made_by_a_panel(getattr(event, "value", None)))

    def _changed(self, *_):
        if not self._updating:
            self.user_chose = True

    def _fitting(self) -> list:
        return [layer for layer in self.picker.choices if layer is not None and self.fits(layer)]

    def refresh(self, *_, fresh: bool = False) -> None:
        """Current choices; the top-most fitting layer where the user has chosen nothing (see the class)."""
        self._updating = True
        try:
            before = self.picker.value
            self.picker.reset_choices()
            value = self.picker.value
            if before is not None and value is not before:  # the layer shown left the viewer
                self.user_chose, fresh = False, True
            if self.user_chose or not (fresh or value is None or not self.fits(value)):
                return
            fitting = self._fitting()
            opened = [layer for layer in fitting if not _made_by_a_panel(layer)]
            if fitting:  # the top-most; one the user opened or made before a panel's synthetic output
                self.picker.value = (opened or fitting)[-1]
            elif value is not None and None in self.picker.choices:  # an optional picker: nothing, not a misfit
                self.picker.value = None
        finally:
            self._updating = False


def _made_by_a_panel(layer) -> bool:
    """A synthetic image or its mask (Synthesize records its generator in their metadata)."""
    return "generator" in (getattr(layer, "metadata", None) or {})


def image_follows_labels(viewer, labels_picker, image_choice: "LayerChoice") -> None:
    """Keep an image picker on the image of the labels chosen: when the labels change to ones that name another
    open layer as their source (segmented from it, or a mask of its file), the image the user chose before is
    dropped for that one, so that no pair is made, nor intensities read, from the wrong image."""

    def changed(*_):
        labels, image = labels_picker.value, image_choice.picker.value
        source = (getattr(labels, "metadata", None) or {}).get("source_layer")
        if source and source in viewer.layers and (image is None or image.name != source):
            image_choice.forget_choice()
        else:
            image_choice.refresh()

    labels_picker.changed.connect(changed)
