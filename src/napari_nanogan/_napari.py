"""npe2 reader and sample-data contributions (numpy only: no torch, no Qt)."""

from __future__ import annotations

from pathlib import Path

from .io.images import ImageReadError, read_image
from .io.infobar import detect_info_bar


def _layer_kwargs(name: str, meta: dict, info_bar) -> dict:
    kwargs: dict = {"name": name, "metadata": dict(meta)}
    pixel = meta.get("pixel_size_nm")
    if pixel:
        kwargs["scale"] = (pixel, pixel)
        kwargs["units"] = ("nm", "nm")
    if info_bar is not None:
        kwargs["metadata"]["info_bar_rows"] = (info_bar.start, info_bar.stop)
    return kwargs


def info_bar_shapes(name: str, shape, bar, kwargs: dict):
    """LayerData of a rectangle outlining the detected info bar, so the user sees what is excluded."""
    import numpy as np

    h, w = shape
    rect = np.array([[bar.start - 0.5, -0.5], [bar.start - 0.5, w - 0.5], [bar.stop - 0.5, w - 0.5], [bar.stop - 0.5, -0.5]])
    shape_kwargs = {k: v for k, v in kwargs.items() if k in ("scale", "units")}
    shape_kwargs.update(name=f"{name} info bar", shape_type="rectangle", edge_color="yellow", face_color="transparent",
                        edge_width=2, metadata={"info_bar_rows": (bar.start, bar.stop)})
    return ([rect], shape_kwargs, "shapes")


def read_em_image(path):
    """LayerData for one SEM/TEM image: grey data, pixel size as ``scale`` (nm), info bar outlined."""
    image, meta = read_image(path)
    bar = detect_info_bar(image)
    kwargs = _layer_kwargs(Path(path).stem, meta, bar)
    layers = [(image, kwargs, "image")]
    if bar is not None:
        layers.append(info_bar_shapes(kwargs["name"], image.shape, bar, kwargs))
    return layers


def get_reader(path):
    """npe2 reader hook: claims single TIFF files it can read as 2D images."""
    if isinstance(path, list) or not str(path).lower().endswith((".tif", ".tiff")):
        return None
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            if len(tif.pages) > 1 or page.ndim > 3:
                return None  # stacks: leave them to other readers
    except Exception:
        return None
    return read_em_image


def sample_sem():
    """The package's procedural SEM sample with its true particle labels."""
    from .data.procedural import SAMPLE_PIXEL_SIZE_NM, sample_image

    image, labels = sample_image()
    meta = {"pixel_size_nm": SAMPLE_PIXEL_SIZE_NM, "source": "napari-nanogan procedural sample"}
    kwargs = _layer_kwargs("procedural SEM", meta, detect_info_bar(image))
    truth = {k: v for k, v in kwargs.items() if k in ("scale", "units")}
    return [(image, kwargs, "image"), (labels, dict(truth, name="true particles", opacity=0.4, visible=False), "labels")]


__all__ = ["get_reader", "read_em_image", "sample_sem", "ImageReadError"]
