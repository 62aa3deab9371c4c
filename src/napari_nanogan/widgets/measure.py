"""The "Measure particles" dock widget: per-particle table on the Labels layer, histogram, CSV export."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, PushButton, create_widget
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QFileDialog, QProgressBar, QWidget

from ..io.masks import looks_inverted, still_scored
from ..measure import (LOGNORMAL_POOR_P, PLOT_LENGTHS, PLOT_NAMES, Measurements, bin_edges, column_and_unit,
                       drop_doubtful, has_confidence, lognormal_curve, measure_particles, summarize_sizes,
                       write_summary_csv, write_table_csv)
from ._labels import exact_value, scrolling_layout, wrapping_label
from ._layers import layer_pixel_size_nm, layer_scale_problem
from ._pickers import LayerChoice, image_follows_labels, is_2d, is_image_of
from ._plots import theme_colours, themed_axes
from ._run import Job

if TYPE_CHECKING:
    import napari

MEASURES = ("ecd", "feret_max", "feret_min", "area", "perimeter", "circularity", "aspect_ratio", "solidity")


def layer_confidence(layer) -> np.ndarray | None:
    """The per-label confidence a segmentation left in a Labels layer's features (index k - 1 for label k), or None."""
    features = getattr(layer, "features", None)
    if features is None or "confidence" not in features or "index" not in features or not len(features):
        return None
    index = np.asarray(features["index"], int)
    out = np.full(max(int(index.max()), 0), np.nan, np.float32)
    keep = index > 0
    out[index[keep] - 1] = np.asarray(features["confidence"], float)[keep]
    return out


def _measure_job(labels, *, confidence=None, scored=None, **options):
    """Worker thread: the particle table, and whether the mask looks inverted (:func:`~napari_nanogan.io.masks.
    looks_inverted`; a generator, as every panel job); ``scored``: :func:`~napari_nanogan.io.masks.still_scored`."""
    yield 0, 1
    table = measure_particles(labels, confidence=still_scored(confidence, labels, scored), **options)
    return table, looks_inverted(labels)


#: The sizes' names in the summary's share under 100 nm (of the chosen size, by number).
SIZE_WORDS = {"ecd": "equivalent-circle diameter", "feret_max": "max Feret diameter", "feret_min": "min Feret diameter"}


