"""Screenshots of the plugin in a real napari window, for the docs.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_screenshots.py [--model auto]

Uses the package's own procedural sample (the real data sets may not be shown or
shipped here): opened through the plugin's reader, segmented with the Segment
particles widget, measured with the Measure particles widget.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import tifffile

OUT = Path(__file__).resolve().parent / "images"


def _camera(viewer):
    """The view's camera (napari 0.9 moved it to ``viewer.scene``)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None and hasattr(scene, "camera") else viewer.camera


def _grid(viewer):
    """The view's grid (napari 0.9 moved it to ``viewer.canvas``)."""
    canvas = getattr(viewer, "canvas", None)
    return canvas.grid if canvas is not None and hasattr(canvas, "grid") else viewer.grid


def narrow(viewer, dock, width: int = 520) -> None:
    """Give a docked panel a panel's width, so the canvas keeps most of the window."""
    from qtpy.QtCore import Qt

    viewer.window._qt_window.resizeDocks([dock], [width], Qt.Horizontal)
    settle()


def settle(seconds=1.0):
    """Let Qt finish layouts and repaints (a label's new text, a docked panel) before a screenshot."""
    from qtpy.QtWidgets import QApplication

    t0 = time.time()
    while time.time() - t0 < seconds:
        QApplication.processEvents()
        time.sleep(0.02)


def wait_for(predicate, timeout=300):
    from qtpy.QtWidgets import QApplication

    t0 = time.time()
    while not predicate():
        QApplication.processEvents()
        time.sleep(0.02)
        if time.time() - t0 > timeout:
            raise TimeoutError("gave up waiting")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="auto")
    ap.add_argument("--generator", default=None)
    ap.add_argument("--only", default="segment,large,scalebar,synthesize",
                    help="comma-separated parts: segment (and measure), large (particle diameter), scalebar (pixel "
                         "size from the scale bar), synthesize (and export, fine-tune)")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    import napari
    from PIL import Image

    from napari_nanogan.data.procedural import SAMPLE_PIXEL_SIZE_NM, sample_image
    from napari_nanogan.widgets.measure import MeasureWidget
    from napari_nanogan.widgets.segment import SegmentWidget

    OUT.mkdir(exist_ok=True)
    image, _ = sample_image()
    tmp = Path(tempfile.mkdtemp()) / "procedural_sem.tif"
    tifffile.imwrite(tmp, image, extratags=[(34682, "s", 0, f"[Scan]\nPixelWidth={SAMPLE_PIXEL_SIZE_NM * 1e-9}\n", True)])

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1600, 1000)
    written = []
    if "large" in parts:
        written += large_particles(viewer, args.model)
    if "scalebar" in parts:
        written += scale_bar(viewer)
    if "segment" not in parts:
        if "synthesize" in parts:
            written += synthesize_and_finetune(viewer, args.generator or "default", args.model)
        print("wrote " + ", ".join(str(p) for p in written))
        viewer.close()
        return
    viewer.open(str(tmp), plugin="napari-nanogan")
    seg = SegmentWidget(viewer)
    dock = viewer.window.add_dock_widget(seg, name="Segment particles", area="right")
    narrow(viewer, dock)
    seg.model.choices = [args.model]
    seg.model.value = args.model
    seg.image_layer.value = viewer.layers["procedural_sem"]
    seg.run()
    wait_for(lambda: "procedural_sem particles" in viewer.layers)
    wait_for(lambda: seg.run_button.enabled)
    viewer.layers["procedural_sem particles"].opacity = 0.45
    viewer.reset_view()
    settle()
    shot = viewer.screenshot(canvas_only=False, flash=False)
    Image.fromarray(shot).save(OUT / "segment_widget.png")

    meas = MeasureWidget(viewer)
    viewer.window.add_dock_widget(meas, name="Measure particles", area="right")
    meas.labels_layer.value = viewer.layers["procedural_sem particles"]
    meas.image_layer.value = viewer.layers["procedural_sem"]
    meas.run()
    # zoom on a corner so particles and the info bar outline are visible
    _camera(viewer).zoom *= 1.6
    _camera(viewer).center = (0, 600 * SAMPLE_PIXEL_SIZE_NM, 700 * SAMPLE_PIXEL_SIZE_NM)
    settle()
    for _ in range(20):
        from qtpy.QtWidgets import QApplication

        QApplication.processEvents()
        time.sleep(0.05)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    Image.fromarray(shot).save(OUT / "measure_widget.png")
    written += [OUT / "segment_widget.png", OUT / "measure_widget.png"]
    from napari_nanogan.models.registry import available_models

    if "synthesize" in parts and (args.generator or "default" in available_models("generator")):
        written += synthesize_and_finetune(viewer, args.generator or "default", args.model)
    print("wrote " + ", ".join(str(p) for p in written))
    viewer.close()


