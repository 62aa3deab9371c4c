"""Screenshots of the plugin in a real napari window, for the docs.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_screenshots.py [--model default]

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
    ap.add_argument("--model", default="default")
    args = ap.parse_args()
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
    viewer.open(str(tmp), plugin="napari-nanogan")
    seg = SegmentWidget(viewer)
    viewer.window.add_dock_widget(seg, name="Segment particles", area="right")
    seg.model.choices = [args.model]
    seg.model.value = args.model
    seg.image_layer.value = viewer.layers["procedural_sem"]
    seg.run()
    wait_for(lambda: "procedural_sem particles" in viewer.layers)
    wait_for(lambda: seg.run_button.enabled)
    viewer.layers["procedural_sem particles"].opacity = 0.45
    viewer.reset_view()
    wait_for(lambda: True)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    Image.fromarray(shot).save(OUT / "segment_widget.png")

    meas = MeasureWidget(viewer)
    viewer.window.add_dock_widget(meas, name="Measure particles", area="right")
    meas.labels_layer.value = viewer.layers["procedural_sem particles"]
    meas.image_layer.value = viewer.layers["procedural_sem"]
    meas.run()
    # zoom on a corner so particles and the info bar outline are visible
    viewer.camera.zoom *= 1.6
    viewer.camera.center = (0, 600 * SAMPLE_PIXEL_SIZE_NM, 700 * SAMPLE_PIXEL_SIZE_NM)
    wait_for(lambda: True)
    for _ in range(20):
        from qtpy.QtWidgets import QApplication

        QApplication.processEvents()
        time.sleep(0.05)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    Image.fromarray(shot).save(OUT / "measure_widget.png")
    print(f"wrote {OUT / 'segment_widget.png'} and {OUT / 'measure_widget.png'}")
    viewer.close()


if __name__ == "__main__":
    main()
