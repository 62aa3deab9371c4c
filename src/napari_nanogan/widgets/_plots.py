"""Matplotlib figures in the panels, in the colours of napari's theme (dark by default)."""

from __future__ import annotations


def theme_colours(viewer) -> dict:
    """``{"background", "foreground", "accent"}`` as matplotlib colours for the viewer's theme."""
    try:
        from napari.utils.theme import get_theme

        theme = get_theme(viewer.theme)
        return {"background": theme.background.as_hex(), "foreground": theme.text.as_hex(),
                "accent": theme.current.as_hex()}
    except Exception:  # an unknown theme: matplotlib's own look
        return {"background": "white", "foreground": "black", "accent": "#4a90d9"}


def themed_axes(figure, viewer):
    """A fresh single axes on ``figure``, coloured for the viewer's theme."""
    colours = theme_colours(viewer)
    figure.clear()
    figure.set_facecolor(colours["background"])
    ax = figure.add_subplot(111)
    ax.set_facecolor(colours["background"])
    for spine in ax.spines.values():
        spine.set_color(colours["foreground"])
    ax.tick_params(colors=colours["foreground"])
    ax.xaxis.label.set_color(colours["foreground"])
    ax.yaxis.label.set_color(colours["foreground"])
    ax.title.set_color(colours["foreground"])
    return ax
