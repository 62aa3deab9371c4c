"""The "Fine-tune" dock widget: train on the user's annotated layers in one click.

Thin client of :func:`napari_nanogan.training.finetune.finetune`: it checks the
chosen layers, runs the loop in a worker thread, shows progress, time left and a
live loss plot, and saves the result as a named user model.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, LineEdit, PushButton, Select, create_widget
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QListWidget, QProgressBar, QVBoxLayout, QWidget

from ..training.finetune import PRESETS

if TYPE_CHECKING:
    import napari


def check_pair(image_layer, labels_layer) -> None:
    """Raise ValueError with a clear message when a pair cannot be trained on."""
    image = np.asarray(image_layer.data)
    labels = np.asarray(labels_layer.data)
    if image_layer.rgb:
        raise ValueError(f"{image_layer.name!r} is RGB: convert it to grey first (Image > Convert, or open the grey original)")
    if image.ndim != 2:
        raise ValueError(f"{image_layer.name!r} has {image.ndim} dimensions; fine-tuning uses 2D images")
    if labels.ndim != 2:
        raise ValueError(f"{labels_layer.name!r} has {labels.ndim} dimensions; fine-tuning uses 2D masks")
    if image.shape != labels.shape:
        raise ValueError(f"{image_layer.name!r} {image.shape} and {labels_layer.name!r} {labels.shape} differ in shape")
    if labels.max() == 0:
        raise ValueError(f"{labels_layer.name!r} is empty: paint some particles first")


def _samples(pairs):
    from ..data.datasets import Sample, instance_labels
    from ..io.infobar import detect_info_bar
    from ..normalize import intensity_range

    out = []
    for image_layer, labels_layer in pairs:
        image = np.asarray(image_layer.data)
        labels = instance_labels(np.asarray(labels_layer.data))
        bar = detect_info_bar(image)
        rows = bar.specimen_rows if bar is not None else slice(None)
        image, labels = image[rows], labels[rows]
        lo, hi = intensity_range(image)
        out.append(Sample(image_layer.name, image, labels, lo, hi, "user"))
    return out


class FinetuneWidget(QWidget):
    """Pick (image, labels) pairs, a preset and a name; press Fine-tune."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer"):
        super().__init__()
        self.viewer = napari_viewer
        self.image_layer = create_widget(annotation="napari.layers.Image", label="image")
        self.labels_layer = create_widget(annotation="napari.layers.Labels", label="its labels")
        self.add_button = PushButton(text="Add pair")
        self.remove_button = PushButton(text="Remove selected pair")
        self.pair_list = QListWidget()
        self.pair_list.setMaximumHeight(90)
        self.unannotated = Select(label="unannotated images (optional)", choices=self._image_names)
        self.preset = ComboBox(label="preset", choices=list(PRESETS), value="quick")
        self.preset_note = Label(value=PRESETS["quick"].description)
        self.name = LineEdit(label="save as", value="my-model")
        self.run_button = PushButton(text="Fine-tune")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(value="")
        self.result = Label(value="")
        self.pairs: list[tuple] = []
        top = Container(widgets=[self.image_layer, self.labels_layer, self.add_button, self.remove_button])
        bottom = Container(widgets=[self.unannotated, self.preset, self.preset_note, self.name, self.run_button,
                                    self.cancel_button, self.status, self.result])
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(4, 2.4), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(180)
        self.progress = QProgressBar()
        layout = QVBoxLayout(self)
        layout.addWidget(top.native)
        layout.addWidget(self.pair_list)
        layout.addWidget(bottom.native)
        layout.addWidget(self.progress)
        layout.addWidget(self.canvas)
        self.worker = None
        self._stop = False
        self.history: dict[str, list] = {}
        self.base_segmenter, self.base_generator = "default", "default"  # what fine-tuning starts from
        self.add_button.changed.connect(self.add_pair)
        self.remove_button.changed.connect(self.remove_pair)
        self.preset.changed.connect(lambda v: setattr(self.preset_note, "value", PRESETS[v].description))
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(self.image_layer.reset_choices)
            event.connect(self.labels_layer.reset_choices)
            event.connect(self.unannotated.reset_choices)

    def _image_names(self, *_):
        return [layer.name for layer in self.viewer.layers if layer.__class__.__name__ == "Image"]

    def add_pair(self, *_):
        image, labels = self.image_layer.value, self.labels_layer.value
        if image is None or labels is None:
            show_error("Fine-tune: choose an image and its labels layer.")
            return
        try:
            check_pair(image, labels)
        except ValueError as exc:
            show_error(f"Fine-tune: {exc}")
            return
        if any(p[0] is image and p[1] is labels for p in self.pairs):
            return
        self.pairs.append((image, labels))
        self.pair_list.addItem(f"{image.name}  ↔  {labels.name}")

    def remove_pair(self, *_):
        row = self.pair_list.currentRow()
        if 0 <= row < len(self.pairs):
            self.pairs.pop(row)
            self.pair_list.takeItem(row)

    def run(self):
        from napari.qt.threading import create_worker

        from ..models.user import check_name, user_model_path

        if not self.pairs:
            show_error("Fine-tune: add at least one (image, labels) pair you annotated.")
            return
        try:
            for image, labels in self.pairs:
                check_pair(image, labels)
            path = user_model_path(check_name(self.name.value))
        except ValueError as exc:
            show_error(f"Fine-tune: {exc}")
            return
        if path.exists():
            show_error(f"Fine-tune: a model named {self.name.value!r} exists; choose another name or delete it.")
            return
        from ..data.datasets import Sample
        from ..normalize import intensity_range
        from ..training.finetune import finetune

        pairs = _samples(self.pairs)
        unannotated = []
        for name in self.unannotated.value:
            data = np.asarray(self.viewer.layers[name].data)
            if data.ndim == 2:
                lo, hi = intensity_range(data)
                unannotated.append(Sample(name, data, np.zeros(data.shape, np.int32), lo, hi, "images"))
        self._stop = False
        self.history = {}
        self._t0 = time.perf_counter()
        self.worker = create_worker(finetune, pairs, out_path=path, preset=self.preset.value,
                                    base_segmenter=self.base_segmenter, base_generator=self.base_generator,
                                    unpaired_images=unannotated or None, should_stop=lambda: self._stop,
                                    provenance={"layers": [f"{i.name} / {l.name}" for i, l in self.pairs]},
                                    _start_thread=False)
        self.worker.yielded.connect(self._on_progress)
        self.worker.returned.connect(self._on_result)
        self.worker.errored.connect(lambda exc: show_error(f"Fine-tune: {exc}"))
        self.worker.finished.connect(self._on_finished)
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.status.value = "scoring the starting model on the held-out rows ..."
        self.result.value = ""
        preset = PRESETS[self.preset.value]
        self.progress.setRange(0, preset.max_steps if preset.seconds is None else 1000)
        self.progress.setValue(0)
        self.worker.start()

    def cancel(self):
        self._stop = True
        self.status.value = "stopping after this step ..."

    def _on_progress(self, record):
        if self._stop:
            return
        preset = PRESETS[self.preset.value]
        elapsed = time.perf_counter() - self._t0
        if preset.seconds is not None:
            frac = min(max(elapsed / preset.seconds, record.step / preset.max_steps), 1.0)
            self.progress.setValue(int(1000 * frac))
            left = max(preset.seconds - elapsed, 0)
            self.status.value = f"step {record.step}, {record.seconds_per_step:.1f} s/step, about {left / 60:.1f} min left"
        else:
            self.progress.setValue(record.step)
            self.status.value = f"step {record.step}, {record.seconds_per_step:.1f} s/step (until stopped)"
        for key, value in record.losses.items():
            self.history.setdefault(key, []).append(value)
        if record.step % 5 == 0 or record.step < 5:
            self._plot()

    def _plot(self):
        self.figure.clear()
        ax = self.figure.add_subplot(111)
        keys = [k for k in ("supervised_mask", "cycle_mask", "cycle_image", "adv_image") if k in self.history]
        for key in keys or [k for k in ("total",) if k in self.history]:
            ax.plot(self.history[key], label=key.replace("_", " "), linewidth=1)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        if ax.lines:
            ax.legend(fontsize=7, loc="upper right")
        self.canvas.draw_idle()

    def _on_result(self, result):
        fmt = lambda s: f"IoU {s['iou']:.3f}, F1 {s['f1']:.3f}"  # noqa: E731
        self.result.value = (f"held-out rows: before {fmt(result.before)}\nafter {fmt(result.after)}  "
                             f"({result.steps} steps, {result.seconds / 60:.1f} min)\nsaved as {result.path.stem!r}")
        for w in result.warnings:
            show_warning(f"Fine-tune: {w}")
        show_info(f"Fine-tune: saved {result.path.stem!r}; it is now in the model lists")
        self._plot()

    def _on_finished(self):
        self.run_button.enabled, self.cancel_button.enabled = True, False
        if self._stop:
            self.status.value = "stopped; the model so far was saved" if self.result.value else "stopped"
