"""The "Export training pairs" dock widget: annotated and synthetic image-mask pairs to a folder.

Thin client of :func:`napari_nanogan.io.pairs.export_pairs` (the same writer as
``nanogan export``): TIFFs with the pixel size, uint16 instance masks, optional PNG
previews and a manifest. Each pair is written atomically and the manifest is
rewritten after each pair, so a cancelled or interrupted export leaves complete
pairs that the manifest lists, and nothing half-written. Existing files are
refused before any work unless "overwrite" is ticked.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Label, PushButton, Select, SpinBox
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QProgressBar, QWidget

from ._labels import scrolling_layout, wrapping_label
from ._pairs import PairPicker, check_pair

if TYPE_CHECKING:
    import napari


def plan_annotated(pairs) -> list:
    """Export pairs from (Image layer, Labels layer) tuples, checked and converted."""
    from ..io.masks import check_mask
    from ..io.pairs import Pair, as_export_image, check_exportable, safe_name
    from ._layers import layer_data, layer_pixel_size_nm

    out = []
    for image_layer, labels_layer in pairs:
        check_pair(image_layer, labels_layer)
        raw = layer_data(image_layer)
        image = as_export_image(raw)
        extra = {} if image.dtype == raw.dtype else {"converted_from": str(raw.dtype)}
        bar = (image_layer.metadata or {}).get("info_bar_rows")
        if bar:  # the microscope's data bar is in the image: rows a trainer may want to crop (first and last, as
            extra["info_bar_rows"] = [int(bar[0]), int(bar[1]) - 1]  # the status line and the demo's summary say them)
        try:
            labels = check_mask(layer_data(labels_layer))
        except ValueError as exc:
            raise ValueError(f"{labels_layer.name!r}: {exc}") from None
        out.append(Pair(safe_name(image_layer.name), image, labels,
                        source=f"annotated: {image_layer.name} / {labels_layer.name}",
                        pixel_size_nm=layer_pixel_size_nm(image_layer) or layer_pixel_size_nm(labels_layer), extra=extra))
        check_exportable(out[-1])  # before any work: not after the pairs before it were written
    return out


def planned_names(annotated: list, masks: list, n: int) -> list[str]:
    from ..io.pairs import safe_name

    return [p.name for p in annotated] + [f"{safe_name(name)}_{k}" for name, _, _ in masks for k in range(n)]


def _export_job(annotated: list, masks: list, n: int, seed: int, model: str, out_dir, png: bool, overwrite: bool):
    """Worker thread: write the annotated pairs, then synthesize and write N pairs per mask.

    Yields (done, total, name) after each pair; returns the manifest path.
    """
    from ..io.pairs import export_pairs, file_sha256, safe_name

    names = planned_names(annotated, masks, n)
    total, done, manifest = len(names), 0, None
    for pair in annotated:
        manifest = export_pairs([pair], out_dir, png=png, overwrite=overwrite)
        done += 1
        yield done, total, pair.name
    if masks and n:
        from ..config import ModelKind
        from ..models.registry import resolve_model
        from ..synthesis import load_generator, mask_maps, synthetic_pairs

        for _, labels, _ in masks:
            mask_maps(labels)  # validate every mask before loading the generator
        generator = load_generator(model)
        digest = file_sha256(resolve_model(model, kind=ModelKind.GENERATOR))
        sources = [(safe_name(name), labels, pixel, f"synthetic from layer {name}") for name, labels, pixel in masks]
        for pair in synthetic_pairs(sources, generator, n=n, seed=seed, model=model, model_sha256=digest):
            manifest = export_pairs([pair], out_dir, png=png, overwrite=overwrite)
            done += 1
            yield done, total, pair.name
    return manifest


def unwritable(folder: Path) -> str | None:
    """Why pairs cannot be written to ``folder`` (a file there, no write permission), or None."""
    import os

    if folder.exists() and not folder.is_dir():
        return f"{folder} is a file, not a folder; choose a folder."
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        return f"{existing} is a file, so {folder} cannot be made; choose a folder."
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} cannot be written to (read-only, or no permission); choose another folder."
    return None


class ExportWidget(QWidget):
    """Write image-mask pairs (annotated layers and/or synthetic ones) for training elsewhere."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer"):
        super().__init__()
        from ..models.registry import available_models, on_models_changed

        self.viewer = napari_viewer
        self.picker = PairPicker(napari_viewer, on_error=lambda message: show_error(f"Export: {message}"))
        self.synthetic_masks = Select(label="synthesize from masks", choices=self._labels_names)
        self.n = SpinBox(label="synthetic images per mask", value=4, min=0, max=1000)
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self.model = ComboBox(label="generator", choices=lambda *_: available_models("generator") or ["default"])
        on_models_changed(self.model.reset_choices)
        self.out_dir = FileEdit(label="folder", mode="d")
        self.png = CheckBox(label="also PNG previews", value=False)
        self.overwrite = CheckBox(label="overwrite existing files", value=False)
        self.run_button = PushButton(text="Export")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = wrapping_label("")
        self.controls = Container(widgets=[self.synthetic_masks, self.n, self.seed, self.model, self.out_dir, self.png,
                                           self.overwrite, self.run_button, self.cancel_button, self.status])
        self.progress = QProgressBar()
        layout = scrolling_layout(self)
        layout.addWidget(Label(value="annotated pairs (optional)").native)
        layout.addWidget(self.picker)
        layout.addWidget(self.controls.native)
        layout.addWidget(self.progress)
        layout.addStretch(1)
        self.worker = None
        self.manifest = None
        self._failed, self._folder, self._bare = False, None, []
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(self.synthetic_masks.reset_choices)

    def _labels_names(self, *_):
        return [layer.name for layer in self.viewer.layers if layer.__class__.__name__ == "Labels"]

    def _masks(self) -> list:
        from ..io.masks import check_mask
        from ._layers import layer_data, layer_pixel_size_nm

        masks = []
        for name in self.synthetic_masks.value:
            layer = self.viewer.layers[name]
            data = layer_data(layer)
            if data.ndim != 2:
                raise ValueError(f"the Labels layer {name!r} is {data.ndim}D; synthesize from 2D masks")
            try:
                labels = check_mask(data)
            except ValueError as exc:
                raise ValueError(f"the Labels layer {name!r}: {exc}") from None
            if labels.max(initial=0) >= 2**16:  # (its pairs' masks are written as uint16)
                raise ValueError(f"the Labels layer {name!r} holds {labels.max()} particles, more than an exported "
                                 "mask holds (65535): synthesize from tiles of it")
            masks.append((name, labels, layer_pixel_size_nm(layer)))
        return masks

    def _refuse(self, message: str) -> None:
        """A run refused before it starts: said in the status line too (it still showed the last run's result)."""
        self.status.value = f"not started: {message}"
        show_error(f"Export: {message}")

    def run(self):
        if self.worker is not None:  # (Run is disabled meanwhile; a second call is not a second run)
            return
        from napari.qt.threading import create_worker

        text = str(self.out_dir.line_edit.value).strip()
        if not text or not Path(text).expanduser().is_absolute():  # "." would mean napari's working folder
            self._refuse("choose a folder to write to (Choose directory... or a full path).")
            return
        folder = Path(text).expanduser()
        problem = unwritable(folder)
        if problem:
            self._refuse(problem)
            return
        try:
            annotated = plan_annotated(self.picker.pairs)
            masks = self._masks()
        except ValueError as exc:
            self._refuse(f"{exc}")
            return
        n = int(self.n.value)
        if not annotated and not (masks and n):
            self._refuse("add an annotated pair, or choose masks to synthesize from (and N > 0).")
            return
        from ..io.pairs import existing_files

        names = planned_names(annotated, masks, n)
        if len(set(names)) != len(names):
            sources = [p.source.removeprefix("annotated: ") for p in annotated] + [
                f"mask {name}" for name, _, _ in masks for _ in range(n)]
            twice = next(name for name in names if names.count(name) > 1)
            which = " and ".join(repr(s) for s, name in zip(sources, names) if name == twice)
            self._refuse(f"{which} would both be written as {twice!r}; rename a layer (or export one of them).")
            return
        existing = [] if self.overwrite.value else existing_files(names, folder, png=bool(self.png.value))
        if existing:
            self._refuse(f"{len(existing)} files exist already, e.g. {existing[0]}; choose another folder "
                         "or tick 'overwrite'.")
            return
        total = len(names)
        self.worker = create_worker(_export_job, annotated, masks, n, int(self.seed.value), self.model.value, folder,
                                    bool(self.png.value), bool(self.overwrite.value), _start_thread=False,
                                    _connect={"errored": self._on_error})
        self._failed, self._folder = False, folder
        self.worker.yielded.connect(self._on_progress)
        self.worker.returned.connect(self._on_result)
        self.worker.finished.connect(self._on_finished)
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self._bare = [name for name, labels, _ in masks if not labels.max(initial=0)] if n else []
        self.status.value = f"writing {total} pairs ..." + (
            f" ({', '.join(repr(b) for b in self._bare)} hold(s) no particle: bare substrate only)" if self._bare else "")
        self.worker.start()

    def cancel(self):
        if self.worker is not None:
            self.worker.quit()  # stops after the pair being written: no half-written file

    def _on_progress(self, value):
        done, total, name = value
        self.progress.setValue(done)
        self.status.value = f"{done} / {total}: {name}"

    def _on_result(self, manifest):
        self.manifest = manifest
        self.status.value = f"done: {self.progress.value()} pairs, manifest {manifest}" + (
            f"; from {', '.join(repr(b) for b in self._bare)}: bare substrate, no particle" if self._bare else "")
        show_info(f"Export: {self.progress.value()} pairs written; manifest {manifest}")

    def _on_error(self, exc):
        """A write that failed (disk full, folder made read-only mid-run): said as a failure, not as a Cancel."""
        self._failed = True
        from ._run import error_text

        why = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) and exc.strerror and exc.filename \
            else error_text(exc)
        done, total = self.progress.value(), self.progress.maximum()
        self.status.value = f"failed after {done} of {total} pairs (each written completely): {why}"
        show_error(f"Export to {self._folder} failed: {why}")

    def _on_finished(self):
        self.worker = None
        self.run_button.enabled, self.cancel_button.enabled = True, False
        if self._failed:
            return
        if not self.status.value.startswith("done"):
            done, total = self.progress.value(), self.progress.maximum()
            self.status.value = (f"done: all {total} pairs written (Cancel came after the last)" if done == total else
                                 f"stopped after {done} of {total} pairs (each written completely)")
