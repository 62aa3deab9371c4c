"""npe2 reader and sample-data contributions (numpy only: no torch, no Qt).

The reader opens SEM/TEM images (TIFF, PNG, JPEG, BMP, Gatan DigitalMicrograph .dm3 and
.dm4, Velox .emd) with their pixel size as the layer scale (nm) and the microscope's info bar
outlined, and label images written by ``nanogan segment`` (``*_labels.tif``) as Labels
layers at their pixel size, with the per-particle confidence from their table as features.
Annotated masks (a mask's name or folder, and pixels that are a mask) open as Labels layers
too. The writer saves a Labels layer as such a label TIFF (pixel size, info bar, confidence table),
and a layer's pixel size in nm is read here for the writer and the panels alike.
"""

from __future__ import annotations

import math
from pathlib import Path

from .io.images import IMAGE_SUFFIXES, ImageReadError, read_image
from .io.infobar import detect_info_bar

#: Relative difference under which a layer's y and x scales count as one square pixel.
SQUARE_PIXEL_TOLERANCE = 1e-6


def layer_pixel_size_nm(layer) -> float | None:
    """Pixel size in nm of a napari layer: its scale where its units are a length (any length unit
    napari's pint knows, converted to nm) and its pixels square; else the ``pixel_size_nm`` its
    metadata holds (the plugin's reader records it; napari's *Split Stack* keeps it there).

    The scale comes first: it is what the user sees and may have corrected. None where neither says
    a length: napari's default unit ("pixel") without metadata, or unequal y and x scales
    (:func:`layer_scale_problem` says why).
    """
    per_nm = _nm_per_unit(layer)
    if per_nm is not None:
        sy, sx = _scale_yx(layer)
        return sx * per_nm if _square(sy, sx) else None
    value = (getattr(layer, "metadata", {}) or {}).get("pixel_size_nm")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def layer_scale_problem(layer) -> str | None:
    """Why a layer calibrated in a length unit gives no pixel size (its pixels are not square), or None."""
    if _nm_per_unit(layer) is None:
        return None
    sy, sx = _scale_yx(layer)
    if not _square(sy, sx):
        return f"layer {layer.name!r} has pixels of {sy:g} x {sx:g} {_units(layer)[-1]} (y x): not square"
    return None


def length_per_pixel(layer) -> float:
    """The layer's length (in its own units) of one pixel's side: for pixels that are not square, the side of
    the square of equal area, so that a circle's diameter typed in the layer's units is its equal-area diameter
    in pixels."""
    sy, sx = _scale_yx(layer)
    return sx if _square(sy, sx) else math.sqrt(sy * sx)


def _scale_yx(layer) -> tuple[float, float]:
    return tuple(abs(float(v)) for v in tuple(layer.scale)[-2:])


def _square(sy: float, sx: float) -> bool:
    return sx > 0 and abs(sy - sx) <= SQUARE_PIXEL_TOLERANCE * sx


def _units(layer) -> tuple:
    units = getattr(layer, "units", None)
    return tuple(units)[-2:] if units is not None else ("pixel", "pixel")


def _nm_per_unit(layer) -> float | None:
    """nm per unit of the layer's y and x axes, where both are the same length unit; else None."""
    from .io.metadata import to_nm

    y, x = _units(layer)
    if str(y) != str(x):
        return None
    try:
        return to_nm(1.0, str(x))  # the usual units, exactly (a power of ten)
    except ValueError:
        pass
    if str(getattr(x, "dimensionality", "")) != "[length]":  # "pixel", time, or a unit pint does not know
        return None
    return float(x._REGISTRY.Quantity(1.0, x).to("nanometer").magnitude)  # any other length (pint)


#: The file patterns this plugin reads (napari-nanogan.get_reader in napari.yaml).
READER_PATTERNS = ("*.tif", "*.tiff", "*.png", "*.jpg", "*.jpeg", "*.bmp", "*.dm3", "*.dm4", "*.emd")
PLUGIN = "napari-nanogan"


def _layer_kwargs(name: str, meta: dict, info_bar, stack: bool = False) -> dict:
    """A layer's name, metadata and, where the pixel size is known, scale and units in nm; ``stack``: a
    leading frame axis, at scale 1 (unit "pixel", napari's for an axis that is not a length)."""
    kwargs: dict = {"name": name, "metadata": dict(meta)}
    pixel = meta.get("pixel_size_nm")
    if pixel:
        frame = ((1.0,), ("pixel",)) if stack else ((), ())
        kwargs["scale"] = frame[0] + (pixel, pixel)
        kwargs["units"] = frame[1] + ("nm", "nm")
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


#: A file whose name or folder says so is read as a mask when its pixels look like one: a
#: ``*_m``, ``*_mask``, ``*_gt``, ``*_seg``, ``*_label(s)``, ``mask_*`` ... name, or a folder of
#: these names (the layouts of the shared data sets and of ``nanogan export``), or a name whose
#: last (or first) word is one of :data:`~napari_nanogan.io.masks.MASK_WORDS`.
MASK_FOLDERS = ("masks", "mask", "labels", "annotations", "gt", "ground_truth")


