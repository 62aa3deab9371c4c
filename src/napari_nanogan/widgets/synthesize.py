"""The "Synthesize SEM images" dock widget: masks (painted, loaded or designed) -> N styled images."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import (ComboBox, Container, FileEdit, FloatSpinBox, PushButton, SpinBox,
                              create_widget)
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QProgressBar, QWidget
from superqt import QCollapsible

from ..config import MaskDesign
from ..data.designer import design_mask, fit_design
from ._labels import exact_value, scrolling_layout, wrapping_label
from ._layers import compact_labels
from ._pickers import LayerChoice, is_2d
from ._run import Job

if TYPE_CHECKING:
    import napari

SOURCES = ("Labels layer", "mask file", "designer")


def _synthesize_job(mask: np.ndarray, model: str, n: int, seed: int):
    """Worker thread: load the generator, then yield ``(k, n, image)`` as each image is made."""
    from ..synthesis import load_generator, mask_maps, synthesis_seed, synthesize

    mask_maps(mask)  # validate before loading anything
    generator = load_generator(model)
    for k in range(n):
        yield k + 1, n, synthesize(mask, generator, seed=synthesis_seed(seed, k))


class SynthesizeWidget(QWidget):
    """Turn a particle mask into realistic SEM images, each with its exact mask beside it."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer"):
        super().__init__()
        self._geometry = {}
        from ..models.registry import available_models, on_models_changed

        self.viewer = napari_viewer
        self.source = ComboBox(label="mask from", choices=list(SOURCES), value="designer")
        self.labels_layer = create_widget(annotation="typing.Optional[napari.layers.Labels]", label="labels layer")
        self.mask_file = FileEdit(label="mask file", mode="r", filter="*.tif *.tiff *.png")
        self.mask_pixel_size = FloatSpinBox(label="pixel size (nm, 0 = unknown)", value=0.0, min=0.0, max=1e6, step=0.001,
                                            tooltip="the mask file's own when its TIFF records one; type it for a "
                                                    "file without (a PNG): the images are then scaled in nm")
        d = MaskDesign()
        self.width = SpinBox(label="width (px)", value=d.width, min=16, max=8192)
        self.height = SpinBox(label="height (px)", value=d.height, min=16, max=8192)
        self.pixel_size = FloatSpinBox(label="pixel size (nm)", value=d.pixel_size_nm, min=0.003, max=1e5, step=0.001)
        self.median_nm = FloatSpinBox(label="median size (nm)", value=d.median_nm, min=0.1, max=1e6)
        self.sigma = FloatSpinBox(label="size spread (σ of ln d)", value=d.sigma, min=0.0, max=1.5, step=0.05)
        self.amount = ComboBox(label="amount by", choices=["particle count", "area coverage"], value="particle count")
        self.count = SpinBox(label="particles", value=d.count, min=1, max=100_000)
        self.coverage = FloatSpinBox(label="coverage (area fraction)", value=d.coverage, min=0.01, max=0.8, step=0.05)
        self.elongation = FloatSpinBox(label="elongation", value=d.elongation, min=0.0, max=0.8, step=0.05)
        self.facets = SpinBox(label="facets (0 = round)", value=d.facets, min=0, max=12,
                              tooltip="0: smooth elliptical outlines; 3 or more: faceted polygons with that many sides")
        self.clustering = FloatSpinBox(label="agglomeration", value=d.clustering, min=0.0, max=1.0, step=0.1,
                                       tooltip="0: dispersed; 1: every particle touches an earlier one")
        self.overlap = FloatSpinBox(label="overlap (hidden fraction)", value=d.overlap, min=0.0, max=0.9, step=0.1,
                                    tooltip="largest fraction of a particle that may lie behind its neighbours (0: whole particles)")
        self.fit_layer = create_widget(annotation="typing.Optional[napari.layers.Labels]", label="annotated layer",
                                       options={"tooltip": "fit the sizes and amount to the particles of this layer"})
        self.fit_button = PushButton(text="Fit designer to the annotated layer")
        self.model = ComboBox(label="generator", choices=lambda *_: available_models("generator") or ["default"],
                              tooltip="default: TiO2-like SEM (bright particles on a dark substrate); tem: bright-field "
                                      "TEM (dark particles on a bright background); or a model you fine-tuned")
        on_models_changed(self.model.reset_choices)  # a fine-tuned model appears here at once
        self.n = SpinBox(label="images (styles)", value=3, min=1, max=64)
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self.run_button = PushButton(text="Synthesize")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = wrapping_label("")
        # the designer: the essentials shown, shape and arrangement (and fitting) folded away, so the
        # panel fits a 1000-px screen
        self.designer = Container(widgets=[self.width, self.height, self.pixel_size, self.median_nm, self.amount,
                                           self.count, self.coverage], label="designer")
        self.designer_more = QCollapsible("shape, spread, agglomeration; fit to annotated particles")
        self.designer_more.addWidget(Container(widgets=[self.sigma, self.elongation, self.facets, self.clustering,
                                                        self.overlap, self.fit_layer, self.fit_button]).native)
        self.controls = Container(widgets=[self.source, self.labels_layer, self.mask_file, self.mask_pixel_size,
                                           self.designer])
        self.run_controls = Container(widgets=[self.model, self.n, self.seed, self.run_button, self.cancel_button,
                                               self.status])
        self.progress = QProgressBar()
        layout = scrolling_layout(self)
        layout.addWidget(self.controls.native)
        layout.addWidget(self.designer_more)
        layout.addWidget(self.run_controls.native)
        layout.addWidget(self.progress)
        layout.addStretch(1)
        self.job = Job("Synthesize", progress=self.progress, status=self.status, run_button=self.run_button,
                       cancel_button=self.cancel_button)
        self.run_button.changed.connect(self.run)
        self.fit_button.changed.connect(self.fit_to_layer)
        self.source.changed.connect(self._show_source)
        self._own_mask_pixel = 0.0  # the chosen mask file's own pixel size, unrounded
        self.mask_file.changed.connect(self._mask_file_chosen)
        self.amount.changed.connect(self._show_source)
        # the choices kept current, the newest 2D labels chosen until the user chooses
        self.labels_choice = LayerChoice(self.viewer, self.labels_layer, fits=is_2d)
        self.fit_choice = LayerChoice(self.viewer, self.fit_layer, fits=is_2d)
        self._show_source()

    def _show_source(self, *_):
        src = self.source.value
        self.labels_layer.visible = src == "Labels layer"
        self.mask_file.visible = self.mask_pixel_size.visible = src == "mask file"
        self.designer.visible = src == "designer"
        self.designer_more.setVisible(src == "designer")
        by_count = self.amount.value == "particle count"
        self.count.visible, self.coverage.visible = by_count, not by_count

    def _mask_file_chosen(self, *_):
        """Show the chosen mask file's own pixel size, 0 for a file without one: a value typed for another
        file is not used for this one unseen. The field shows it rounded; :meth:`run` uses it exactly."""
        from ..io.images import ImageReadError
        from ..io.masks import mask_pixel_size_nm

        path, own = self.mask_file.value, None
        if path and path.is_file():
            try:
                own = mask_pixel_size_nm(path)
            except ImageReadError:
                own = None  # an unreadable file: said when synthesizing from it
        self._own_mask_pixel = float(own or 0.0)
        self.mask_pixel_size.value = self._own_mask_pixel

    def _mask_pixel_size_nm(self) -> float | None:
        """The pixel size field's value (None for 0); the file's own, unrounded, while the field still shows it."""
        return exact_value(self.mask_pixel_size, self._own_mask_pixel) or None

    def design(self) -> MaskDesign:
        return MaskDesign(height=int(self.height.value), width=int(self.width.value), pixel_size_nm=float(self.pixel_size.value),
                          median_nm=float(self.median_nm.value), sigma=float(self.sigma.value),
                          count=int(self.count.value) if self.amount.value == "particle count" else None,
                          coverage=float(self.coverage.value), elongation=float(self.elongation.value),
                          facets=int(self.facets.value), clustering=float(self.clustering.value),
                          overlap=float(self.overlap.value), seed=int(self.seed.value))

    def fit_to_layer(self, *_):
        from ._layers import layer_data, layer_pixel_size_nm

        layer = self.fit_layer.value
        if layer is None:
            show_error("Synthesize: choose an annotated Labels layer to fit the designer to.")
            return
        pixel = layer_pixel_size_nm(layer) or float(self.pixel_size.value)
        try:
            d = fit_design(layer_data(layer), pixel)
        except ValueError as exc:
            show_error(f"Synthesize: {exc}")
            return
        self.height.value, self.width.value, self.pixel_size.value = d.height, d.width, d.pixel_size_nm
        self.median_nm.value, self.sigma.value, self.count.value, self.elongation.value = d.median_nm, d.sigma, d.count, d.elongation
        self.coverage.value = min(max(d.coverage, 0.01), 0.8)
        self.status.value = f"fitted: median {d.median_nm:.0f} nm, σ {d.sigma:.2f}, {d.count} particles"

    def _mask(self) -> tuple[np.ndarray, float | None, str]:
        from ..io.masks import read_mask
        from ._layers import layer_data, layer_pixel_size_nm

        self._geometry = {}  # a Labels layer's own scale and units, where they give no pixel size in nm
        src = self.source.value
        if src == "Labels layer":
            layer = self.labels_layer.value
            if layer is None:
                raise ValueError("choose a Labels layer (paint one with napari's brush, or segment an image)")
            data = layer_data(layer)
            if data.ndim != 2:
                raise ValueError(f"the Labels layer {layer.name!r} is {data.ndim}D; synthesize from a 2D mask")
            pixel = layer_pixel_size_nm(layer)
            if pixel is None and tuple(layer.scale[-2:]) != (1.0, 1.0):  # (pixels not square, or not a length):
                self._geometry = {"scale": tuple(layer.scale[-2:]), "units": tuple(layer.units[-2:])}  # kept as is
            return data, pixel, layer.name
        if src == "mask file":
            path = self.mask_file.value
            if not path or not path.is_file():
                raise ValueError("choose a mask file")
            return read_mask(path), self._mask_pixel_size_nm(), path.stem
        design = self.design()
        if design.facets in (1, 2):
            raise ValueError("facets: 0 for round particles, or 3 and more sides")
        return design_mask(design), design.pixel_size_nm, f"designed (seed {design.seed})"

    def run(self):
        if self.job.running:  # (the Run button is disabled meanwhile; a second call is not a second run)
            return
        from ..io.masks import check_mask

        try:
            mask, pixel, name = self._mask()
            try:
                labels = check_mask(mask)  # (negative, fractional ... refused before any work)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        except (ValueError, OSError) as exc:
            show_error(self.job.refused(str(exc)))
            return
        self._job_mask, self._made = (compact_labels(labels), pixel, name), 0
        self._meta = {"pixel_size_nm": pixel, "generator": self.model.value, "seed": int(self.seed.value), "mask": name}
        self.job.start(_synthesize_job, mask, self.model.value, int(self.n.value), int(self.seed.value),
                       describe=lambda r: (r[0], r[1], f"image {r[0]} / {r[1]}"), on_record=self._add_image,
                       on_result=lambda _: self._done(), busy="loading the generator ...",
                       on_cancelled=lambda: f"{self._made} image{'' if self._made == 1 else 's'} kept")

    def cancel(self):
        self.job.cancel()

    def _layer_kwargs(self) -> dict:
        _, pixel, _ = self._job_mask
        return {"scale": (pixel, pixel), "units": ("nm", "nm")} if pixel else dict(self._geometry)

    def _add_image(self, record):
        """Each image joins the viewer as it is made (so Cancel keeps them), the mask with the first."""
        k, _, image = record
        labels, _, name = self._job_mask
        if self._made == 0:
            mask_name = f"synthetic {name}" if name.lower().endswith("mask") else f"synthetic {name} mask"
            self.viewer.add_labels(labels, name=mask_name, metadata=self._meta, **self._layer_kwargs())
        self.viewer.add_image(image, name=f"synthetic {name} #{k - 1}", metadata=dict(self._meta, k=k - 1),
                              **self._layer_kwargs())
        self._made = k

    def _done(self):
        from ..segmentation.wording import plural

        labels, _, name = self._job_mask
        empty = "" if labels.max() else " (the mask holds no particle: bare substrate only)"
        self.status.value = f"{plural(self._made, 'image')} from {name}{empty}"
        show_info(f"Synthesize: {self.status.value}")
