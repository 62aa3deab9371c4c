"""napari-nanogan: nanoparticle segmentation, measurement and synthesis for electron microscopy.

The public face, imported lazily (``import napari_nanogan`` loads neither torch nor Qt;
each name loads its module when first used)::

    from napari_nanogan import read_image, load_segmenter, segment, measure_particles

    image, meta = read_image("particles.tif")
    result = segment(image, load_segmenter(), diameter="auto")
    table = measure_particles(result.labels, image=image, pixel_size_nm=meta["pixel_size_nm"])
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_PUBLIC = {
    "read_image": "io.images", "write_labels": "io.images", "read_mask": "io.masks", "detect_info_bar": "io.infobar",
    "load_segmenter": "segmentation.segmenter", "segment": "segmentation.pipeline",
    "SegmentationResult": "segmentation.pipeline",
    "load_generator": "synthesis.generator", "synthesize": "synthesis.pipeline",
    "synthetic_pairs": "synthesis.pipeline", "design_mask": "data.designer", "MaskDesign": "config",
    "measure_particles": "measure", "summarize_sizes": "measure",
    "export_pairs": "io.pairs", "Pair": "io.pairs",
    "train_segmenter": "training.segmenter", "finetune": "training.finetune",
}
__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'napari_nanogan' has no attribute {name!r}")
    module = importlib.import_module(f".{_PUBLIC[name]}", __name__)
    value = getattr(module, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