def _named_as_mask(path) -> bool:
    import re

    from .io.masks import MASK_WORDS

    path = Path(path)
    words = [w for w in re.split(r"[^a-z0-9]+", path.stem.lower()) if w]
    named = bool(words) and (words[-1] in MASK_WORDS or (len(words) > 1 and words[0] in MASK_WORDS[1:]))
    return named or path.parent.name.lower() in MASK_FOLDERS


def is_label_image(path, data) -> bool:
    """A label image: ``<stem>_labels.tif`` of ``nanogan segment`` holding integers, or an
    annotation named as one (:data:`MASK_FOLDERS`) whose pixels are a binary or instance
    mask, not a grey picture (:func:`~napari_nanogan.io.masks.grey_image_reason`)."""
    import numpy as np

    from .io.masks import grey_image_reason

    data = np.asarray(data)
    if data.ndim != 2 or not np.issubdtype(data.dtype, np.integer):
        return False
    if _named_as_labels_of_segment(path):
        return True
    return _named_as_mask(path) and data.min() >= 0 and grey_image_reason(data) is None


def _named_as_labels_of_segment(path) -> bool:
    """``<stem>_labels.tif``, as ``nanogan segment`` names what it writes, or a TIFF that says it holds labels
    (:func:`~napari_nanogan.io.images.write_labels` marks them: napari's *Save Layer* names them as the user
    likes)."""
    from .io.images import is_labels_tiff

    return Path(path).name.lower().endswith(("_labels.tif", "_labels.tiff")) or is_labels_tiff(path)


def read_em_image(path):
    """LayerData for one file: an SEM/TEM image (pixel size as ``scale`` in nm, info bar outlined),
    or a label image (a Labels layer: of ``nanogan segment``, with its particles' confidence as
    features, or an annotated mask, :func:`is_label_image`). A DigitalMicrograph or EMD stack or
    series opens whole, to look through (:func:`read_em_stack`)."""
    from .io.vendor import StackError

    named = _named_as_labels_of_segment(path) or _named_as_mask(path)
    try:
        image, meta = read_image(path, palette=not named)  # (a palette mask's indices are its labels)
    except StackError:
        return [read_em_stack(path)]
    if is_label_image(path, image):
        from .io.masks import instance_labels, pixel_size_of_its_image

        if not meta.get("pixel_size_nm"):
            meta = {**meta, **pixel_size_of_its_image(path)}
        # a binary mask (0/255) becomes its 4-connected particles, as every command reads it
        binary = ((image == 0) | (image == image.max(initial=0))).all()  # linear: no sort of a large image
        return [read_labels(path, instance_labels(image) if binary else image, meta)]
    bar = detect_info_bar(image)
    kwargs = _layer_kwargs(Path(path).stem, meta, bar)
    layers = [(image, kwargs, "image")]
    if bar is not None:
        layers.append(info_bar_shapes(kwargs["name"], image.shape, bar, kwargs))
    return layers


def read_em_stack(path):
    """LayerData of every frame of a DM or EMD stack or series (frames x height x width; the panels take a
    2D image: the layer list's *Split Stack* gives one layer per frame), at the file's pixel size."""
    from .io.vendor import read_frames

    frames, found, which = read_frames(Path(path))
    meta = {"pixel_size_nm": found[0] if found else None, "pixel_size_source": found[1] if found else None,
            "frames": int(frames.shape[0]), **({"image_read": which} if which else {})}
    return (frames, _layer_kwargs(Path(path).stem, meta, None, stack=True), "image")


def read_labels(path, labels, meta: dict):
    """LayerData of a label image, with ``index`` and ``confidence`` features from its table when there is one,
    and the info bar a label TIFF of ``nanogan segment`` records (so that Measure flags the particles it cuts)."""
    import numpy as np

    from .io.images import is_labels_tiff, labels_info_bar_rows, read_label_table
    from .io.infobar import InfoBar
    from .io.masks import image_stem

    bar = None
    if Path(path).suffix.lower() in (".tif", ".tiff"):
        start, end = labels_info_bar_rows(path)
        if start is not None and 0 < start < labels.shape[0]:
            bar = InfoBar(start, labels.shape[0], "bottom")
        elif end is not None and 0 < end < labels.shape[0]:
            bar = InfoBar(0, end, "top")
    if bar is None and not is_labels_tiff(path):  # an annotation: the info bar of the image of its name
        bar = _info_bar_of_its_image(path, labels.shape)
    stem, name = image_stem(path), Path(path).stem
    in_mask_folder = Path(path).parent.name.lower() in MASK_FOLDERS
    if stem == name and in_mask_folder:  # masks/a.png for images/a.png: not a second layer "a"
        name = f"{stem} mask"
    kwargs = _layer_kwargs(name, meta, bar)
    if stem != Path(path).stem or in_mask_folder:  # the panels pair the labels with their image's layer when open
        kwargs["metadata"].setdefault("source_layer", stem)
    try:
        confidence = read_label_table(path, int(np.max(labels, initial=0)))
    except ValueError as exc:  # the labels open all the same
        import warnings

        warnings.warn(f"{exc}: the labels open without their confidence", stacklevel=2)
        confidence = None
    if confidence is not None:
        from .io.masks import label_areas

        kwargs["features"] = {"index": np.arange(1, len(confidence) + 1), "confidence": confidence}
        kwargs["metadata"]["label_areas"] = label_areas(labels, len(confidence))  # (Measure: repainted ones have none)
    return (np.asarray(labels), kwargs, "labels")


