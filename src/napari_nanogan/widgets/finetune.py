"""The "Fine-tune" dock widget: train on the user's annotated layers in one click.

Thin client of :func:`napari_nanogan.training.finetune.finetune`: it checks the
chosen layers, runs the loop in a worker thread, shows progress, time left and a
live loss plot, and saves the result as a named user model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, Container, FileEdit, LineEdit, PushButton, Select
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QMessageBox, QProgressBar, QWidget
from superqt import QCollapsible

from ..config import PRESETS
from ._labels import scrolling_layout, wrapping_label
from ._run import Job
from ._plots import theme_colours, themed_axes
from ._pairs import PairPicker, check_pair, samples_from_pairs

__all__ = ["FinetuneWidget", "check_pair"]

if TYPE_CHECKING:
    import napari


def confirm(parent, question: str) -> bool:
    """Ask yes/no in a modal dialog (tests replace this)."""
    answer = QMessageBox.question(parent, "napari-nanogan", question,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


class FinetuneWidget(QWidget):
    """Pick (image, labels) pairs, a preset and a name; press Fine-tune."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer"):
        super().__init__()
        self.viewer = napari_viewer
        self.picker = PairPicker(napari_viewer, on_error=lambda message: show_error(f"Fine-tune: {message}"))
        self.image_layer, self.labels_layer = self.picker.image_layer, self.picker.labels_layer
        self.pair_list, self.pairs = self.picker.pair_list, self.picker.pairs
        self.add_pair, self.remove_pair = self.picker.add_pair, self.picker.remove_pair
        self.unannotated = Select(label="unannotated images (optional)", choices=self._image_names)
        from ..models.registry import DEFAULT_SEGMENTER, available_models

        self.base = ComboBox(label="start from", choices=lambda *_: available_models("segmenter") or ["default"],
                             value=DEFAULT_SEGMENTER,
                             tooltip="the model you segment with (the Segment panel's): fine-tuning adapts the network "
                                     "it uses for your images, and scores both on your held-out rows")
        self.preset = ComboBox(label="preset", choices=list(PRESETS), value="quick")
        self.preset_note = wrapping_label(PRESETS["quick"].description)
        self.name = LineEdit(label="save as", value="my-model")
        self.run_button = PushButton(text="Fine-tune")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = wrapping_label("")
        self.result = wrapping_label("")
        # the user's models: card, delete, export (the lists of every panel follow)
        self.my_model = ComboBox(label="my models", choices=self._user_models)
        self.card = wrapping_label("")
        self.delete_button = PushButton(text="Delete model")
        self.export_to = FileEdit(label="export to folder", mode="d")
        self.export_button = PushButton(text="Export model")
        models_box = QCollapsible("my models: cards, delete, export")
        models_box.addWidget(Container(widgets=[self.my_model, self.card, self.delete_button, self.export_to,
                                                self.export_button]).native)
        self.more = QCollapsible("unannotated images (they help the longer presets' cycle GAN)")
        self.more.addWidget(Container(widgets=[self.unannotated]).native)
        bottom = Container(widgets=[self.base, self.preset, self.preset_note, self.name, self.run_button,
                                    self.cancel_button, self.status, self.result])
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(4, 2.4), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(150)
        self.progress = QProgressBar()
        layout = scrolling_layout(self)
        layout.addWidget(self.picker)
        layout.addWidget(self.more)
        layout.addWidget(bottom.native)
        layout.addWidget(self.progress)
        layout.addWidget(self.canvas)
        layout.addWidget(models_box)
        self.job = Job("Fine-tune", progress=self.progress, status=self.status, run_button=self.run_button,
                       cancel_button=self.cancel_button)
        self.history: dict[str, list] = {}
        self._plot()  # empty axes in the viewer's theme, not a white box, until training starts
        self.base_generator = "default"  # what the longer presets' cycle GAN starts from
        self.preset.changed.connect(lambda v: setattr(self.preset_note, "value", PRESETS[v].description))
        self.run_button.changed.connect(self.run)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(self.unannotated.reset_choices)
        from ..models.registry import on_models_changed

        self.my_model.changed.connect(self._show_card)
        self.delete_button.changed.connect(self.delete_model)
        self.export_button.changed.connect(self.export_model)
        on_models_changed(self.my_model.reset_choices)
        self._show_card()

    def _image_names(self, *_):
        return [layer.name for layer in self.viewer.layers if layer.__class__.__name__ == "Image"]

    @staticmethod
    def _user_models(*_):
        from ..models.registry import list_user_models

        return list_user_models()

    def _show_card(self, *_):
        from ..models.registry import model_card

        name = self.my_model.value
        self.delete_button.enabled = self.export_button.enabled = bool(name)
        if not name:
            self.card.value = "no fine-tuned models yet"
            return
        try:
            card = model_card(name)
        except (OSError, ValueError) as exc:
            self.card.value = f"unreadable: {exc}"
            return
        fmt = lambda s: f"IoU {s['iou']:.2f}, F1 {s['f1']:.2f}" if s else "?"  # noqa: E731
        sizes = card.get("size_calibration")
        changed = [k for a in card.get("amended", []) for k in a.get("changed", [])]
        if "-size_correction" in changed:  # a size model of its own replaced the calibrated shipped one
            sizes = None
        amended = sorted({k.lstrip("-") for k in changed})
        self.card.value = (f"{card.get('created', '?')[:10]}, {card.get('preset', '?')} preset, {card.get('steps', '?')} steps\n"
                           f"before {fmt(card.get('before'))} → after {fmt(card.get('after'))}"
                           + (f"\ndiameter estimates x {sizes['correction']:.2f}" if sizes else "")
                           + (f"\nchanged since ({', '.join(amended)}): the scores are of the model before"
                              if amended else ""))

    def delete_model(self, *_):
        from ..models.registry import delete_user_model

        name = self.my_model.value
        if not name or not confirm(self, f"Delete the model {name!r}? This cannot be undone."):
            return
        try:
            delete_user_model(name)
        except OSError as exc:
            show_error(f"Fine-tune: {exc}")
            return
        show_info(f"Fine-tune: deleted {name!r}")

    def export_model(self, *_):
        from ..models.registry import export_user_model

        name, folder = self.my_model.value, self.export_to.value
        if not name:
            return
        if not folder or str(folder) in ("", ".") or not folder.is_dir():  # "." is the field left empty
            show_error("Fine-tune: choose an existing folder to export the model to.")
            return
        try:
            dest = export_user_model(name, folder)
        except OSError as exc:
            show_error(f"Fine-tune: {exc}")
            return
        show_info(f"Fine-tune: exported {name!r} to {dest}")

    def run(self):
        if self.job.running:  # (the Run button is disabled meanwhile; a second call is not a second run)
            return
        from ..models.registry import check_name, user_model_path

        if not self.pairs:
            show_error(self.job.refused("add at least one (image, labels) pair you annotated."))
            return
        try:
            for image, labels in self.pairs:
                check_pair(image, labels)
            path = user_model_path(check_name(self.name.value))
        except ValueError as exc:
            show_error(self.job.refused(str(exc)))
            return
        if path.exists():
            show_error(self.job.refused(f"a model named {self.name.value!r} exists; choose another name or delete it."))
            return
        from ..data.datasets import sample_from_arrays
        from ..training.finetune import finetune
        from ._layers import layer_data

        try:
            pairs = samples_from_pairs(self.pairs)
            unannotated = []
            for name in self.unannotated.value:
                layer = self.viewer.layers[name]
                if layer.ndim == 2 and not getattr(layer, "rgb", False):
                    unannotated.append(sample_from_arrays(name, layer_data(layer), None, domain="images",
                                                          crop_info_bar=False))
        except ValueError as exc:
            show_error(self.job.refused(str(exc)))
            return
        self.history = {}
        self.result.value = ""
        self.job.start(finetune, pairs, out_path=path, preset=self.preset.value, base_segmenter=self.base.value,
                       base_generator=self.base_generator, unpaired_images=unannotated or None,
                       provenance={"layers": [f"{img.name} / {lab.name}" for img, lab in self.pairs]},
                       describe=self._describe, on_record=self._record, on_result=self._on_result,
                       on_cancelled=lambda: "the model so far was saved" if self.result.value else "",
                       stopped=lambda result: result.stopped,
                       busy=f"loading {self.base.value} ...")

    def cancel(self):
        self.job.cancel()

    @staticmethod
    def _describe(record) -> tuple[int, int, str]:
        text = record.stage
        if record.losses:  # a training step
            left = (f", about {record.eta / 60:.1f} min of training left, then tuning and scoring"
                    if record.total and record.seconds_per_step else "")
            text += f": step {record.step} of {record.total or 'until stopped'}, {record.seconds_per_step:.1f} s/step{left}"
        return record.step, record.total or record.step + 1, text

    def _record(self, record):
        for key, value in record.losses.items():
            self.history.setdefault(key, []).append(value)
        if record.losses and (record.step % 5 == 0 or record.step < 5):
            self._plot()

    def _plot(self):
        ax = themed_axes(self.figure, self.viewer)
        keys = [k for k in ("supervised_mask", "cycle_mask", "cycle_image", "adv_image") if k in self.history]
        for key in keys or [k for k in ("total",) if k in self.history]:
            ax.plot(self.history[key], label=key.replace("_", " "), linewidth=1)
        ax.set_xlabel("step")
        ax.xaxis.get_major_locator().set_params(integer=True)  # steps, not 0.5, 1.5 ... early on
        ax.set_ylabel("loss")
        if ax.lines:
            colours = theme_colours(self.viewer)
            ax.legend(fontsize=7, loc="upper right", facecolor=colours["background"], labelcolor=colours["foreground"])
        self.canvas.draw_idle()

    def _on_result(self, result):
        fmt = lambda s: f"IoU {s['iou']:.3f}, F1 {s['f1']:.3f}"  # noqa: E731
        from ..training.finetune import verdict_text

        verdict = verdict_text(result, self.base.value, "choose it in the Segment panel")
        sizes = result.size_calibration
        calibrated = (f"\nparticle diameter estimates x {sizes['correction']:.2f} (calibrated on your annotations)"
                      if sizes else "")
        self.status.value = f"done: {result.steps} steps in {result.seconds / 60:.1f} min"
        self.result.value = (f"held-out rows, segmented as the Segment panel does:\nbefore ({self.base.value}) "
                             f"{fmt(result.before)}\nafter {fmt(result.after)}  ({result.steps} steps, "
                             f"{result.seconds / 60:.1f} min){calibrated}\nsaved as {result.path.stem!r}: {verdict}")
        for w in result.warnings:
            show_warning(f"Fine-tune: {w}")
        from ..models.registry import notify_models_changed

        notify_models_changed()  # the segment and synthesize panels list it now (none switches to it by itself)
        show_info(f"Fine-tune: saved {result.path.stem!r}; {verdict}")
        self._plot()
