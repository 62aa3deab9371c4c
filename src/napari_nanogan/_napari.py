"""npe2 reader and sample-data contributions (numpy only: no torch, no Qt).

The reader opens SEM/TEM images (TIFF, PNG, JPEG, BMP, Gatan DigitalMicrograph .dm3 and
.dm4, Velox .emd) with their pixel size as the layer scale (nm) and the microscope's info bar
outlined, and label images written by ``nanogan segment`` (``*_labels.tif``) as Labels
layers at their pixel size, with the per-particle confidence from their table as features.
Annotated masks (a mask's name or folder, and pixels that are a mask) open as Labels layers
too.
"""

from __future__ import annotations

from pathlib import Path

from .io.images import IMAGE_SUFFIXES, ImageReadError, read_image
from .io.infobar import detect_info_bar

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
    """``<stem>_labels.tif``, as ``nanogan segment`` names what it writes."""
    return Path(path).name.lower().endswith(("_labels.tif", "_labels.tiff"))


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

    from .io.images import labels_info_bar_rows, read_label_table
    from .io.infobar import InfoBar
    from .io.masks import image_stem

    bar = None
    if Path(path).suffix.lower() in (".tif", ".tiff"):
        start, end = labels_info_bar_rows(path)
        if start is not None and 0 < start < labels.shape[0]:
            bar = InfoBar(start, labels.shape[0], "bottom")
        elif end is not None and 0 < end < labels.shape[0]:
            bar = InfoBar(0, end, "top")
    kwargs = _layer_kwargs(Path(path).stem, meta, bar)
    stem = image_stem(path)
    if stem != Path(path).stem:  # the panels pair the labels with their image's layer when it is open
        kwargs["metadata"].setdefault("source_layer", stem)
    confidence = read_label_table(path)
    if confidence is not None:
        from .io.masks import label_areas

        kwargs["features"] = {"index": np.arange(1, len(confidence) + 1), "confidence": confidence}
        kwargs["metadata"]["label_areas"] = label_areas(labels, len(confidence))  # (Measure: repainted ones have none)
    return (np.asarray(labels), kwargs, "labels")


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


__all__ = ["get_reader", "read_em_image", "sample_sem", "prefer_this_reader", "ImageReadError"]