def _info_bar_of_its_image(path, shape):
    """The info bar of the image a mask annotates (:func:`~napari_nanogan.io.masks.its_image`), where it has the
    mask's shape; None without one (as ``nanogan measure`` reads a mask)."""
    from .io.masks import its_image

    image_path = its_image(path)
    try:
        image = read_image(image_path)[0] if image_path is not None else None
    except (ImageReadError, OSError):
        return None
    return detect_info_bar(image) if image is not None and image.shape == tuple(shape) else None


def prefer_this_reader() -> list[str]:
    """Make napari open the files this plugin reads with it, where the user has chosen no reader yet.

    napari asks which reader to use when two claim a file (its own claims TIFF and PNG too),
    and a file opened with its own reader loses the pixel size and the info-bar outline.
    Returns the patterns newly associated (none when napari is not installed or every
    pattern already has the user's choice).
    """
    try:
        from napari.settings import get_settings
    except ImportError:
        return []
    plugins = get_settings().plugins
    current = dict(plugins.extension2reader)
    added = [p for p in READER_PATTERNS if p not in current]
    if added:
        plugins.extension2reader = {**current, **dict.fromkeys(added, PLUGIN)}
    return added


def get_reader(path):
    """npe2 reader hook: claims single 2D images (and ``*_labels.tif``) of the suffixes it reads."""
    if isinstance(path, list) or Path(str(path)).suffix.lower() not in IMAGE_SUFFIXES:
        return None
    if str(path).lower().endswith((".tif", ".tiff")):
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
    bar = detect_info_bar(image)
    kwargs = _layer_kwargs("procedural SEM", meta, bar)
    truth = {k: v for k, v in kwargs.items() if k in ("scale", "units")}
    layers = [(image, kwargs, "image"), (labels, dict(truth, name="true particles", opacity=0.4, visible=False), "labels")]
    if bar is not None:
        layers.append(info_bar_shapes(kwargs["name"], image.shape, bar, kwargs))
    return layers


def write_labels_layer(path: str, data, meta: dict) -> list[str]:
    """npe2 writer (napari's *File > Save Selected Layer(s)* for one Labels layer with this plugin's file type
    chosen, or ``layer.save(path, plugin="napari-nanogan")``: napari's own writer is its default for .tif):
    the label TIFF ``nanogan segment`` writes, which the reader, ``nanogan measure`` and the panels read back.

    The layer's pixel size (:func:`layer_pixel_size_nm`) goes into the resolution tags and the info bar it
    records (``metadata["info_bar_rows"]``) into the description; its ``confidence`` features, where the
    segmentation gave them, into the table beside it (``<stem>.csv``), NaN for particles repainted since
    (:func:`~napari_nanogan.io.masks.still_scored`). Returns the files written.
    """
    from types import SimpleNamespace

    import numpy as np

    from .io.images import write_labels
    from .io.masks import still_scored

    name = meta.get("name", "labels")
    labels = np.asarray(data[0] if meta.get("multiscale") else data)
    if labels.ndim != 2:
        raise ValueError(f"{name!r} is {labels.ndim}D ({' x '.join(map(str, labels.shape))}): a label TIFF holds "
                         "one 2D image; save a plane of it (right-click the layer, Split Stack)")
    metadata = dict(meta.get("metadata") or {})
    layer = SimpleNamespace(scale=meta.get("scale", (1.0, 1.0)), units=meta.get("units"), metadata=metadata, name=name)
    confidence, top = None, int(labels.max(initial=0))
    features = meta.get("features")
    if features is not None and top > 0 and {"index", "confidence"} <= set(getattr(features, "columns", ())):
        confidence = np.full(top, np.nan, np.float32)
        index = np.asarray(features["index"], np.int64)
        inside = (index >= 1) & (index <= top)
        confidence[index[inside] - 1] = np.asarray(features["confidence"], np.float32)[inside]
        confidence = still_scored(confidence, labels, metadata.get("label_areas"))
        if np.isnan(confidence).all():
            confidence = None
    bar = metadata.get("info_bar_rows")
    written = write_labels(path, labels, pixel_size_nm=layer_pixel_size_nm(layer), confidence=confidence,
                           info_bar_start=bar[0] if bar and bar[0] > 0 else None,
                           info_bar_end=bar[1] if bar and bar[0] == 0 and bar[1] > 0 else None)
    return [str(written)] + ([str(written.with_suffix(".csv"))] if confidence is not None else [])


__all__ = ["get_reader", "read_em_image", "sample_sem", "prefer_this_reader", "write_labels_layer", "ImageReadError"]