class MeasureWidget(QWidget):
    """Measure the particles of a Labels layer: features table, size histogram, summary, CSV."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer"):
        super().__init__()
        from .._napari import prefer_this_reader

        prefer_this_reader()  # the user's next TIFF or PNG opens with its pixel size, not in napari's own reader
        self.viewer = napari_viewer
        self.labels_layer = create_widget(annotation="napari.layers.Labels", label="labels")
        self.image_layer = create_widget(annotation="typing.Optional[napari.layers.Image]", label="image (optional)")
        self.pixel_size = FloatSpinBox(label="pixel size (nm, 0 = from layer)", value=0.0, min=0.0, max=1e6, step=0.001)
        self.measure = ComboBox(label="histogram of", choices=list(MEASURES), value="ecd")
        self.include_cut = CheckBox(label="include particles cut by border / info bar", value=False)
        self.min_confidence = FloatSpinBox(label="min confidence (0 = all)", value=0.0, min=0.0, max=1.0, step=0.05,
                                           tooltip="Leave out of the histogram, the summary, the CSV and the plot the "
                                                   "particles whose confidence (the probability that a particle is "
                                                   "real, from Segment) is under this. At 0.8, 97-98 % of the "
                                                   "particles kept were real on unfamiliar test images.")
        self.run_button = PushButton(text="Measure")
        self.export_button = PushButton(text="Export CSV ...", enabled=False)
        self.plot_button = PushButton(text="Save plot ...", enabled=False)
        self.summary = wrapping_label("")
        self.controls = Container(widgets=[self.labels_layer, self.image_layer, self.pixel_size, self.measure,
                                           self.include_cut, self.min_confidence, self.run_button, self.export_button, self.plot_button,
                                           self.summary])
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(4, 3), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(220)
        layout = scrolling_layout(self)
        layout.addWidget(self.controls.native)
        layout.addWidget(self.canvas)
        self.table: Measurements | None = None
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        layout.insertWidget(1, self.progress)
        self.cancel_button = PushButton(text="Cancel", enabled=False, visible=False)
        self.job = Job("Measure particles", progress=self.progress, status=self.summary, run_button=self.run_button,
                       cancel_button=self.cancel_button)
        self.run_button.changed.connect(self.run)
        self.export_button.changed.connect(self._export_dialog)
        self.plot_button.changed.connect(self._plot_dialog)
        self.measure.changed.connect(self._plot)
        self.include_cut.changed.connect(self._plot)
        self.min_confidence.changed.connect(self._plot)
        self.labels_layer.changed.connect(self._plot)  # (says when the results shown are of another layer)
        self._own_pixel, self._filled_for = 0.0, None  # the layers' own pixel size, and the labels it is of
        self.labels_layer.changed.connect(self._layers_chosen)
        self.image_layer.changed.connect(self._layers_chosen)
        # the choices kept current; until the user chooses, the newest 2D labels and the image they were made from
        self.labels_choice = LayerChoice(self.viewer, self.labels_layer, fits=is_2d)
        self.image_choice = LayerChoice(self.viewer, self.image_layer, fits=self._image_fits)
        image_follows_labels(self.viewer, self.labels_layer, self.image_choice)
        self._layers_chosen()

    def _image_fits(self, image) -> bool:
        """Whether the image picker starts on ``image`` for the chosen labels (:func:`is_image_of`)."""
        return is_image_of(image, self.labels_layer.value, self.viewer)

    def _layers_chosen(self, *_):
        """Show the chosen layers' own pixel size, so that a value typed for another layer is not
        used for this one unseen: 0 for a labels layer without one. Choosing another image
        changes the field only while it shows the layers' own value, not one typed. The field
        shows it rounded; :meth:`run` uses it exactly."""
        layer, image_layer = self.labels_layer.value, self.image_layer.value
        own = (layer is not None and layer_pixel_size_nm(layer)) or (image_layer is not None
                                                                    and layer_pixel_size_nm(image_layer))
        typed = self._pixel_size_nm() != self._own_pixel
        if layer is not self._filled_for or not typed:
            self._own_pixel = float(own or 0.0)
            self.pixel_size.value = self._own_pixel
        self._filled_for = layer

    def _pixel_size_nm(self) -> float:
        """The field's value; the layer's own, unrounded, while the field still shows it."""
        return exact_value(self.pixel_size, self._own_pixel)

    def run(self):
        """Measure the chosen Labels layer in a worker thread; features, plot and summary follow."""
        if self.job.running:  # (the Run button is disabled meanwhile; a second call is not a second run)
            return
        layer = self.labels_layer.value
        if layer is None:
            show_error(self.job.refused("choose a Labels layer (segment an image first)."))
            return
        self._layers_chosen()  # the layers' own pixel size as it is now (a scale bar may have set it since)
        from ._layers import layer_data

        try:
            labels = layer_data(layer)
        except ValueError as exc:
            show_error(self.job.refused(f"{exc}."))
            return
        if labels.ndim != 2:
            show_error(self.job.refused(f"{layer.name!r} has {labels.ndim} dimensions; measure a 2D label image."))
            return
        image_layer = self.image_layer.value
        image = None
        if image_layer is not None:
            from ..io.images import as_grey

            try:
                image = layer_data(image_layer)
            except ValueError as exc:
                show_error(self.job.refused(f"{exc}."))
                return
            if getattr(image_layer, "rgb", False):
                image = as_grey(image)  # an RGB(A) picture: its grey levels give the intensities
            if image.shape != labels.shape:
                if image.ndim == 2:
                    why = (f"image {image_layer.name!r} is {image.shape[0]} x {image.shape[1]} pixels, labels "
                           f"{labels.shape[0]} x {labels.shape[1]}; choose the image they were made from.")
                else:
                    why = f"image {image_layer.name!r} has shape {image.shape}; choose a 2D image."
                show_error(self.job.refused(why))
                return
        pixel = self._pixel_size_nm() or layer_pixel_size_nm(layer) or (image_layer and layer_pixel_size_nm(image_layer))
        bar = (layer.metadata or {}).get("info_bar_rows") or (image_layer.metadata.get("info_bar_rows") if image_layer else None)
        self._layer, self._pixel = layer, pixel
        self._scale_problem = None if pixel else (layer_scale_problem(layer)
                                                  or (image_layer is not None and layer_scale_problem(image_layer)) or None)
        self.job.start(_measure_job, labels, image=image, pixel_size_nm=pixel or None,
                       info_bar_start=bar[0] if bar and bar[0] > 0 else None,  # a bottom bar; a top one starts at 0
                       info_bar_end=bar[1] if bar and bar[0] == 0 and bar[1] > 0 else None, name=layer.name,
                       confidence=layer_confidence(layer), scored=(layer.metadata or {}).get("label_areas"),
                       describe=lambda record: None, on_result=self._on_result,
                       busy=f"measuring {layer.name} ...")

    def _on_result(self, outcome):
        import pandas as pd

        table, inverted = outcome
        self.table = table
        # "index": the label each row describes (napari maps hovered label values through it)
        features = {"index": table.columns["label"]}
        features.update({k: v for k, v in table.columns.items() if k != "image"})
        self._layer.features = pd.DataFrame(features)
        self.export_button.enabled = True
        self.plot_button.enabled = len(table) > 0  # (no particles: no histogram to save)
        if not self._pixel:
            why = f" ({self._scale_problem})" if self._scale_problem else ""
            show_info(f"Measure particles: pixel size unknown{why}, lengths are in pixels. Enter it above to get nm.")
        if inverted:
            show_info(f"Measure particles: one particle of {self._layer.name!r} covers most of the image and reaches "
                      "every edge: is the mask inverted (particles 0, background 1 or 255)?")
        self._plot()

    def _column(self) -> str:
        return column_and_unit(self.table, self.measure.value)[0]

    def shown(self) -> tuple[Measurements, int]:
        """The measured table less its particles under *min confidence*, and how many those are."""
        return drop_doubtful(self.table, float(self.min_confidence.value))

    def _plot(self, *_):
        if self.table is None:
            return
        table, doubtful = self.shown()
        col = self._column()
        keep = np.ones(len(table), bool) if self.include_cut.value else table.included()
        values = table.columns[col][keep]
        ax = themed_axes(self.figure, self.viewer)
        accent = theme_colours(self.viewer)["accent"]
        if values.size:  # the bins, fit and axis name of the figure Save plot writes
            edges = bin_edges(values)
            ax.hist(values, bins=edges, color=accent, edgecolor=accent, alpha=0.85)
            if self.measure.value in PLOT_LENGTHS and (curve := lognormal_curve(values, edges)):
                ax.plot(*curve[:2], color="#e67e22", linewidth=1.5, label="log-normal fit")
        unit = column_and_unit(table, self.measure.value)[1]
        ax.set_xlabel(PLOT_NAMES[self.measure.value] + (f" ({unit})" if unit else ""))
        ax.set_ylabel("particles")
        ax.yaxis.get_major_locator().set_params(integer=True)  # counts: no 0.5 particle ticks
        if self.measure.value in ("ecd", "feret_max", "feret_min"):
            s = summarize_sizes(table, column=self.measure.value, include_cut=self.include_cut.value)
            if "D50" in s:
                for q, style, label in (("D10", ":", "D10, D90"), ("D50", "-", "D50"), ("D90", ":", None)):
                    ax.axvline(s[q], color="#d9534f", linestyle=style, linewidth=1, label=label)
                cut = int((~table.included()).sum())
                how = "included" if self.include_cut.value else "excluded"
                left = f", {doubtful} doubtful left out" if doubtful else ""
                if self.min_confidence.value and not has_confidence(table):
                    left = ", no confidence per particle: all kept"
                self.summary.value = (f"n = {s['count']} ({cut} cut, {how}{left})   mean {s['mean']:.4g} ± {s['sd']:.3g} {s['unit']}\n"
                                      f"D10 / D50 / D90 = {s['D10']:.4g} / {s['D50']:.4g} / {s['D90']:.4g} {s['unit']}"
                                      + (f"\nlog-normal fit: {s['geometric_mean']:.4g} {s['unit']}, σg {s['geometric_sd']:.3g}"
                                         if "geometric_mean" in s else "")
                                      + (f" (a poor fit: Shapiro-Wilk p = {s['lognormal_p']:.2g} on ln d)"
                                         if s.get("lognormal_p", 1) < LOGNORMAL_POOR_P else "")
                                      + (f"\n{SIZE_WORDS[self.measure.value]} under 100 nm: "
                                         f"{100 * s['fraction_below_100nm']:.1f} % by number" if s["unit"] == "nm" else ""))
            else:
                self.summary.value = "n = 0: no particles to size"
        else:
            unit = column_and_unit(table, self.measure.value)[1]
            self.summary.value = (f"n = {values.size}   median {np.median(values):.4g} {unit}".rstrip()
                                  if values.size else "no particles")
        measured, chosen = getattr(self, "_layer", None), self.labels_layer.value
        if measured is not None and chosen is not None and chosen is not measured:  # the results are of another layer
            self.summary.value = f"of {measured.name!r} (press Measure for {chosen.name!r}):\n{self.summary.value}"
        ax.set_title(self.table.columns["image"][0] if len(self.table) else "", fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            colours = theme_colours(self.viewer)
            ax.legend(fontsize=7, loc="upper right", facecolor=colours["background"], labelcolor=colours["foreground"])
        self.canvas.draw_idle()

    def export(self, path) -> None:
        """Write the particle table (less particles under *min confidence*) to ``path`` and the summary beside it
        (``<stem>_summary.csv``)."""
        if self.table is None:
            raise ValueError("nothing measured yet")
        path, table = Path(path), self.shown()[0]
        write_table_csv(path, [table])
        name = str(self.table.columns["image"][0]) if len(self.table) else ""
        write_summary_csv(path.with_name(path.stem + "_summary.csv"),
                          [(name, summarize_sizes(table, column=m)) for m in ("ecd", "feret_max", "feret_min")])

    def save_plot(self, path) -> Path:
        """The histogram shown, as a figure to publish (white ground, print resolution): PNG, SVG or PDF by suffix."""
        from ..measure import write_size_plot

        if self.table is None:
            raise ValueError("nothing measured yet")
        table, doubtful = self.shown()
        title = str(self.table.columns["image"][0]) if len(self.table) else None
        if doubtful:
            title = f"{title}: {doubtful} particles under confidence {self.min_confidence.value:g} left out"
        return write_size_plot(path, table, column=self.measure.value, include_cut=self.include_cut.value,
                               title=title)

    def _plot_dialog(self, *_):
        path, _ = QFileDialog.getSaveFileName(self, "Save the size distribution plot", f"{self.measure.value}.png",
                                              "Figures (*.png *.svg *.pdf)")
        if path and Path(path).suffix.lower() not in (".png", ".svg", ".pdf"):
            path += ".png"
        if path:
            try:
                show_info(f"Measure particles: wrote {self.save_plot(path)}")
            except (OSError, ValueError) as exc:
                show_error(f"Measure particles: {exc}")

    def _export_dialog(self, *_):
        path, _ = QFileDialog.getSaveFileName(self, "Export particle table", "particles.csv", "CSV (*.csv)")
        if path and Path(path).suffix.lower() != ".csv":  # a name typed without it ("results.v2" too)
            path += ".csv"
        if path:
            try:
                self.export(path)
                show_info(f"Measure particles: wrote {path}")
            except (OSError, ValueError) as exc:
                show_error(f"Measure particles: {exc}")
