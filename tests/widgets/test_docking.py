"""All five panels docked at once fit a laptop's window: each scrolls up and down within its dock."""

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication, QScrollArea

from napari_nanogan.widgets.export import ExportWidget
from napari_nanogan.widgets.finetune import FinetuneWidget
from napari_nanogan.widgets.measure import MeasureWidget
from napari_nanogan.widgets.segment import SegmentWidget
from napari_nanogan.widgets.synthesize import SynthesizeWidget


def test_docked_panels_scroll_instead_of_growing_the_window(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(1400, 900)
    panels = [cls(viewer) for cls in (SegmentWidget, MeasureWidget, SynthesizeWidget, ExportWidget, FinetuneWidget)]
    for panel in panels:
        viewer.window.add_dock_widget(panel, area="right")
    for _ in range(5):
        QApplication.processEvents()
    # stacked without scrolling they needed 1571-3005 px of height
    assert window.height() <= 1000
    for panel in panels:
        area = panel.findChild(QScrollArea)
        assert area is not None and area.widgetResizable()
        assert area.horizontalScrollBarPolicy() == Qt.ScrollBarAlwaysOff
        assert panel.minimumSizeHint().height() < 300  # the contents' height lives in the scroll area
        assert area.minimumSizeHint().width() >= area.widget().minimumSizeHint().width()  # never clipped sideways
