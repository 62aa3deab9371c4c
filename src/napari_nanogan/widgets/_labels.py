"""Text labels, layouts and number fields for the dock panels."""

from __future__ import annotations

from magicgui.widgets import Label


def wrapping_label(value: str = "") -> Label:
    """A read-only text label that wraps long messages (a status line, a summary).

    A label that does not wrap makes the whole dock as wide as its longest message:
    "229 particles; info bar rows 712-767 excluded; estimated particle diameter ..."
    took 60 % of a 1600-px window from the image canvas.
    """
    from qtpy.QtWidgets import QSizePolicy

    label = Label(value=value)
    label.native.setWordWrap(True)
    # Qt asks of a wrapping label a minimum width that grows with its text (to keep it from getting tall): a
    # long result made the panel wider than its dock, cut off at the right. Its width is the panel's to give.
    label.native.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
    return label


def scrolling_layout(panel):
    """A vertical layout for ``panel``'s contents, inside a scroll area that fills it.

    napari stacks docked panels and does not scroll them: without this, the panels docked
    together made the window 1571-3005 px tall, their lower parts off a laptop's screen.
    The area scrolls up and down only; it is as wide as its contents ask.
    """
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget

    class VerticalScroll(QScrollArea):
        def _widened(self, hint, contents):
            hint.setWidth(contents.width() + self.verticalScrollBar().sizeHint().width() + 2)
            return hint

        def sizeHint(self):  # noqa: N802 (Qt's name)
            return self._widened(super().sizeHint(), self.widget().sizeHint())

        def minimumSizeHint(self):  # noqa: N802
            return self._widened(super().minimumSizeHint(), self.widget().minimumSizeHint())

    inner = QWidget()
    layout = QVBoxLayout(inner)
    area = VerticalScroll()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
    area.setWidget(inner)
    outer = QVBoxLayout(panel)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(area)
    return layout


def exact_value(field, own: float) -> float:
    """A number field's value, or ``own`` (the exact value it was filled with) while the field still shows
    that rounded to its step: a layer's or file's pixel size of 0.01234 nm shown as 0.012 is used as 0.01234."""
    shown = field.value
    return own if own and abs(shown - own) <= 0.5 * field.step else shown
