"""napari-nanogan: nanoparticle segmentation and synthesis for electron microscopy.

Importing the package loads neither torch nor Qt; the heavy pieces are imported by
the modules that need them (``napari_nanogan.inference``, ``napari_nanogan.training``).
"""

__version__ = "0.1.0"