def large_particles(viewer, model):
    """Particles 4x the training scale: segmented at the image's own scale, with their diameter, and estimated."""
    import numpy as np
    from PIL import Image

    from napari_nanogan.data.procedural import SAMPLE_PIXEL_SIZE_NM, sample_image
    from napari_nanogan.widgets.segment import SegmentWidget

    image, _ = sample_image()
    big = np.kron(image[128:320, 704:960], np.ones((4, 4), image.dtype))  # particles about 96 px across
    nm = SAMPLE_PIXEL_SIZE_NM / 4
    layer = viewer.add_image(big, name="large particles", scale=(nm, nm), units=("nm", "nm"))
    seg = SegmentWidget(viewer)
    dock = viewer.window.add_dock_widget(seg, name="Segment particles (large)", area="right")
    seg.model.choices = [model]
    seg.model.value = model
    seg.image_layer.value = layer
    seg.exclude_bar.value = False
    runs = ((0.0, False, "own scale"), (96 * nm, False, "diameter given"), (0.0, True, "diameter estimated"))
    for k, (diameter, auto, name) in enumerate(runs):
        seg.diameter.value = round(diameter, 1)
        seg.auto_diameter.value = auto
        seg.image_layer.value = layer  # (the picker moves to each copy as it is added)
        seg.run()
        wait_for(lambda: seg.run_button.enabled)
        labels = viewer.layers["large particles particles"]
        labels.name = f"{name}: {int(labels.data.max())} particles"
        labels.opacity = 0.5
        if k:  # one below the other, each over its own copy of the image
            labels.translate = (k * big.shape[0] * nm * 1.05, 0)
            copy = viewer.add_image(big, name=f"large particles ({name})", scale=(nm, nm),
                                    translate=labels.translate, units=("nm", "nm"))
            viewer.layers.move(viewer.layers.index(copy), viewer.layers.index(labels))
    _close_toasts()
    _settle()  # the canvas takes its final size first, then the view fits it
    viewer.reset_view()
    _settle()
    shot = viewer.screenshot(canvas_only=False, flash=False)
    Image.fromarray(shot).save(OUT / "segment_diameter.png")
    viewer.window.remove_dock_widget(dock)
    viewer.layers.clear()
    return [OUT / "segment_diameter.png"]


def scale_bar(viewer):
    """A PNG without a pixel size (the sample, its data bar labelled as a figure's would be): the pixel size set
    from its scale bar and the length typed, the bar outlined to check."""
    import numpy as np
    from PIL import Image, ImageDraw

    from napari_nanogan.data.procedural import SAMPLE_PIXEL_SIZE_NM, sample_image
    from napari_nanogan.io.scalebar import find_scale_bar
    from napari_nanogan.widgets.segment import SegmentWidget

    image, _ = sample_image()
    bar = find_scale_bar(image)
    length_nm = round(bar.length_px * SAMPLE_PIXEL_SIZE_NM)  # what the figure's label would say
    labelled = Image.fromarray(image)
    ImageDraw.Draw(labelled).text((bar.start + 30, bar.top - 16), f"{length_nm} nm", fill=255)
    png = Path(tempfile.mkdtemp()) / "figure.png"
    labelled.save(png)
    viewer.open(str(png), plugin="napari-nanogan")
    layer = viewer.layers["figure"]
    seg = SegmentWidget(viewer)
    dock = viewer.window.add_dock_widget(seg, name="Segment particles (scale bar)", area="right")
    narrow(viewer, dock)
    seg.image_layer.value = layer
    seg.scale_bar.value = f"{length_nm} nm"
    seg.pixel_size_from_scale_bar()
    _close_toasts()
    _settle()
    _camera(viewer).center = (0, (bar.top - 40) * layer.scale[-2], (bar.start + bar.stop) / 2 * layer.scale[-1] + 60)
    _camera(viewer).zoom = 2.4 / layer.scale[-1]  # the bar, its label and the particles above the data bar
    _settle()
    shot = viewer.screenshot(canvas_only=False, flash=False)
    Image.fromarray(np.asarray(shot)).save(OUT / "segment_scale_bar.png")
    viewer.window.remove_dock_widget(dock)
    viewer.layers.clear()
    return [OUT / "segment_scale_bar.png"]


def _close_toasts():
    """Close notification pop-ups left over from an earlier step (they belong to that step's picture)."""
    from napari._qt.dialogs.qt_notification import NapariQtNotification
    from qtpy.QtWidgets import QApplication

    for widget in QApplication.allWidgets():
        if isinstance(widget, NapariQtNotification):
            widget.close()


def _settle(seconds=1.0):
    from qtpy.QtWidgets import QApplication

    t0 = time.time()
    while time.time() - t0 < seconds:
        QApplication.processEvents()
        time.sleep(0.02)


