"""Text labels for the dock panels."""

from __future__ import annotations

from magicgui.widgets import Label


def wrapping_label(value: str = "") -> Label:
    """A read-only text label that wraps long messages (a status line, a summary).

    A label that does not wrap makes the whole dock as wide as its longest message:
    "229 particles; info bar rows 712-767 excluded; estimated particle diameter ..."
    took 60 % of a 1600-px window from the image canvas.
    """
    label = Label(value=value)
    label.native.setWordWrap(True)
    return label
