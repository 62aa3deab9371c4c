"""napari dock widgets: the only package that imports Qt, magicgui or napari.qt."""