def synthesize_and_finetune(viewer, generator, model):
    from PIL import Image

    from napari_nanogan.widgets.finetune import FinetuneWidget
    from napari_nanogan.widgets.synthesize import SynthesizeWidget

    for widget in list(viewer.window.dock_widgets.values()):  # (the inner widgets; magicgui ones by .native)
        viewer.window.remove_dock_widget(getattr(widget, "native", widget))
    viewer.layers.clear()
    # a mask painted with napari's own brush (Labels.paint, what a mouse drag calls): short
    # strokes of a 16-28 px brush, one label per particle, on an empty 512 x 512 canvas
    import numpy as np

    labels = viewer.add_labels(np.zeros((512, 512), np.int32), name="painted mask", scale=(7.344, 7.344),
                               units=("nm", "nm"), metadata={"pixel_size_nm": 7.344})
    rng = np.random.default_rng(11)
    centres = []
    while len(centres) < 45:
        c = rng.uniform(30, 482, 2)
        if all(np.hypot(*(c - d)) > 34 for d in centres):
            centres.append(c)
    for label, (cy, cx) in enumerate(centres, start=1):
        labels.brush_size = int(rng.integers(16, 29))
        angle, length = rng.uniform(0, np.pi), rng.uniform(0, 10)
        for t in np.linspace(-0.5, 0.5, 6):  # one short stroke
            labels.paint((cy + t * length * np.sin(angle), cx + t * length * np.cos(angle)), label, refresh=False)
    labels.refresh()
    syn = SynthesizeWidget(viewer)
    viewer.window.add_dock_widget(syn, name="Synthesize SEM images", area="right")
    syn.model.choices = [generator]
    syn.model.value = generator
    syn.source.value = "Labels layer"
    syn.labels_layer.value = labels
    syn.n.value = 3
    syn.run()
    wait_for(lambda: any(layer.name.endswith(" mask") and layer.name.startswith("synthetic") for layer in viewer.layers))
    wait_for(lambda: syn.run_button.enabled)
    _grid(viewer).enabled = True
    _grid(viewer).shape = (2, 2)
    labels.visible = True
    viewer.layers["synthetic painted mask mask"].visible = False
    viewer.reset_view()
    _settle()
    out = [OUT / "synthesize_widget.png"]
    Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).save(out[-1])
    _grid(viewer).enabled = False

    from napari_nanogan.widgets.export import ExportWidget

    exp = ExportWidget(viewer)
    viewer.window.add_dock_widget(exp, name="Export training pairs", area="right")
    exp.model.choices = [generator]
    exp.model.value = generator
    exp.picker.image_layer.value = viewer.layers["synthetic painted mask #0"]
    exp.picker.labels_layer.value = viewer.layers["synthetic painted mask mask"]
    exp.picker.add_pair()
    exp.synthetic_masks.value = ["painted mask"]
    exp.n.value = 4
    exp.out_dir.value = Path(tempfile.mkdtemp()) / "pairs"
    exp.run()
    wait_for(lambda: exp.run_button.enabled and exp.status.value.startswith("done"))
    for layer in viewer.layers:
        layer.visible = layer.name in ("synthetic painted mask #0", "synthetic painted mask mask")
    viewer.reset_view()
    _settle()
    out.append(OUT / "export_widget.png")
    Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).save(out[-1])

    for widget in list(viewer.window.dock_widgets.values()):  # (the inner widgets; magicgui ones by .native)
        viewer.window.remove_dock_widget(getattr(widget, "native", widget))
    viewer.layers.clear()
    from napari_nanogan.data.procedural import sample_image

    image, truth = sample_image(seed=5)
    img = viewer.add_image(image[: truth.shape[0]], name="my image")
    ann = viewer.add_labels(truth, name="my annotation", opacity=0.4)
    ft = FinetuneWidget(viewer)
    viewer.window.add_dock_widget(ft, name="Fine-tune", area="right")
    if model != "auto":  # `auto` is not one checkpoint: fine-tuning keeps the widget's own base (`default`)
        ft.base_segmenter = model
    ft.base_generator = generator
    ft.image_layer.value, ft.labels_layer.value = img, ann
    ft.add_pair()
    ft.name.value = "docs-screenshot-run"
    import os

    os.environ["NANOGAN_USER_MODELS"] = tempfile.mkdtemp()
    _close_toasts()
    ft.run()
    import re

    def steps_done() -> int:  # the status reads "<stage>: step N of T, ..." while training
        found = re.search(r"\bstep (\d+) of", ft.status.value)
        return int(found.group(1)) if found else 0

    wait_for(lambda: steps_done() >= 12 or ft.run_button.enabled, timeout=900)
    _settle()
    out.append(OUT / "finetune_widget.png")
    Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).save(out[-1])
    ft.cancel()
    wait_for(lambda: ft.run_button.enabled, timeout=900)
    return out


if __name__ == "__main__":
    main()
